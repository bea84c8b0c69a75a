"""Webhooks to a receiver out of reach: its subscription pauses, the others keep going."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from casework.scheduler.webhooks.delivery import WebhookDeliverer, WebhookFailure, post
from casework.scheduler.worker import WEBHOOKS_ID, Worker
from casework.workflow import Engine
from casework.workflow.cli import main as cli
from casework.workflow.clock import FixedClock
from casework.workflow.config import settings_from_mapping
from casework.workflow.outbox.mail import Outbox
from casework.workflow.webhooks.settings import WebhookSettings
from casework.workflow.webhooks.subscriptions import add
from tests.support import open_sample
from tests.support.receiver import receiver

SETTINGS = {"webhooks": {"allowed_hosts": ["127.0.0.1"], "backoff_s": 60}}
"""Loopback receivers, and a pause of 30 to 60 s after a receiver is found out of reach."""


@pytest.fixture
def engine(db_url: str, clock: FixedClock) -> Iterator[Engine]:
    with Engine.open(db_url, clock=clock, config=settings_from_mapping(SETTINGS, "t")) as opened:
        yield opened


def _closed_port() -> int:
    """A loopback port nothing listens on (a connection to it is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _subscribe(engine: Engine, url: str) -> str:
    hooks = engine.settings.webhooks
    return add(engine.context.store, url, "open", hooks, engine.clock.now()).record.id


def _attempts(engine: Engine) -> list[int]:
    rows = Outbox(engine.context, kind="webhook").list(status="pending")
    return sorted(r.attempts for r in rows)


def test_a_receiver_out_of_reach_costs_one_attempt_a_pause(
    engine: Engine, clock: FixedClock
) -> None:
    """The first delivery to a refused receiver fails; the rest of its claim is put off
    to the pause's end with no attempt counted, and until then a run claims nothing.
    When the receiver is back, each delivery arrives once."""
    port = _closed_port()
    _subscribe(engine, f"http://127.0.0.1:{port}/hook")
    for n in range(3):
        open_sample(engine, customer=f"客户-{n}")
    sender = WebhookDeliverer(engine)
    report = sender.deliver_due()
    assert (report.sent, report.retried, report.put_off) == (0, 1, 2)
    assert "Connection refused" in report.errors[0]
    ends = sender.pause_ends(clock.now())
    assert ends is not None
    assert timedelta(seconds=30) <= ends - clock.now() <= timedelta(seconds=60)
    assert _attempts(engine) == [0, 0, 1]
    open_sample(engine, customer="客户-3")  # queued during the pause: due now
    again = sender.deliver_due()
    assert (again.sent, again.retried, again.put_off) == (0, 0, 0)  # nothing claimed
    assert _attempts(engine) == [0, 0, 0, 1]
    clock.advance(timedelta(seconds=61))
    with receiver(port=port) as hook:
        back = sender.deliver_due()  # the first one's backoff is over too
        assert (back.sent, back.retried, back.put_off) == (4, 0, 0)
        assert len({r.headers["webhook-id"] for r in hook.requests}) == len(hook.requests) == 4
    assert sender.pause_ends(clock.now()) is None


def test_other_subscriptions_keep_their_pace(engine: Engine, clock: FixedClock) -> None:
    """One receiver out of reach pauses its own subscription, not the sender: another
    subscription's deliveries go out in the same run and in the runs after."""
    with receiver() as live:
        _subscribe(engine, f"http://127.0.0.1:{_closed_port()}/hook")
        _subscribe(engine, live.url)
        for n in range(3):
            open_sample(engine, customer=f"客户-{n}")
        sender = WebhookDeliverer(engine)
        report = sender.deliver_due()
        assert (report.sent, report.retried, report.put_off) == (3, 1, 2)
        assert sender.pause_ends(clock.now()) is None  # one subscription still answers
        open_sample(engine, customer="客户-3")
        later = sender.deliver_due()
        assert (later.sent, later.retried, later.put_off) == (1, 0, 1)
        assert len(live.requests) == 4


def test_an_answer_does_not_pause(engine: Engine, clock: FixedClock) -> None:
    """A receiver that answers, even with an error, is reached: each delivery is tried."""
    with receiver(answers=[503, 503]) as hook:
        _subscribe(engine, hook.url)
        open_sample(engine, customer="客户-1")
        open_sample(engine, customer="客户-2")
        sender = WebhookDeliverer(engine)
        report = sender.deliver_due()
        assert (report.retried, report.put_off) == (2, 0)
        assert sender.pause_ends(clock.now()) is None
        assert len(hook.requests) == 2


def test_a_clock_set_back_ends_a_subscriptions_pause(engine: Engine, clock: FixedClock) -> None:
    """The pause is a span of the engine's clock: set back before it began (the host's
    time corrected), the sender tries the receiver at once."""
    port = _closed_port()
    _subscribe(engine, f"http://127.0.0.1:{port}/hook")
    open_sample(engine, customer="客户-1")
    open_sample(engine, customer="客户-2")
    sender = WebhookDeliverer(engine)
    assert sender.deliver_due().put_off == 1
    clock.set(clock.now() - timedelta(hours=1))
    assert sender.pause_ends(clock.now()) is None
    open_sample(engine, customer="客户-3")  # due at once on the corrected clock
    with receiver(port=port) as hook:
        assert sender.deliver_due().sent == 1  # not held for the pause an hour ahead
        assert len(hook.requests) == 1


@contextmanager
def _paused_worker(engine: Engine) -> Iterator[tuple[Worker, datetime]]:
    """A worker whose webhook sender found its only receiver out of reach a moment ago,
    its jobs armed but never run; and when the pause ends."""
    _subscribe(engine, f"http://127.0.0.1:{_closed_port()}/hook")
    open_sample(engine, customer="客户-1")
    sender = WebhookDeliverer(engine)
    assert sender.deliver_due().retried == 1
    ends = sender.pause_ends(engine.clock.now())
    assert ends is not None
    worker = Worker(engine, webhooks=sender, listen=False)
    worker._scheduler.start(paused=True)
    try:
        yield worker, ends
    finally:
        worker.stop()


def test_the_worker_arms_a_paused_webhook_sender_for_when_its_pause_ends(
    engine: Engine, clock: FixedClock
) -> None:
    """A wake that fired arms each idle sender at once, but a webhook sender whose every
    receiver is out of reach at the end of its pause: an outage costs one attempt a
    pause, not one a wake."""
    with _paused_worker(engine) as (worker, ends):
        open_sample(engine, customer="客户-2", received_at=clock.now() - timedelta(hours=25))
        worker.wake()
        assert worker.fired >= 1
        assert _armed(worker) == ends
        worker._arm_delivery(WEBHOOKS_ID)  # after a run, too
        assert _armed(worker) == ends
        clock.set(ends)
        worker._arm_delivery(WEBHOOKS_ID)
        assert _armed(worker) == ends  # the pause is over: due now


def test_a_subscription_added_during_a_pause_is_not_held_by_it(
    engine: Engine, clock: FixedClock
) -> None:
    """While the only subscription is paused the worker arms the sender for the pause's
    end; a subscription added meanwhile is not paused, and its deliveries go out when
    they fall due."""
    with _paused_worker(engine) as (worker, ends), receiver() as live:
        _subscribe(engine, live.url)
        open_sample(engine, customer="客户-2")
        worker._arm_delivery(WEBHOOKS_ID)
        assert _armed(worker) == clock.now() < ends
        assert worker.webhooks is not None
        report = worker.webhooks.deliver_due()
        assert (report.sent, report.put_off) == (1, 1)
        assert len(live.requests) == 1


def test_a_silent_receiver_is_out_of_reach() -> None:
    """A receiver that takes the connection and never answers has timed out, and is out
    of reach, whichever runs out first: the delivery's time or its socket's."""
    settings = WebhookSettings(allowed_hosts=("127.0.0.1",))
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never accepts
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        for _ in range(10):
            with pytest.raises(WebhookFailure) as failed:
                post(url, b"{}", {}, 0.1, settings)
            assert failed.value.unreachable
            assert failed.value.text == "timed out: no whole answer within 0.1 s"


def _armed(worker: Worker) -> datetime:
    """When the webhook sender's next run is armed for."""
    run_date: datetime = worker._scheduler.get_job(WEBHOOKS_ID).trigger.run_date
    return run_date


def test_deliver_says_how_many_were_put_off(db_url: str, tmp_path: Path) -> None:
    """``casework deliver`` tries the first delivery to a receiver out of reach, puts off
    the rest, says so in a line and in its JSON, and exits 1."""
    config = tmp_path / "c.toml"
    config.write_text('[webhooks]\nallowed_hosts = ["127.0.0.1"]\n')
    common = ["--db", db_url, "--config", str(config)]
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    runner = CliRunner()
    assert runner.invoke(cli, ["webhooks", "add", "--url", url, *common]).exit_code == 0
    for n in range(3):
        opened = runner.invoke(
            cli,
            ["open", "--customer", f"客户-{n}", "--channel", "phone", "--category", "other",
             "--summary", "没人上门", *common],
        )  # fmt: skip
        assert opened.exit_code == 0, opened.output
    mail = ["--smtp", "smtp://127.0.0.1:9"]
    said = runner.invoke(cli, ["deliver", *common, *mail])
    assert said.exit_code == 1
    assert "0 webhook(s) sent; 1 to retry later; 0 dead; 2 put off, out of reach" in said.stdout
    document = runner.invoke(cli, ["deliver", *common, *mail, "--json"])
    assert json.loads(document.stdout)["webhooks"]["put_off"] == 0  # the run claimed none
