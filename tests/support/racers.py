"""Functions run in separate processes by the concurrency tests."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from casework.workflow import ConcurrentUpdate, Engine


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


def race(count: int, target: Callable[..., None], *args: object) -> list[Any]:
    """Run ``target(*args, barrier, actor, queue)`` in ``count`` processes started
    together; what each put on the queue."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(count)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(*args, barrier, f"agent{n}", out)) for n in range(count)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    return results


def deliver_all(url: str, config_path: str, barrier: Barrier, actor: str, out: Queue[Any]) -> None:
    """A delivering process: send what is due in small batches; report how many it sent."""
    from casework.scheduler.mail.delivery import Deliverer
    from casework.workflow.config import load_settings

    with Engine.open(url, config=load_settings(config_path)) as engine:
        barrier.wait(timeout=60)
        out.put(Deliverer(engine, batch=5).deliver_due().sent)


CLOSING = ("withdraw", "merge_into")
"""Events that end a case."""

STRESS_DATA = {
    "resolve": {"solution": "fixed on site"},
    "follow_up": {"satisfaction": 2},
    "assign": {"to": "wang.wei"},
    "wait": {"reason": "customer"},
    "contact": {"kind": "call"},
}
"""Data that satisfies each event's conditions, for the stress racers."""


def fire_randomly(
    url: str, case_ids: list[str], seconds: float, barrier: Barrier, actor: str, out: Queue[Any]
) -> None:
    """For ``seconds``, fire a random valid event at a random case at its read version;
    report (accepted (case, seq) pairs, conflicts, refusals)."""
    import random
    import time

    from casework.workflow import EventNotAllowed, InvalidInput

    rng = random.Random(actor)
    accepted: list[tuple[str, int]] = []
    conflicts = refused = 0
    with Engine.open(url) as engine:
        definition = engine.registry.get("complaint")
        barrier.wait(timeout=60)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            case = engine.get(rng.choice(case_ids))
            events = [
                e for e in definition.allowed_events(case.state) if e not in CLOSING
            ]  # a case stays open for the others to race on
            event = rng.choice(events or ["note"])
            try:
                fired = engine.fire(
                    case.id, event, actor=actor, data=STRESS_DATA.get(event, {}),
                    note=f"{actor} {event}" if event == "note" else None,
                    expected_version=case.version,
                )  # fmt: skip
            except ConcurrentUpdate:
                conflicts += 1
            except (EventNotAllowed, InvalidInput):  # a guard, or the warranty rules
                refused += 1
            else:
                accepted.append((fired.id, fired.version))
    out.put((accepted, conflicts, refused))
