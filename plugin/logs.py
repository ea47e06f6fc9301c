"""Logs, for --debug and --log-level: structlog to stderr, imported on the first message at or
above the level set, so that a run that logs nothing (the default level is warning, and notices
are not logs) never pays for importing it."""

from __future__ import annotations

from typing import Any

from .notices import to_stderr

LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50, "fatal": 50}
TIME = "%H:%M:%S.%f"  # microseconds: the debug log times a run's phases

_setting = {"level": LEVELS["warning"], "configured": False}


def setup(level: str) -> None:
    """The level from here on (unknown names are refused before: options.LOG_LEVELS)."""
    _setting["level"] = LEVELS[level]
    _setting["configured"] = False


def enabled(level: str) -> bool:
    return LEVELS[level] >= _setting["level"]


class _Stderr:
    """Whatever sys.stderr is when a line is logged (tests swap it), not at set-up."""

    def write(self, text: str) -> int:
        to_stderr(text)
        return len(text)

    def flush(self) -> None:
        pass  # to_stderr flushes


def _structlog() -> Any:
    import structlog

    if not _setting["configured"]:
        import sys

        structlog.reset_defaults()  # configure() leaves what is not given (None) as it was
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt=TIME, utc=False),
                structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(_setting["level"]),
            logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),
            cache_logger_on_first_use=False,
        )
        _setting["configured"] = True
    return structlog


class Logger:
    """structlog's logger, in part (debug, info, warning, error), made on first use. Lines do not
    name the module (the console renderer would not show it)."""

    def _log(self, level: str, event: str, fields: dict[str, Any]) -> None:
        if enabled(level):
            getattr(_structlog().get_logger(), level)(event, **fields)

    def debug(self, event: str, **fields: Any) -> None:
        self._log("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log("error", event, fields)


_LOGGER = Logger()


def get_logger(name: str) -> Logger:
    """As structlog.get_logger(__name__) reads, for one logger."""
    return _LOGGER
