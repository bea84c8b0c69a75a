"""One wake of the worker: a backlog fired batch after batch, one log line for the wake."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from casework.scheduler import Worker
from casework.workflow import Engine, FixedClock
from tests.support import fired_deadlines, open_sample, wait_until


class Lines:
    """A logger that keeps what it is given (event name and fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def _keep(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))

    info = warning = error = exception = _keep


def test_a_wake_logs_one_line_for_its_backlog_not_one_per_deadline(db_url: str) -> None:
    """Four cases a day late (a warning and a breach each, due), three deadlines a
    batch: the wakes fire all eight once and log one ``deadlines_processed`` line
    each, with its count and the latest deadline's delay."""
    now = datetime.now(UTC)
    log = Lines()
    with Engine.open(db_url, clock=FixedClock(now)) as engine:
        for _ in range(4):
            open_sample(engine, received_at=now - timedelta(hours=25))
        worker = Worker(engine, batch=3, logger=log, listen=False)
        wakes = 0
        while (due := engine.next_due()) is not None and due <= now and wakes < 10:
            worker.wake()
            wakes += 1
        assert worker.fired == 8
        statuses, mails, seen = fired_deadlines(engine)
        assert (statuses.get("fired"), mails) == (8, 8)
        assert set(seen.values()) == {1}
    processed = [fields for event, fields in log.lines if event == "deadlines_processed"]
    assert len(processed) == wakes < 8  # a line a wake, a wake fires many batches
    assert sum(fields["count"] for fields in processed) == 8
    assert all(fields["max_late_by_s"] >= 3600 for fields in processed)
    assert [event for event, _ in log.lines if event not in {"deadlines_processed"}] == []


def test_a_job_armed_again_while_it_runs_runs_again_after_it(db_url: str) -> None:
    """A wake that leaves a backlog arms the next wake at once, while it still runs
    (as a wake arms a delivery that is finishing): the scheduler holds the second run
    until the first has ended, rather than skipping it and dropping the job."""
    with Engine.open(db_url) as engine:
        worker = Worker(engine, poll_s=3600.0, listen=False)
        calls: list[int] = []
        together = threading.Lock()

        def job() -> None:
            assert together.acquire(blocking=False), "two runs at once"
            try:
                calls.append(len(calls))
                if len(calls) == 1:  # armed again now, then still busy while it is taken
                    worker._schedule("probe", job, datetime.now(UTC))
                    wait_until(
                        lambda: worker._scheduler.get_job("probe") is None,
                        what="the scheduler to take the second run",
                    )
            finally:
                together.release()

        worker._scheduler.start()
        try:
            worker._schedule("probe", job, datetime.now(UTC))
            wait_until(lambda: len(calls) == 2, what="the second run")
        finally:
            worker.stop()
        assert calls == [0, 1]
