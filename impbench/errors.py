"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class ImpbenchError(Exception):
    """A problem with the user's input or environment (bad file, unknown name, missing tool).

    The message must name the file or value and the problem in one line; the CLI prints it
    without a traceback and exits 2.
    """


class DiskError(ImpbenchError):
    """A write the disk or file system refused (full, quota, read-only or forbidden folder),
    said in one line naming the path; the CLI exits 1 (the user's input was fine)."""

    exit_code = 1


class ImputerError(ImpbenchError):
    """An imputer plugin misbehaved (raised, or returned wrong shapes or codes)."""

    def __init__(self, imputer: str, message: str):
        super().__init__(f"imputer {imputer!r}: {message}")
        self.imputer = imputer


class ImputerNotApplicable(ImpbenchError):
    """An imputer cannot work under the run's masking scheme (e.g. Minimac4 under ``uniform``).

    The runner records the (imputer, scheme) as "not applicable", not as a failure. ``scheme``
    is the scheme it was given; the message is one line that says why.
    """

    def __init__(self, imputer: str, scheme: str, reason: str):
        super().__init__(f"imputer {imputer!r} does not apply to masking scheme {scheme!r}: {reason}")
        self.imputer = imputer
        self.scheme = scheme
        self.reason = reason
