"""Helpers for the tests of a host application that embeds casework, as ``structlog``
ships ``structlog.testing``: a fixed clock, a throwaway engine on a temporary SQLite
file, and the worker's job run at a given instant.

    from datetime import timedelta
    from casework.workflow.testing import FixedClock, run_due, throwaway_engine

    def test_a_late_complaint_is_escalated():
        with throwaway_engine() as engine:
            case = engine.open_case(customer="C-1", channel="phone",
                                    category="other", summary="No answer")
            fired = run_due(engine, engine.clock.now() + timedelta(days=3))
            assert {f.case_id for f in fired} == {case.id}

Nothing here starts a thread or a server, reads the network or needs PostgreSQL.
"""

from __future__ import annotations

import builtins
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casework.workflow.clock import FixedClock, aware
from casework.workflow.engine import Engine
from casework.workflow.errors import InvalidInput

if TYPE_CHECKING:
    from casework.workflow.sla.due import Fired

__all__ = ["START", "FixedClock", "run_due", "throwaway_engine"]

START = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
"""Where a throwaway engine's clock starts unless told: a Monday, 09:00 in Shanghai."""


@contextmanager
def throwaway_engine(
    *, clock: FixedClock | None = None, config: Any = None, registry: Any = None
) -> Iterator[Engine]:
    """An engine on a new SQLite file in a temporary folder (migrated, empty), with a
    :class:`FixedClock` at :data:`START` unless ``clock`` is given; the file is gone
    when the block ends."""
    with tempfile.TemporaryDirectory(prefix="casework-test-") as folder:
        engine = Engine.open(
            f"sqlite:///{Path(folder) / 'casework.db'}",
            clock=clock or FixedClock(START),
            config=config,
            registry=registry,
        )
        try:
            yield engine
        finally:
            engine.close()


def run_due(engine: Engine, at: datetime) -> builtins.list[Fired]:
    """Move the engine's :class:`FixedClock` to ``at`` and fire every deadline due by
    then, as ``casework worker`` would (in batches until none is left); returns what
    fired, in order."""
    clock = engine.clock
    if not isinstance(clock, FixedClock):
        raise InvalidInput("run_due moves a FixedClock: open the engine with one", field="clock")
    moment = aware(at, "at")
    if moment < clock.now():
        raise InvalidInput(f"at {moment.isoformat()} lies before the clock's now", field="at")
    clock.set(moment)
    fired: builtins.list[Fired] = []
    while batch := engine.process_due(max_batches=1):
        fired.extend(batch)
    return fired
