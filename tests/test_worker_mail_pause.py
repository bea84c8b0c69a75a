"""The worker and its mail sender's pause (the SMTP server out of reach), over a real
SMTP server on loopback and an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from casework.scheduler import Worker
from casework.scheduler.mail.delivery import Deliverer
from casework.scheduler.worker import DELIVER_ID
from casework.workflow import Engine, FixedClock
from casework.workflow.config import settings_from_mapping
from tests.support import open_sample
from tests.support.mail_server import TestServer


@contextmanager
def _paused(db_url: str, server: TestServer, clock: FixedClock) -> Iterator[Worker]:
    """A worker whose mail sender found the server out of reach a moment ago (a case a
    day late, its mails refused), its jobs armed but never run."""
    mail = {
        "url": server.url,
        "sender": "Casework <casework@example.com>",
        "agent_domain": "example.com",
        "backoff_s": 60,
        "max_age_s": 7 * 86400,
    }
    config = settings_from_mapping({"mail": mail}, "test")
    with Engine.open(db_url, clock=clock, config=config) as engine:
        open_sample(engine, received_at=clock.now() - timedelta(hours=25))
        engine.process_due()
        server.stop()
        sender = Deliverer(engine)
        assert sender.deliver_due().retried == 2  # connection refused: the sender pauses
        assert sender.paused_until is not None
        assert sender.paused_until >= clock.now() + timedelta(seconds=30)
        worker = Worker(engine, deliverer=sender, listen=False)
        worker._scheduler.start(paused=True)
        try:
            yield worker
        finally:
            worker.stop()


def _armed(worker: Worker) -> datetime:
    """When the mail sender's next run is armed for."""
    run_date: datetime = worker._scheduler.get_job(DELIVER_ID).trigger.run_date
    return run_date


def test_a_wake_arms_a_paused_mail_sender_for_when_its_pause_ends(
    db_url: str, server: TestServer
) -> None:
    """A wake that fired arms each idle sender at once, but the mail sender whose
    server was out of reach at the end of its pause (after a run too): an outage costs
    one attempt a pause, not one a wake."""
    now = datetime.now(UTC)
    clock = FixedClock(now)
    with _paused(db_url, server, clock) as worker:
        assert worker.deliverer is not None
        ends = worker.deliverer.paused_until
        open_sample(worker.engine, customer="CUST-2", received_at=now - timedelta(hours=25))
        worker.wake()
        assert worker.fired >= 1
        assert _armed(worker) == ends
        worker._arm_delivery(DELIVER_ID)
        assert _armed(worker) == ends
        clock.advance(timedelta(minutes=1))  # the pause is over: the mails queued are due
        worker._arm_delivery(DELIVER_ID)
        assert _armed(worker) == clock.now()


def test_a_clock_set_back_ends_the_pause_for_the_worker_too(
    db_url: str, server: TestServer
) -> None:
    """A pause is a span of the engine's clock, and a clock set back before it began
    ends it: the sender tries at once rather than wait out the correction, and the
    worker arms it so, not for the pause's end an hour ahead of the corrected clock."""
    now = datetime.now(UTC)
    clock = FixedClock(now)
    with _paused(db_url, server, clock) as worker:
        server.start()  # the server is back
        clock.set(now - timedelta(hours=1))  # the host's clock is corrected
        open_sample(worker.engine, customer="CUST-2", received_at=clock.now() - timedelta(hours=25))
        worker.wake()  # fires the new case's deadlines: mails queued
        assert worker.fired >= 1
        assert _armed(worker) <= clock.now() + worker.poll  # not an hour and a pause later
        worker._arm_delivery(DELIVER_ID)  # after a run, too
        assert _armed(worker) <= clock.now() + worker.poll
