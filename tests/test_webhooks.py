"""Webhooks: queued with each event in its transaction, signed, retried, dead-lettered."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from casework.scheduler.webhooks.delivery import WebhookDeliverer
from casework.workflow import Engine
from casework.workflow.cli import main as cli
from casework.workflow.clock import FixedClock
from casework.workflow.config import load_settings
from casework.workflow.errors import InvalidInput, WebhookNotFound
from casework.workflow.webhooks import signing
from casework.workflow.webhooks.settings import WebhookSettings
from casework.workflow.webhooks.subscriptions import add, checked_url, remove
from tests.support import open_sample
from tests.support.receiver import receiver


def test_every_event_reaches_a_subscription_signed(engine: Engine, clock: FixedClock) -> None:
    with receiver() as hook:
        added = add(engine.store, hook.url, "*", engine.settings.webhooks, clock.now())
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
        add(engine.store, hook.url, "case.resolve,apologise", engine.settings.webhooks, clock.now())
        case_id = open_sample(engine)
        engine.fire(case_id, "apologise", actor="li.na")
        engine.fire(case_id, "note", actor="li.na", note="rang back")
        WebhookDeliverer(engine).deliver_due()
        assert [json.loads(r.body)["type"] for r in hook.requests] == ["case.apologise"]


def test_failures_retry_with_the_same_id_then_dead_letter(
    db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[webhooks]\nmax_attempts = 3\nbackoff_s = 10\n")
    with (
        Engine.open(db_url, clock=clock, config=load_settings(config)) as engine,
        receiver(answers=[500, 503, 500, 500]) as hook,
    ):
        add(engine.store, hook.url, "open", engine.settings.webhooks, clock.now())
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
        added = add(engine.store, hook.url, "*", engine.settings.webhooks, clock.now())
        open_sample(engine)
        remove(engine.store, added.record.id, clock.now())
        open_sample(engine)
        report = WebhookDeliverer(engine).deliver_due()
        assert (report.sent, report.dead) == (0, 1)
        assert hook.requests == []
    with pytest.raises(WebhookNotFound):
        remove(engine.store, "nope", clock.now())


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


def test_the_command_line(db_url: str) -> None:
    runner = CliRunner()
    with receiver() as hook:
        added = runner.invoke(cli, ["webhooks", "add", "--url", hook.url, "--db", db_url, "--json"])
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
            cli, ["deliver", "--db", db_url, "--json", "--smtp", "smtp://127.0.0.1:9"]
        )
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
