"""Functions run in separate processes by the concurrency tests."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from workflow import ConcurrentUpdate, Engine


def fire_at_once(
    url: str, case_id: str, expected: int, barrier: Barrier, actor: str, out: Queue[Any]
) -> None:
    """Wait for the other racer, then fire one note at ``expected``; report how it went."""
    out.put(_fire_at_once(url, case_id, expected, barrier, actor))


def _fire_at_once(url: str, case_id: str, expected: int, barrier: Barrier, actor: str) -> str:
    with Engine.open(url) as engine:
        engine.get(case_id)
        barrier.wait(timeout=30)
        try:
            engine.fire(case_id, "note", actor=actor, note=f"by {actor}", expected_version=expected)
        except ConcurrentUpdate:
            return "conflict"
        return "won"


def fire_many(
    url: str, case_id: str, count: int, barrier: Barrier, actor: str, out: Queue[Any]
) -> None:
    """Fire ``count`` notes without an expected version; all must be applied."""
    with Engine.open(url) as engine:
        barrier.wait(timeout=30)
        for n in range(count):
            engine.fire(case_id, "note", actor=actor, note=f"{actor} {n}")
    out.put(count)


def process_due_until_done(
    url: str, now_iso: str, barrier: Barrier, actor: str, out: Queue[Any]
) -> None:
    """A worker process: fire everything due at ``now`` and report how many it fired."""
    from datetime import datetime

    with Engine.open(url) as engine:
        barrier.wait(timeout=60)
        out.put(len(engine.process_due(datetime.fromisoformat(now_iso), batch=50)))
