"""The one structlog configuration: JSON lines when stderr is not a TTY, pretty on a TTY."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from reconciler.settings import LogFormat

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure(
    *, log_format: LogFormat | None = None, level: str = "info", stream: TextIO | None = None
) -> None:
    """Configure structlog once for the process.  ``log_format`` None chooses by TTY."""
    out = stream if stream is not None else sys.stderr
    if log_format is None:
        log_format = "console" if out.isatty() else "json"
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks
            if log_format == "json"
            else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger bound to a component name (``component`` key in every event)."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(component=name)
    return logger
