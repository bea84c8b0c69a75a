"""Processes killed with SIGKILL at seeded points lose nothing and repeat nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casework.scheduler.mail.delivery import Deliverer
from casework.workflow import Engine, FixedClock
from casework.workflow.config import Settings, settings_from_mapping
from casework.workflow.outbox.mail import Outbox
from tests.support import all_fired_once, open_sample
from tests.support.crash import ProgressLog, run_with_kills
from tests.support.mail_server import TestServer

KILLS = 50


def _mail(server: TestServer) -> Settings:
    return settings_from_mapping(
        {"mail": {"url": server.url, "agent_domain": "example.com", "lease_s": 60}}, "crash"
    )


@pytest.mark.slow
def test_a_worker_killed_at_50_points_fires_and_mails_everything_once(
    db_url: str, server: TestServer
) -> None:
    """Deadline processing and mail delivery, SIGKILLed 50 times: every deadline fired
    once, every breach recorded once, every mail accepted (a resend keeps its
    Message-ID), and the history verifies."""
    settings = _mail(server)
    past = FixedClock(datetime.now(UTC) - timedelta(days=5))
    with Engine.open(db_url, clock=past) as engine:
        for _ in range(30):
            open_sample(engine)

    def work(say: Callable[[str], None]) -> None:
        log = ProgressLog(say)  # each deadline fired and each mail sent is a kill point
        with Engine.open(db_url, config=settings, logger=log) as engine:
            deliverer = Deliverer(engine, batch=3, logger=log)
            while True:
                fired = engine.process_due(batch=3)
                sent = deliverer.deliver_due().messages
                if not fired and not sent:
                    return

    runs = run_with_kills(work, kills=KILLS, seed=20261123)
    assert runs.kills == KILLS
    later = FixedClock(datetime.now(UTC) + timedelta(minutes=2))  # abandoned leases lapse
    with Engine.open(db_url, clock=later, config=settings) as engine:
        Deliverer(engine).deliver_due()
        all_fired_once(engine)
        mails = Outbox(engine.context).list()
        assert {m.status for m in mails} == {"sent"}
        received = server.script.message_ids()
        assert set(received) == {m.message_id for m in mails}
        assert engine.verify().ok


@pytest.mark.slow
def test_open_and_fire_killed_at_50_points_keep_every_acknowledged_step(db_url: str) -> None:
    """Cases opened and moved on by a process SIGKILLed 50 times: everything it reported
    done is stored, nothing is half-written, and every chain verifies."""

    def work(say: Callable[[str], None]) -> None:
        with Engine.open(db_url) as engine:
            while len(engine.list()) < 200:
                case_id = open_sample(engine)
                say(f"open {case_id}")
                for event, data in (("apologise", {}), ("confirm_needs", {}),
                                    ("resolve", {"solution": "fixed"})):  # fmt: skip
                    engine.fire(case_id, event, actor="li.na", data=data)
                    say(f"fire {case_id} {event}")

    runs = run_with_kills(work, kills=KILLS, seed=7)
    assert runs.kills == KILLS
    with Engine.open(db_url) as engine:
        report = engine.verify()
        assert report.ok, report.problems
        for line in runs.lines:
            kind, *rest = line.split()
            if kind == "open":
                assert engine.get(rest[0])
            elif kind == "fire":
                assert rest[1] in [e.event for e in engine.history(rest[0])]


@pytest.mark.slow
def test_webhook_delivery_killed_at_50_points_reaches_every_subscription(db_url: str) -> None:
    """Deadline processing and webhook delivery to a real receiver, SIGKILLed 50 times:
    every event reaches every subscription at least once, a resend carries the same
    ``webhook-id`` and body, and nothing is left unsent."""
    from casework.scheduler.webhooks.delivery import WebhookDeliverer
    from casework.workflow.webhooks.subscriptions import add
    from tests.support.receiver import receiver

    settings = settings_from_mapping(
        {"webhooks": {"lease_s": 60, "allowed_hosts": ["127.0.0.1"]}}, "crash"
    )
    past = FixedClock(datetime.now(UTC) - timedelta(days=5))
    with receiver() as hook, receiver() as other:
        with Engine.open(db_url, clock=past, config=settings) as engine:
            add(engine.context.store, hook.url, "*", settings.webhooks, past.now())
            add(engine.context.store, other.url, "apologise,breach", settings.webhooks, past.now())
            for _ in range(40):
                case_id = open_sample(engine)
                engine.fire(case_id, "apologise", actor="li.na")

        def work(say: Callable[[str], None]) -> None:
            log = ProgressLog(say)  # each deadline fired and each delivery is a kill point
            with Engine.open(db_url, config=settings, logger=log) as engine:
                sender = WebhookDeliverer(engine, batch=3, logger=log)
                while True:
                    fired = engine.process_due(batch=3)
                    report = sender.deliver_due()
                    if not fired and not report.sent and not report.retried:
                        return

        runs = run_with_kills(work, kills=KILLS, seed=20261202)
        assert runs.kills == KILLS
        later = FixedClock(datetime.now(UTC) + timedelta(minutes=2))  # abandoned leases lapse
        with Engine.open(db_url, clock=later, config=settings) as engine:
            WebhookDeliverer(engine).deliver_due()
            rows = Outbox(engine.context, kind="webhook").list()
            assert {r.status for r in rows} == {"sent"}
            events = {
                (e.case_id, e.seq): e.event for c in engine.list() for e in engine.history(c.id)
            }
            assert engine.verify().ok
        for server, wanted in ((hook, None), (other, {"apologise", "breach"})):
            bodies: dict[str, bytes] = {}
            for request in server.requests:
                msg_id = request.headers["webhook-id"]
                assert bodies.setdefault(msg_id, request.body) == request.body  # same resend
            got = {(b["event"]["case_id"], b["event"]["seq"]) for b in map(_json, bodies.values())}
            expected = {k for k, name in events.items() if wanted is None or name in wanted}
            assert got == expected
        assert len(hook.requests) >= len(expected)


def _json(body: bytes) -> Any:
    import json

    return json.loads(body)
