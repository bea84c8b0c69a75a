"""Logging setup for the command line: structlog, JSON lines or readable lines, on stderr.

The library itself configures nothing; a host application sets structlog up its own
way and passes a logger to :class:`workflow.Engine` if it wants.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from workflow.errors import InvalidInput

SENSITIVE_KEYS = frozenset({"contact", "customer", "phone", "email", "address", "password"})
"""Keys whose values never reach a log line, whoever passes them."""


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Replace the value of every sensitive key with ``"[redacted]"``."""
    for key in SENSITIVE_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(
    level: str = "warning", *, json_lines: bool | None = None, stream: TextIO | None = None
) -> None:
    """Send structlog output to ``stream`` (stderr) at ``level``.

    JSON lines when ``json_lines`` is true or the stream is not a terminal; readable
    lines on a terminal.
    """
    levels = ("debug", "info", "warning", "error")
    if not isinstance(level, str) or level.lower() not in levels:
        raise InvalidInput(
            f"unknown log level {level!r}; use {', '.join(levels)}", field="log_level"
        )
    out = stream or sys.stderr
    if json_lines is None:
        json_lines = not out.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def library_logger() -> Any:
    """The engine's default logger: structlog over the standard ``casework`` logger.

    Embedded in a host application, lines go wherever the host's ``logging`` setup
    sends them (nowhere below WARNING by default); the CLI configures its own.
    """
    return structlog.wrap_logger(
        logging.getLogger("casework"),
        processors=[
            structlog.stdlib.filter_by_level,
            redact,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )
