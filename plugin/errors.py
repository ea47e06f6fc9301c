"""SpyError and its children: one user-facing sentence each, and the exit statuses."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1  # an expected failure: the target, the engine, the helper
    USAGE = 125  # the command line is wrong (the docker CLI's own status for it)
    DENIED = 3  # --audit-profile: the profile would deny an observed syscall
    PARTIAL = 4  # --service: a node gave no report; the others are shown
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    TERMINATED = 143  # SIGTERM (128 + SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM: handled like Ctrl-C (the counts so far are shown), but exits 143."""


def interrupt_status(interrupt: BaseException) -> ExitStatus:
    return ExitStatus.TERMINATED if isinstance(interrupt, Terminated) else ExitStatus.INTERRUPTED


class SpyError(Exception):
    """An expected failure, shown as `docker spy: <what went wrong> (<what to do>)`."""

    exit_status = ExitStatus.ERROR

    def __init__(self, what: str, hint: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint

    def line(self) -> str:
        text = f"docker spy: {self.what}"
        return f"{text} ({self.hint})" if self.hint else text


class UsageError(SpyError):
    exit_status = ExitStatus.USAGE


class DaemonError(SpyError):
    """The engine cannot be reached or answered with an unexpected error."""


class TargetError(SpyError):
    """The container to spy on is missing, ambiguous or not running."""


class HelperImageError(SpyError):
    """The helper image is missing and cannot be built, or is not ours."""


class HelperError(SpyError):
    """The helper container failed: it said why, or it died."""


class ContractError(HelperError):
    """The helper printed something that is not a valid report."""


class InterruptedEarly(SpyError):
    """Ctrl-C or SIGTERM before counting started: nothing was counted, so no report."""

    def __init__(self, interrupt: KeyboardInterrupt) -> None:
        what = "terminated" if isinstance(interrupt, Terminated) else "interrupted"
        super().__init__(f"{what} before counting started")
        self.exit_status = interrupt_status(interrupt)
