"""casework's public API: the :class:`Engine`, its results, errors, clocks and settings.

>>> from datetime import UTC, datetime
>>> from casework.workflow import Engine, FixedClock
>>> clock = FixedClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
>>> with Engine.open("sqlite://", clock=clock) as engine:
...     case = engine.open_case(customer="C-1001", channel="phone",
...                             category="service_delayed", summary="No technician yet")
...     case = engine.fire(case.id, "apologise", actor="li.na")
...     (case.state, case.version, engine.verify().ok)
('apologised', 2, True)
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from casework.workflow.clock import Clock, FixedClock, SystemClock
    from casework.workflow.config import Settings, load_settings
    from casework.workflow.engine import Engine
    from casework.workflow.errors import (
        AttachmentNotFound,
        BeyondAuthority,
        CaseNotFound,
        CaseworkError,
        ClockAhead,
        ConcurrentUpdate,
        ConfigError,
        Conflict,
        EventNotAllowed,
        GuardFailed,
        InvalidInput,
        MailFailure,
        MailNotFound,
        NaiveDatetime,
        NotAuthenticated,
        NotFound,
        NotPermitted,
        OutsideBranch,
        ReadOnlyDatabase,
        RemedyRefused,
        StorageFailure,
        TimeOutOfOrder,
        TokenNotFound,
        UnknownChoice,
        UnknownEvent,
        UnknownMachine,
        WebhookNotFound,
        WriteFailed,
    )
    from casework.workflow.results import Case, Event, Problem, Replay, VerifyReport

_HOMES = {
    "Clock": "clock",
    "FixedClock": "clock",
    "SystemClock": "clock",
    "Settings": "config",
    "load_settings": "config",
    "Engine": "engine",
    "Case": "results",
    "Event": "results",
    "Problem": "results",
    "Replay": "results",
    "VerifyReport": "results",
}
"""Where each public name lives (errors live in :mod:`casework.workflow.errors`)."""


def __getattr__(name: str) -> Any:
    """The public names, imported on first use: ``import workflow.cli`` costs nothing more."""
    if name not in __all__:
        raise AttributeError(f"module 'casework.workflow' has no attribute {name!r}")
    module = importlib.import_module(f"casework.workflow.{_HOMES.get(name, 'errors')}")
    value = getattr(module, name)
    globals()[name] = value
    return value


__all__ = [
    "AttachmentNotFound",
    "BeyondAuthority",
    "Case",
    "CaseNotFound",
    "CaseworkError",
    "Clock",
    "ClockAhead",
    "ConcurrentUpdate",
    "ConfigError",
    "Conflict",
    "Engine",
    "Event",
    "EventNotAllowed",
    "FixedClock",
    "GuardFailed",
    "InvalidInput",
    "MailFailure",
    "MailNotFound",
    "NaiveDatetime",
    "NotAuthenticated",
    "NotFound",
    "NotPermitted",
    "OutsideBranch",
    "Problem",
    "ReadOnlyDatabase",
    "RemedyRefused",
    "Replay",
    "Settings",
    "StorageFailure",
    "SystemClock",
    "TimeOutOfOrder",
    "TokenNotFound",
    "UnknownChoice",
    "UnknownEvent",
    "UnknownMachine",
    "VerifyReport",
    "WebhookNotFound",
    "WriteFailed",
    "load_settings",
]
