"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class ImpbenchError(Exception):
    """A problem with the user's input or environment (bad file, unknown name, missing tool).

    The message must name the file or value and the problem in one line; the CLI prints it
    without a traceback and exits 2.
    """


class ImputerError(ImpbenchError):
    """An imputer plugin misbehaved (raised, or returned wrong shapes or codes)."""

    def __init__(self, imputer: str, message: str):
        super().__init__(f"imputer {imputer!r}: {message}")
        self.imputer = imputer
