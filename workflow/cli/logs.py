"""Logging setup for the command line: structlog, JSON lines or readable lines, on stderr.

Only the command line (and the services it starts) configures logging; the library
emits key-value events and leaves rendering to its host (see :mod:`casework.workflow.logs`).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from casework.workflow.errors import InvalidInput
from casework.workflow.logs import redact


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
    # A JSON line carries an error's traceback as text (the readable renderer draws it).
    tracebacks = [structlog.processors.format_exc_info] if json_lines else []
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            *tracebacks,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
