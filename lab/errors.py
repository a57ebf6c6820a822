"""Errors a user can cause: the CLI prints them as one line and exits non-zero."""


class LabError(Exception):
    """A problem with the user's input or environment, worded for the user."""

    exit_code = 1


class NotRunning(LabError):
    """The named lab has no state: it was never started or is already down."""

    exit_code = 2
