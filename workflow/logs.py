"""The library's log events: key-value pairs handed to the standard ``casework`` logger.

The library renders and configures nothing. Embedded in a host application, each event
reaches the host's :mod:`logging` as a record whose message is the event name and whose
attributes are its keys (``record.case_id``), wherever the host's setup sends it
(nowhere below WARNING by default); a host that uses structlog passes its own logger to
:class:`casework.workflow.Engine`. The command line configures structlog itself
(:mod:`casework.workflow.cli.logs`). Customer contact details never reach a log line.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog

SENSITIVE_KEYS = frozenset({"contact", "customer", "phone", "email", "address", "password"})
"""Keys whose values never reach a log line, whoever passes them."""


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Replace the value of every sensitive key with ``"[redacted]"``."""
    for key in SENSITIVE_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


class LibraryLogger(structlog.stdlib.BoundLogger):
    """The stdlib bound logger that drops an info event before building it where the
    ``casework`` logger would not emit it (what ``filter_by_level`` decides by raising,
    on every event a fire logs)."""

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.INFO):
            return None
        return super().info(event, *args, **kw)


def library_logger() -> Any:
    """The engine's default logger: key-value events on the standard ``casework`` logger."""
    return structlog.wrap_logger(
        logging.getLogger("casework"),
        processors=[
            structlog.stdlib.filter_by_level,
            redact,
            structlog.stdlib.render_to_log_kwargs,
        ],
        wrapper_class=LibraryLogger,
        cache_logger_on_first_use=True,  # else every event builds its bound logger anew
    )
