"""Webhooks: queued with each event in its transaction, signed, retried, dead-lettered."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from casework.machines.sla import DEFAULT_DOCUMENT
from casework.scheduler.webhooks.delivery import WebhookDeliverer
from casework.storage.records import WebhookRecord
from casework.workflow import Engine
from casework.workflow.cli import main as cli
from casework.workflow.clock import FixedClock
from casework.workflow.config import load_settings, settings_from_mapping
from casework.workflow.errors import InvalidInput, WebhookNotFound
from casework.workflow.webhooks import signing
from casework.workflow.webhooks.settings import WebhookSettings
from casework.workflow.webhooks.subscriptions import add, checked_url, remove
from tests.support import open_sample
from tests.support.receiver import receiver

LOOPBACK = {"webhooks": {"allowed_hosts": ["127.0.0.1"]}}
"""The tests' receivers listen on loopback, which a subscription may reach only when
``allowed_hosts`` names it."""


@pytest.fixture
def engine(db_url: str, clock: FixedClock) -> Iterator[Engine]:
    """An engine whose webhooks may reach the tests' receivers on 127.0.0.1."""
    with Engine.open(db_url, clock=clock, config=settings_from_mapping(LOOPBACK, "t")) as opened:
        yield opened


def test_every_event_reaches_a_subscription_signed(engine: Engine, clock: FixedClock) -> None:
    with receiver() as hook:
        added = add(engine.context.store, hook.url, "*", engine.settings.webhooks, clock.now())
        case_id = open_sample(engine)
        engine.fire(case_id, "apologise", actor="li.na")
        report = WebhookDeliverer(engine).deliver_due()
        assert report.sent == 2
        assert [json.loads(r.body)["type"] for r in hook.requests] == [
            "case.open",
            "case.apologise",
        ]
        first = hook.requests[1]
        body = json.loads(first.body)
        assert body["case"]["id"] == case_id
        assert body["case"]["version"] == 2
        assert body["event"]["seq"] == 2
        assert body["event"]["actor"] == "li.na"
        stamp = int(clock.now().timestamp())
        assert first.headers["webhook-timestamp"] == str(stamp)
        assert first.headers["webhook-signature"].startswith("v1,")
        assert signing.verify(added.secret, first.headers, first.body, stamp)
        assert not signing.verify(added.secret, first.headers, first.body + b" ", stamp)
        assert WebhookDeliverer(engine).deliver_due().sent == 0  # each sent once


def test_only_the_events_asked_for(engine: Engine, clock: FixedClock) -> None:
    with receiver() as hook:
        add(
            engine.context.store,
            hook.url,
            "case.resolve,apologise",
            engine.settings.webhooks,
            clock.now(),
        )
        case_id = open_sample(engine)
        engine.fire(case_id, "apologise", actor="li.na")
        engine.fire(case_id, "note", actor="li.na", note="rang back")
        WebhookDeliverer(engine).deliver_due()
        assert [json.loads(r.body)["type"] for r in hook.requests] == ["case.apologise"]


def test_failures_retry_with_the_same_id_then_dead_letter(
    db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[webhooks]\nmax_attempts = 3\nbackoff_s = 10\nallowed_hosts = ["127.0.0.1"]\n'
    )
    with (
        Engine.open(db_url, clock=clock, config=load_settings(config)) as engine,
        receiver(answers=[500, 503, 500, 500]) as hook,
    ):
        add(engine.context.store, hook.url, "open", engine.settings.webhooks, clock.now())
        open_sample(engine)
        sender = WebhookDeliverer(engine)
        assert sender.deliver_due().retried == 1
        assert sender.deliver_due().sent == 0  # backing off
        clock.advance(timedelta(seconds=20))
        assert sender.deliver_due().retried == 1
        clock.advance(timedelta(seconds=60))
        report = sender.deliver_due()
        assert report.dead == 1
        assert "HTTP 500" in report.errors[0]
        ids = {r.headers["webhook-id"] for r in hook.requests}
        assert len(hook.requests) == 3
        assert len(ids) == 1
        row = sender.outbox.list(status="dead")[0]
        assert "gave up after 3 attempts: HTTP 500" in (row.last_error or "")
        sender.outbox.retry(row.id)
        assert sender.deliver_due().retried == 1  # the receiver answers 500 once more ...
        clock.advance(timedelta(seconds=20))
        assert sender.deliver_due().sent == 1  # ... then 204
        assert len({r.headers["webhook-id"] for r in hook.requests}) == 1


def test_a_removed_subscription_gets_nothing_more(engine: Engine, clock: FixedClock) -> None:
    with receiver() as hook:
        added = add(engine.context.store, hook.url, "*", engine.settings.webhooks, clock.now())
        open_sample(engine)
        remove(engine.context.store, added.record.id, clock.now())
        open_sample(engine)
        report = WebhookDeliverer(engine).deliver_due()
        assert (report.sent, report.dead) == (0, 1)
        assert hook.requests == []
    with pytest.raises(WebhookNotFound):
        remove(engine.context.store, "nope", clock.now())


@pytest.mark.parametrize(
    "url",
    ["ftp://x/", "http://", "http://user:pw@host/", "https://host:99999/", "", "x" * 2001],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        checked_url(url, WebhookSettings())


def test_allowed_hosts_restrict_subscriptions() -> None:
    settings = WebhookSettings(allowed_hosts=("127.0.0.1",))
    assert checked_url("http://127.0.0.1:9/x", settings)
    with pytest.raises(InvalidInput, match="allowed_hosts"):
        checked_url("http://example.com/x", settings)


def test_the_command_line(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    config = tmp_path / "c.toml"
    config.write_text('[webhooks]\nallowed_hosts = ["127.0.0.1"]\n')
    with receiver() as hook:
        added = runner.invoke(
            cli,
            ["webhooks", "add", "--url", hook.url, "--db", db_url, "--config", str(config),
             "--json"],
        )  # fmt: skip
        assert added.exit_code == 0, added.output
        document = json.loads(added.stdout)
        assert document["secret"].startswith("whsec_")
        assert document["events"] == ["*"]
        opened = runner.invoke(
            cli,
            ["open", "--customer", "C-1", "--channel", "phone", "--category", "other",
             "--summary", "s", "--db", db_url],
        )  # fmt: skip
        assert opened.exit_code == 0, opened.output
        sent = runner.invoke(
            cli,
            ["deliver", "--db", db_url, "--config", str(config), "--json",
             "--smtp", "smtp://127.0.0.1:9"],
        )  # fmt: skip
        assert json.loads(sent.stdout)["webhooks"]["sent"] == 1
        listed = runner.invoke(cli, ["webhooks", "deliveries", "--db", db_url, "--json"])
        (row,) = json.loads(listed.stdout)
        assert row["status"] == "sent"
        assert row["type"] == "case.open"
        assert row["webhook_id"] == hook.requests[0].headers["webhook-id"]
        hooks = json.loads(
            runner.invoke(cli, ["webhooks", "list", "--db", db_url, "--json"]).stdout
        )
        assert "secret" not in hooks[0]
        gone = runner.invoke(cli, ["webhooks", "remove", document["id"], "--db", db_url])
        assert gone.exit_code == 0
        assert "removed" in gone.output
        retry = runner.invoke(cli, ["webhooks", "retry", str(row["id"]), "--db", db_url])
        assert retry.exit_code == 2
        assert "not dead" in retry.stderr


def test_a_dripping_receiver_does_not_hold_escalation_mail(db_url: str, server: Any) -> None:
    """A receiver that answers a byte at a time for as long as the test likes: the same
    worker's escalation mail goes out while it still drips (webhooks have their own
    thread), where before the mail waited for the whole drip."""
    from casework.scheduler import Worker
    from casework.scheduler.mail.delivery import Deliverer

    clock = {"runs_in": ["received"], "within_s": 3600, "warn_at": None}
    settings = settings_from_mapping(
        {"sla": {**DEFAULT_DOCUMENT, "clocks": {"first_response": clock}},
         "mail": {"url": server.url, "agent_domain": "example.com"},
         "webhooks": {**LOOPBACK["webhooks"], "timeout_s": 300}},
        "test",
    )  # fmt: skip
    release = threading.Event()
    with receiver(drip=release) as hook, Engine.open(db_url, config=settings) as engine:
        add(engine.context.store, hook.url, "open", settings.webhooks, datetime.now(UTC))
        open_sample(engine)  # its breach is an hour away; its webhook starts the drip
        worker = Worker(
            engine, poll_s=0.2, deliverer=Deliverer(engine), webhooks=WebhookDeliverer(engine)
        )
        worker.start()
        try:
            assert hook.dripping.wait(30)
            # a case breached already: the worker fires it and mails the supervisor
            open_sample(engine, received_at=datetime.now(UTC) - timedelta(hours=2))
            assert server.script.wait_for(1)
            assert not hook.dripped.is_set()  # the receiver is dripping still
        finally:
            release.set()
            worker.stop()
    assert server.script.received[0][0] == ("store-supervisor@casework.invalid",)


def test_one_time_budget_bounds_the_whole_exchange(db_url: str, clock: FixedClock) -> None:
    """``timeout_s`` is the whole delivery's time: a receiver dripping a byte every 20 ms
    (never a read timeout) is cut off, and the delivery retried later."""
    settings = settings_from_mapping(
        {"webhooks": {**LOOPBACK["webhooks"], "timeout_s": 0.5}}, "test"
    )
    release = threading.Event()
    done: list[Any] = []
    with (
        receiver(drip=release) as hook,
        Engine.open(db_url, clock=clock, config=settings) as engine,
    ):
        add(engine.context.store, hook.url, "open", settings.webhooks, clock.now())
        open_sample(engine)
        sending = threading.Thread(
            target=lambda: done.append(WebhookDeliverer(engine).deliver_due())
        )
        sending.start()
        sending.join(60)
        finished = not sending.is_alive()
        release.set()
        sending.join()
        assert finished  # it came back while the receiver was still dripping
        (report,) = done
        assert (report.sent, report.retried) == (0, 1)
        assert "timed out" in report.errors[0]
        assert hook.dripped.wait(30)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://127.1/hook",
        "http://2130706433/hook",
        "http://10.1.2.3/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.9/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::127.0.0.1]/hook",
        "http://[64:ff9b::10.0.0.1]/hook",
        "http://[2002:a00:1::]/hook",
        "http://[ff02::1]/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://localhost:8080/hook",
        "https://LOCALHOST/hook",
    ],
)
def test_internal_targets_are_refused_unless_named(url: str) -> None:
    """Loopback, private, shared and link-local targets, IPv4 and IPv6, literal or by a
    name that resolves to them, are refused; ``allowed_hosts`` naming the host or a
    network holding it lets them through."""
    with pytest.raises(InvalidInput, match=r"internal address .*allowed_hosts"):
        checked_url(url, WebhookSettings())
    host = urlsplit(url).hostname or ""
    assert checked_url(url, WebhookSettings(allowed_hosts=(host,))) == url


def test_allowed_networks_and_public_hosts() -> None:
    assert checked_url("http://10.8.1.2/x", WebhookSettings(allowed_hosts=("10.8.0.0/16",)))
    with pytest.raises(InvalidInput, match="allowed_hosts"):
        checked_url("http://10.9.1.2/x", WebhookSettings(allowed_hosts=("10.8.0.0/16",)))
    assert checked_url("https://93.184.215.14/x", WebhookSettings())  # a public address
    assert checked_url("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/x", WebhookSettings())


def test_a_delivery_checks_the_address_again(engine: Engine, clock: FixedClock) -> None:
    """A subscription whose host is internal by the time of delivery (settings changed,
    or a name that resolves elsewhere now: DNS rebinding) is sent nothing."""
    with receiver() as hook:
        port = urlsplit(hook.url).port
        add(engine.context.store, hook.url, "open", engine.settings.webhooks, clock.now())
        engine.context.store.webhooks.add(  # as if "localhost" had resolved to a public address
            WebhookRecord(id="rebound", url=f"http://localhost:{port}/hook", events=("open",),
                          secret=signing.new_secret(), created_at=clock.now())
        )  # fmt: skip
        open_sample(engine)
        strict = Engine.open(engine.db, clock=clock)  # allowed_hosts names nothing now
        try:
            report = WebhookDeliverer(strict).deliver_due()
        finally:
            strict.close()
        assert (report.sent, report.retried) == (0, 2)
        assert all("refused: host" in error for error in report.errors)
        assert hook.requests == []


def test_a_receivers_answer_is_kept_and_shown_as_printable_text(
    db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    """ESC sequences (a screen clear, a window title), a bell, line breaks and a
    right-to-left override in an answer reach neither the stored row, the CLI's table
    and JSON, nor the log."""
    hostile = b"\x1b[2J\x1b]0;owned\x07 denied\r\nX-Evil: 1\xe2\x80\xae" + b"z" * 1000
    config = tmp_path / "c.toml"
    config.write_text('[webhooks]\nallowed_hosts = ["127.0.0.1"]\n')
    lines: list[dict[str, Any]] = []
    with (
        receiver(answers=[500], body=hostile) as hook,
        Engine.open(db_url, clock=clock, config=load_settings(config)) as engine,
    ):
        add(engine.context.store, hook.url, "open", engine.settings.webhooks, clock.now())
        open_sample(engine)
        report = WebhookDeliverer(engine, logger=_Lines(lines)).deliver_due()
        assert report.retried == 1
        (row,) = engine.context.store.outbox.rows(kind="webhook")
    stored = row.last_error or ""
    assert stored.startswith("HTTP 500: [2J ]0;owned denied X-Evil: 1 zzz")
    assert len(stored) < 350
    shown = CliRunner().invoke(
        cli, ["webhooks", "deliveries", "--db", db_url, "--config", str(config)]
    )
    as_json = CliRunner().invoke(
        cli, ["webhooks", "deliveries", "--db", db_url, "--config", str(config), "--json"]
    )
    logged = json.dumps(lines, ensure_ascii=False)
    for text in (stored, shown.output, json.loads(as_json.stdout)[0]["last_error"], logged):
        assert not any(c in text for c in "\x1b\x07\r\u202e")
    assert "HTTP 500: [2J" in shown.output


class _Lines:
    """A logger that keeps what it is told."""

    def __init__(self, lines: list[dict[str, Any]]) -> None:
        self.lines = lines

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self.lines.append({"event": event, **fields})


def test_the_command_line_refuses_an_internal_target_in_one_line(db_url: str) -> None:
    refused = CliRunner().invoke(
        cli, ["webhooks", "add", "--url", "http://169.254.169.254/latest/", "--db", db_url]
    )
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1
    assert "internal address (169.254.169.254)" in refused.stderr
    listed = CliRunner().invoke(cli, ["webhooks", "list", "--db", db_url, "--json"])
    assert json.loads(listed.stdout) == []


def test_a_subscription_made_while_an_event_waits_for_its_case_hears_it(
    pg_url: str, clock: FixedClock
) -> None:
    """The subscriptions are read once the case's lock is granted (on PostgreSQL in the
    round trip that takes it): one committed while the event waited for another
    writer is heard."""
    import psycopg

    from casework.storage.records import WEBHOOK_KIND
    from casework.workflow.outbox.mail import Outbox

    config = settings_from_mapping(LOOPBACK, "t")
    with Engine.open(pg_url, clock=clock, config=config) as engine:
        case_id = open_sample(engine)
        with psycopg.connect(pg_url.replace("+psycopg", "")) as holder:
            holder.execute("SELECT id FROM cases WHERE id = %s FOR UPDATE", (case_id,))
            firing = threading.Thread(
                target=engine.fire, args=(case_id, "apologise"), kwargs={"actor": "li.na"}
            )
            firing.start()
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as watch:
                while not watch.execute(waiting).fetchone()[0]:  # type: ignore[index]
                    firing.join(0.01)
            added = add(
                engine.context.store, "http://127.0.0.1:9/h", "*", engine.settings.webhooks,
                clock.now(),
            )  # fmt: skip
            holder.commit()
            firing.join()
        queued = Outbox(engine.context, kind=WEBHOOK_KIND).list()
        assert [r.body["webhook"] for r in queued] == [added.record.id]
        assert engine.get(case_id).version == 2
