"""Customers told of their cases: notifications queued with the event that causes them,
sent by text message (a signed JSON POST to a provider on loopback) or mail (a real
SMTP server), in Chinese or English, held through quiet hours, retried and buried as
mail is, never queued without consent or contact, and deleted by erasure."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casework.scheduler.notify.delivery import NotifyDeliverer
from casework.scheduler.notify.sms import HttpSmsProvider, SmsFailure, verify
from casework.scheduler.worker import Worker
from casework.workflow import Engine, FixedClock
from casework.workflow.config import Settings, settings_from_mapping
from casework.workflow.errors import ConfigError
from casework.workflow.notify.settings import SmsSettings
from casework.workflow.outbox.mail import Outbox
from casework.workflow.outbox.notify import NotifyOutbox, quiet_until
from casework.workflow.survey import token as tokens
from tests.support import START, book_visit, open_sample, wait_until
from tests.support.crash import ProgressLog, run_with_kills
from tests.support.mail_server import TestServer
from tests.support.receiver import Receiver, receiver

SECRET = "sms-shared-secret-0123456789"  # noqa: S105 - a test secret
SURVEY = "survey-secret-0123456789abcdef"
PHONE = "+86 138 0000 0000"


def _settings(sms_url: str = "http://127.0.0.1:9/sms", **notify: Any) -> Settings:
    document: dict[str, Any] = {
        "console": {"base_url": "https://cs.example.com"},
        "notify": {
            "channel": "sms",
            "timezone": "Asia/Shanghai",
            "sms": {"url": sms_url, "secret": SECRET},
            **notify,
        },
        "survey": {"secret": SURVEY},
    }
    return settings_from_mapping(document, "test")


@pytest.fixture
def provider() -> Iterator[Receiver]:
    with receiver() as got:
        yield got


def _engine(db_url: str, settings: Settings, at: datetime = START) -> Engine:
    return Engine.open(db_url, clock=FixedClock(at), config=settings)


def _texts(got: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in got.requests]


def test_settings_are_checked() -> None:
    """[notify] and [survey] name what they hold; a bad value is one line naming its key."""
    settings = _settings(quiet_hours="21:00-08:00")
    assert settings.notify.channel == "sms"
    assert settings.notify.sms.url == "http://127.0.0.1:9/sms"
    assert settings.notify.survey_secrets == (SURVEY,)
    assert settings.notify.survey_days == 14
    bad = [
        ({"notify": {"channel": "fax"}}, "notify.channel"),
        ({"notify": {"quiet_hours": "21-8"}}, "notify.quiet_hours"),
        ({"notify": {"timezone": "Mars/Olympus"}}, "notify.timezone"),
        ({"notify": {"sms": {"url": "ftp://x"}}}, "notify.sms.url"),
        ({"notify": {"sms": {"secret": "short"}}}, "notify.sms"),
        ({"notify": {"loud": 1}}, "unknown key loud"),
        ({"survey": {"valid_days": 0}}, "survey.valid_days"),
    ]
    for document, said in bad:
        with pytest.raises(ConfigError, match=said.replace(".", r"\.")):
            settings_from_mapping(document, "test")


def test_quiet_hours_end_in_the_branchs_zone() -> None:
    """21:00-08:00 in Shanghai: 22:30 there is held until 08:00 the next morning."""
    notify = _settings(quiet_hours="21:00-08:00").notify
    late = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    assert quiet_until(notify, None, late) == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    assert quiet_until(notify, None, datetime(2026, 11, 23, 3, 0, tzinfo=UTC)) is None


def test_events_queue_one_notification_each_without_personal_values(db_url: str) -> None:
    """Opened, visit booked, part awaited and resolved each queue one row, in the
    event's transaction; the row holds the case number and the event's facts, never
    the customer's name or contact; the mail outbox does not list it."""
    with _engine(db_url, _settings()) as engine:
        case_id = open_sample(engine, customer="Zhang San")
        book_visit(engine, case_id, START + timedelta(days=1))
        engine.fire(
            case_id, "route", actor="li.na",
            data={"to": "procurement", "promised": (START + timedelta(days=5)).isoformat()},
        )  # fmt: skip
        engine.fire(case_id, "note", actor="li.na", data={"note": "called"})
        engine.fire(case_id, "resolve", actor="li.na", data={"solution": "new compressor"})
        rows = NotifyOutbox(engine.context).list()
        assert [r.body["template"] for r in rows] == [
            "opened", "visit_booked", "part_wait", "resolved",
        ]  # fmt: skip
        assert len({r.dedupe_key for r in rows}) == 4
        stored = json.dumps([[r.body, list(r.recipients)] for r in rows], ensure_ascii=False)
        assert "Zhang San" not in stored
        assert "138" not in stored
        assert rows[0].body["values"] == {"hours": 24}
        assert Outbox(engine.context).list() == []  # staff mail only


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"attributes": {"notify": "none"}}, "consent withdrawn"),
        ({"contact": None}, "no contact"),
        ({"contact": "li@example.com"}, "an address where a phone number is needed"),
    ],
)
def test_nothing_is_queued_without_consent_or_a_reachable_contact(
    db_url: str, overrides: dict[str, Any], why: str
) -> None:
    """notify=none, no contact, or a contact the channel cannot reach: nothing queued."""
    with _engine(db_url, _settings()) as engine:
        open_sample(engine, **overrides)
        assert NotifyOutbox(engine.context).list() == [], why


def test_no_notify_table_sends_nothing(db_url: str) -> None:
    """Without [notify] the default channel is none: casework writes only to staff."""
    with _engine(db_url, Settings()) as engine:
        open_sample(engine)
        assert NotifyOutbox(engine.context).list() == []


def test_a_text_message_is_signed_and_worded_in_the_customers_language(
    db_url: str, provider: Receiver
) -> None:
    """The acknowledgement goes to the provider as signed JSON: the case number and the
    first-response target, in Chinese by default and English for language=en; a booked
    visit's window in the customer's local time."""
    with _engine(db_url, _settings(provider.url)) as engine:
        zh = open_sample(engine)
        en = open_sample(engine, attributes={"language": "en"}, customer="CUST-2")
        book_visit(engine, en, datetime(2026, 11, 24, 6, 0, tzinfo=UTC))
        report = NotifyDeliverer(engine).deliver_due()
        assert (report.sent, report.dead) == (3, 0)
        sent = _texts(provider)
        assert [m["to"] for m in sent] == [PHONE] * 3
        assert sent[0]["text"] == f"我们已收到您的投诉，服务单号 {zh}。我们将在 24 小时内答复您。"  # noqa: RUF001
        assert sent[1]["text"].startswith(f"We received your complaint, case number {en}.")
        assert "2026-11-24 14:00-16:00 (Asia/Shanghai)" in sent[2]["text"]
        now = int(START.timestamp())
        for request in provider.requests:
            assert verify(SECRET, request.headers, request.body, now)
            assert not verify("another-secret-0123456789", request.headers, request.body, now)
        rows = NotifyOutbox(engine.context).list()
        assert {r.status for r in rows} == {"sent"}
        assert [m["id"] for m in sent] == [r.message_id for r in rows]


def test_the_resolved_message_carries_the_survey_link(db_url: str, provider: Receiver) -> None:
    """A resolved case's message links to /s/<token>, a token for this case alone."""
    with _engine(db_url, _settings(provider.url)) as engine:
        case_id = open_sample(engine)
        engine.fire(case_id, "apologise", actor="li.na")
        engine.fire(case_id, "confirm_needs", actor="li.na")
        engine.fire(case_id, "resolve", actor="li.na", data={"solution": "fixed"})
        NotifyDeliverer(engine).deliver_due()
        last = _texts(provider)[-1]["text"]
        assert last.startswith(f"服务单 {case_id} 已处理完毕")
        url = last.rsplit("：", 1)[1]  # noqa: RUF001 - Chinese punctuation
        assert url.startswith("https://cs.example.com/s/")
        token = url.rsplit("/", 1)[1]
        assert tokens.verify(token, (SURVEY,), START) == case_id


def test_failures_retry_then_die_as_mail_does(db_url: str) -> None:
    """A 503 is retried with backoff; a 400 is a dead letter at once; attempts run out."""
    with receiver([503, 400]) as got, _engine(db_url, _settings(got.url)) as engine:
        open_sample(engine)
        open_sample(engine, customer="CUST-2")
        first = NotifyDeliverer(engine).deliver_due()
        assert (first.sent, first.retried, first.dead) == (0, 1, 1)
        rows = NotifyOutbox(engine.context).list()
        assert sorted(r.status for r in rows) == ["dead", "pending"]
        assert all(r.last_error and r.last_error.startswith("HTTP") for r in rows)
        assert isinstance(engine.clock, FixedClock)
        engine.clock.advance(timedelta(hours=2))
        again = NotifyDeliverer(engine).deliver_due()
        assert again.sent == 1
    with receiver([503] * 3) as got:
        settings = _settings(got.url, max_attempts=2, backoff_s=1)
        with _engine(db_url, settings) as engine:
            case_id = open_sample(engine, customer="CUST-3")
            assert isinstance(engine.clock, FixedClock)
            for _ in range(2):
                engine.clock.advance(timedelta(minutes=5))
                NotifyDeliverer(engine).deliver_due()
            dead = [
                r for r in NotifyOutbox(engine.context).list(case_id=case_id) if r.status == "dead"
            ]
            assert len(dead) == 1
            assert "gave up after 2 attempts" in str(dead[0].last_error)


def test_an_sms_adapter_is_a_small_subclass(db_url: str) -> None:
    """Another provider's adapter overrides how a message is put and signed."""
    seen: list[tuple[str, str]] = []

    class Recording(HttpSmsProvider):
        def send(self, to: str, text: str, message_id: str, now: datetime) -> str:
            if not seen:
                seen.append((to, text))
                raise SmsFailure("quota", permanent=False)
            seen.append((to, text))
            return "provider-42"

    with _engine(db_url, _settings()) as engine:
        open_sample(engine)
        adapter = Recording(SmsSettings(url="https://sms.example.com", secret=SECRET))
        assert NotifyDeliverer(engine, sms=adapter).deliver_due().retried == 1
        assert isinstance(engine.clock, FixedClock)
        engine.clock.advance(timedelta(hours=1))
        assert NotifyDeliverer(engine, sms=adapter).deliver_due().sent == 1
        assert NotifyOutbox(engine.context).list()[0].last_error == "provider-42"


def test_quiet_hours_hold_messages_until_they_end(db_url: str, provider: Receiver) -> None:
    """A case opened at 22:30 in Shanghai is acknowledged at 08:00."""
    late = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    settings = _settings(provider.url, quiet_hours="21:00-08:00")
    with _engine(db_url, settings, late) as engine:
        open_sample(engine)
        report = NotifyDeliverer(engine).deliver_due()
        assert (report.sent, report.held) == (0, 1)
        row = NotifyOutbox(engine.context).list()[0]
        assert (row.status, row.held_until) == ("held", datetime(2026, 11, 24, 0, 0, tzinfo=UTC))
        assert isinstance(engine.clock, FixedClock)
        engine.clock.set(datetime(2026, 11, 24, 0, 0, tzinfo=UTC))
        assert NotifyDeliverer(engine).deliver_due().sent == 1
        assert len(provider.requests) == 1


def test_email_goes_through_the_smtp_server(db_url: str, server: TestServer) -> None:
    """notify=email: a plain-text mail to the customer's address, its Message-ID stable."""
    settings = settings_from_mapping(
        {"mail": {"url": server.url, "sender": "Service <service@example.com>"},
         "notify": {"channel": "email", "language": "en"}},
        "test",
    )  # fmt: skip
    with _engine(db_url, settings) as engine:
        case_id = open_sample(engine, contact="li@example.com")
        assert NotifyDeliverer(engine).deliver_due().sent == 1
        assert server.script.wait_for(1)
        to, message, _ = server.script.received[0]
        assert to == ("li@example.com",)
        assert message["Subject"] == f"We received your complaint ({case_id})"
        assert case_id in message.get_content()
        row = NotifyOutbox(engine.context).list()[0]
        assert str(message["Message-ID"]) == f"<{row.message_id}@example.com>"


def test_a_missed_visit_apologises(db_url: str, provider: Receiver) -> None:
    """The appointment timer's appointment_missed, recorded by the worker, queues the
    apology with the new booking step."""
    with _engine(db_url, _settings(provider.url)) as engine:
        case_id = open_sample(engine, attributes={"language": "en"})
        book_visit(engine, case_id, START + timedelta(hours=1))
        assert isinstance(engine.clock, FixedClock)
        engine.clock.advance(timedelta(hours=4))
        engine.process_due()
        templates = [r.body["template"] for r in NotifyOutbox(engine.context).list()]
        assert templates == ["opened", "visit_booked", "visit_missed"]
        NotifyDeliverer(engine).deliver_due()
        assert "we are sorry" in _texts(provider)[-1]["text"]


def test_erasure_deletes_pending_notifications(db_url: str) -> None:
    """Erasing the customer deletes what was not sent yet; nothing is sent afterwards."""
    with _engine(db_url, _settings()) as engine:
        open_sample(engine, customer="Zhang San")
        other = open_sample(engine, customer="Li Si")
        engine.erase("Zhang San", actor="dpo", reason="asked")
        rows = NotifyOutbox(engine.context).list()
        assert [r.case_id for r in rows] == [other]


def test_an_erased_customer_is_never_written_to(db_url: str, provider: Receiver) -> None:
    """A row claimed before the erasure finds no contact when it is sent: dead, unsent."""
    with _engine(db_url, _settings(provider.url)) as engine:
        case_id = open_sample(engine, customer="Zhang San")
        outbox = NotifyOutbox(engine.context)
        claim = outbox.claim("t" * 32, limit=10)
        engine.erase("Zhang San", actor="dpo", reason="asked")
        deliverer = NotifyDeliverer(engine)
        report: Any = type("R", (), {"sent": 0, "retried": 0, "dead": 0, "errors": []})()
        for row in claim.rows:
            deliverer._send(row, claim.token, report, None)
        assert provider.requests == []
        assert [r.case_id for r in outbox.list()] == []  # erasure deleted the claimed row
        assert case_id


def test_the_worker_acknowledges_within_its_wake(db_url: str, provider: Receiver) -> None:
    """A phone complaint opened while the worker runs is acknowledged by SMS."""
    with _engine(db_url, _settings(provider.url)) as engine:
        worker = Worker(engine, poll_s=0.2, notifications=NotifyDeliverer(engine), listen=False)
        worker.start()
        try:
            open_sample(engine)
            wait_until(lambda: len(provider.requests) >= 1, what="the acknowledgement")
        finally:
            worker.stop()
        assert NotifyOutbox(engine.context).list()[0].status == "sent"


@pytest.mark.slow
def test_a_sender_killed_at_10_points_sends_each_notification_once(
    db_url: str, provider: Receiver
) -> None:
    """Sending SIGKILLed 10 times: one row per event, every row sent, and every id the
    provider got is a row's (a resend keeps its id, so the provider drops repeats)."""
    settings = _settings(provider.url, lease_s=2)  # a killed sender's claim lapses soon
    with _engine(db_url, settings, datetime.now(UTC) - timedelta(minutes=5)) as engine:
        for n in range(40):
            open_sample(engine, customer=f"C{n}")

    def work(say: Callable[[str], None]) -> None:
        with Engine.open(db_url, config=settings) as engine:
            while NotifyDeliverer(engine, batch=3, logger=ProgressLog(say)).deliver_due().sent:
                pass

    runs = run_with_kills(work, kills=10, seed=20261205, max_lines=3)
    assert runs.kills == 10
    later = FixedClock(datetime.now(UTC) + timedelta(minutes=5))  # abandoned leases lapse
    with Engine.open(db_url, clock=later, config=settings) as engine:
        NotifyDeliverer(engine).deliver_due()
        rows = NotifyOutbox(engine.context).list()
        assert len(rows) == 40
        assert {r.status for r in rows} == {"sent"}
        ids = [m["id"] for m in _texts(provider)]
        assert set(ids) == {r.message_id for r in rows}
