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


class Unavailable(LabError):
    """This machine cannot do what was asked (a fault that needs root, iptables, a kernel feature)."""

    exit_code = 69  # EX_UNAVAILABLE


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


class WaitTimeout(LabError):
    """A wait (:func:`lab.waits.wait_for`) ran out of time. The message is the headline (what was awaited,
    for how long, what was seen last), then the detail on the lines below; callers that reword it use the
    fields, never the text."""

    def __init__(self, what: str, timeout: float, last_seen: str, detail: str = "") -> None:
        self.what, self.timeout, self.last_seen, self.detail = what, timeout, last_seen, detail
        self.headline = f"timed out after {timeout:g}s waiting for {what}; last seen: {last_seen}"
        super().__init__(self.headline + (f"\n{detail}" if detail else ""))

    def __reduce__(self) -> tuple[type[WaitTimeout], tuple[str, float, str, str]]:
        return type(self), (self.what, self.timeout, self.last_seen, self.detail)


class DockerUnavailable(LabError):
    """The Docker engine cannot be used here; ``why`` is one line worded for the user."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why

    def __reduce__(self) -> tuple[type[DockerUnavailable], tuple[str]]:
        return type(self), (self.why,)
