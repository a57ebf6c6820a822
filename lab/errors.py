"""Errors a user can cause: the CLI prints them as one line and exits non-zero."""

from __future__ import annotations

from pathlib import Path


class LabError(Exception):
    """A problem with the user's input or environment, worded for the user."""

    exit_code = 1


class UsageError(LabError):
    """Bad input (a name, an option, a path): refused before anything is touched."""

    exit_code = 2


class NotRunning(LabError):
    """The named lab has no state: it was never started or is already down."""

    exit_code = 2


class LabBusy(LabError):
    """Another command holds the lab's lock."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class Interrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM arrived while a command ran (lab.interrupts): the message says what was undone.

    A KeyboardInterrupt, not a LabError, so that no ``except LabError`` / ``except Exception`` on the
    way out (a wait that tolerates errors, a retry loop) swallows a SIGTERM."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


class NodeStartError(LabError):
    """A node did not start; names the node and where its log is."""

    def __init__(self, node: str, why: str, log: Path | None) -> None:
        where = f" (log: {log})" if log else ""
        super().__init__(f"{node} did not start: {why}{where}")
        self.node = node
        self.why = why
        self.log = log


class NetworkOverlap(LabError):
    """The compose network's subnet was taken between choosing it and creating it."""
