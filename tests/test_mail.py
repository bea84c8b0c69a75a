"""Escalation mails delivered over a real SMTP server on loopback, on both databases."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from casework.machines.sla import DEFAULT_DOCUMENT
from casework.scheduler import Worker
from casework.scheduler.mail.delivery import Deliverer
from casework.scheduler.worker import DELIVER_ID
from casework.workflow import Engine, FixedClock
from casework.workflow.cli import main
from casework.workflow.config import Settings, settings_from_mapping
from casework.workflow.errors import ConfigError
from casework.workflow.mail.render import message_id
from casework.workflow.outbox.mail import Outbox
from tests.support import START, open_sample, racers
from tests.support.mail_server import TestServer, self_signed

SUPERVISOR = "store-supervisor@casework.invalid"


def _settings(server: TestServer, **mail: Any) -> Settings:
    table = {
        "url": server.url,
        "sender": "Casework <casework@example.com>",
        "agent_domain": "example.com",
        "backoff_s": 60,
        "max_attempts": 3,
        "languages": {"Shenzhen": "zh"},
        "max_age_s": 7 * 86400,  # these tests send long after the deadlines fell due
        **mail,
    }
    return settings_from_mapping({"mail": table}, "test")


@pytest.fixture
def mail_engine(db_url: str, clock: FixedClock, server: TestServer) -> Iterator[Engine]:
    """An engine whose mail goes to the test server."""
    with Engine.open(db_url, clock=clock, config=_settings(server)) as engine:
        yield engine


def _breach(engine: Engine, clock: FixedClock, cases: int = 1, **overrides: Any) -> list[str]:
    """Open cases and let 24 hours pass: a warning and a level-1 escalation each."""
    ids = [open_sample(engine, **overrides) for _ in range(cases)]
    clock.advance(timedelta(hours=24))
    engine.process_due()
    return ids


def _statuses(engine: Engine) -> dict[str, int]:
    return {k: v for k, v in Outbox(engine.context).counts().items() if v}


def test_a_warning_and_an_escalation_carry_what_a_supervisor_needs(
    mail_engine: Engine, clock: FixedClock, server: TestServer
) -> None:
    """Recipients, subject, both bodies, history and a Message-ID fixed by the dedupe key."""
    [case_id] = _breach(mail_engine, clock)
    mail_engine.fire(case_id, "note", actor="li.na", note="after the breach")
    report = Deliverer(mail_engine).deliver_due()
    assert (report.sent, report.messages, report.dead, report.retried) == (2, 2, 0, 0)
    by_to = {to: msg for to, msg, _ in server.script.received}
    assert set(by_to) == {("li.na@example.com",), (SUPERVISOR,)}

    warning = by_to[("li.na@example.com",)]
    assert warning["Subject"].startswith(f"[casework] Warning: case {case_id} First response")
    assert warning["Message-ID"] == message_id([f"{case_id}:first_response:1:0"], "example.com")
    escalation = by_to[(SUPERVISOR,)]
    subject = escalation["Subject"]
    assert f"Level 1 (store supervisor): case {case_id}" in subject
    assert "overdue by 0m" in subject  # processed the moment it fell due
    assert "Guangzhou" in subject
    assert "Service delayed" in subject  # labels, never identifiers
    assert escalation["From"] == "Casework <casework@example.com>"
    assert escalation["Auto-Submitted"] == "auto-generated"
    text = escalation.get_body(("plain",)).get_content()
    html = escalation.get_body(("html",)).get_content()
    for needed in ("li.na", "Guangzhou", "Phone", "CUST-1", "Nobody came.", "SLA warning"):
        assert needed in text
        assert needed in html
    assert "after the breach" not in text  # the history as it was at the breach
    mails = Outbox(mail_engine.context).list(status="sent")
    assert {m.message_id for m in mails} == {
        str(m["Message-ID"]) for _, m, _ in server.script.received
    }


def test_chinese_mails_for_a_chinese_branch_are_encoded(
    mail_engine: Engine, clock: FixedClock, server: TestServer
) -> None:
    """A Chinese subject is RFC 2047 encoded on the wire and reads back intact."""
    _breach(mail_engine, clock, branch="Shenzhen", summary="师傅没有按约定时间上门")
    Deliverer(mail_engine).deliver_due()
    escalation = next(m for to, m, _ in server.script.received if to == (SUPERVISOR,))
    raw = next(r for to, _, r in server.script.received if to == (SUPERVISOR,))
    assert "1 级升级" in escalation["Subject"]
    assert "师傅没有按约定时间上门" in escalation["Subject"]
    assert raw.isascii()  # 8-bit text only inside encoded words and transfer-encoded bodies
    assert "投诉内容" in escalation.get_body(("plain",)).get_content()
    assert escalation["Content-Language"] == "zh"


def _bodies(message: Any) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def test_a_chinese_escalation_speaks_labels_and_names_its_zone(
    db_url: str, clock: FixedClock, server: TestServer
) -> None:
    """A Chinese mail labels state, category, channel, priority, clock and events; times
    carry +08:00 and Asia/Shanghai, never CST; English mails too."""
    settings = _settings(server, timezone="Asia/Shanghai")
    with Engine.open(db_url, clock=clock, config=settings) as engine:
        _breach(engine, clock, branch="Shenzhen", channel="letter", priority="normal")
        _breach(engine, clock, branch="Guangzhou", channel="letter")
        Deliverer(engine).deliver_due()
    received = [m for to, m, _ in server.script.received if to == (SUPERVISOR,)]
    zh = next(m for m in received if m["Content-Language"] == "zh")
    en = next(m for m in received if m["Content-Language"] == "en")
    text, html = _bodies(zh)
    for shown in (text, html):
        for label in ("服务延误", "信函", "普通", "已受理", "首次响应", "登记投诉", "门店主管"):
            assert label in shown
        for identifier in ("service_delayed", "letter", "normal", "received", "first_response"):
            assert identifier not in shown
        assert "+08:00 Asia/Shanghai" in shown
        assert "CST" not in shown
        assert "/cases/" not in shown  # no console configured: no link
    assert "首次响应" in zh["Subject"]
    assert "服务延误" in zh["Subject"]
    for shown in _bodies(en):
        assert "Service delayed" in shown
        assert "Letter" in shown
        assert "+08:00 Asia/Shanghai" in shown
        assert "CST" not in shown


def test_a_hand_escalation_mails_who_escalated_and_why(
    mail_engine: Engine, server: TestServer
) -> None:
    """``escalate_now`` mails the supervisor's reason, not "0 minutes late"."""
    case_id = open_sample(mail_engine, branch="Shenzhen")
    reason = "客户已投诉到消费者协会，要求店长今天回电"  # noqa: RUF001
    mail_engine.fire(case_id, "escalate_now", actor="zhao.supervisor", data={"reason": reason})
    Deliverer(mail_engine).deliver_due()
    [(to, message, _)] = server.script.received
    assert to == (SUPERVISOR,)
    text, html = _bodies(message)
    for shown in (text, html):
        assert reason in shown
        assert "zhao.supervisor" in shown
        assert "手动升级" in shown
        assert "escalate_now" not in shown
        assert "已超时" not in shown
    assert "手动升级" in message["Subject"]
    assert "escalate_now" not in message["Subject"]


def test_mails_link_to_the_case_in_the_console(
    db_url: str, clock: FixedClock, server: TestServer
) -> None:
    """With ``[console] base_url`` set, each mail links to ``<base_url>/cases/<id>``."""
    document = {
        "mail": {
            "url": server.url,
            "sender": "Casework <casework@example.com>",
            "agent_domain": "example.com",
            "languages": {"Shenzhen": "zh"},
            "max_age_s": 7 * 86400,
        },
        "console": {"base_url": "https://casework.example.com/"},
    }
    settings = settings_from_mapping(document, "test")
    with Engine.open(db_url, clock=clock, config=settings) as engine:
        [case_id] = _breach(engine, clock, branch="Shenzhen")
        Deliverer(engine).deliver_due()
    link = f"https://casework.example.com/cases/{case_id}"
    assert len(server.script.received) == 2
    for _, message, _ in server.script.received:
        text, html = _bodies(message)
        assert f"查看投诉单：{link}" in text  # noqa: RUF001
        assert f'<a href="{link}">' in html


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ({"console": {"base_url": "casework.example.com"}}, r"console\.base_url must be an http"),
        ({"console": {"base_url": "https://x.example/?a=1"}}, r"console\.base_url may not"),
        ({"console": {"base_url": "http://[::1"}}, r"console\.base_url must be an http"),
        ({"console": {"base_url": 7}}, r"console\.base_url must be an http"),
        ({"console": {"url": "https://x.example"}}, r"unknown key console\.url"),
        ({"display": {"language": "fr"}}, r"display\.language must be one of en, zh"),
    ],
)
def test_console_and_display_settings_are_checked_at_load(
    table: dict[str, Any], error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        settings_from_mapping(table, "test")


def test_case_text_can_never_inject_a_header(
    mail_engine: Engine, clock: FixedClock, server: TestServer
) -> None:
    """A summary with CR/LF and header-like lines stays inside the body; HTML is escaped."""
    summary = "Broken\r\nBcc: thief@evil.example\r\nSubject: free money\n<script>x</script>"
    _breach(mail_engine, clock, summary=summary, customer="Mallory Bcc: thief@evil.example")
    assert Deliverer(mail_engine).deliver_due().sent == 2  # a warning and an escalation
    assert len(server.script.received) == 2
    for recipients, message, raw in server.script.received:
        assert "thief@evil.example" not in recipients
        assert message["Bcc"] is None
        assert len(message.get_all("Subject")) == 1
        assert "\n" not in message["Subject"]
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert b"\r\nBcc:" not in head
        assert b"<script>" not in message.get_body(("html",)).get_content().encode()


def test_server_down_then_up_delivers_each_mail_exactly_once(
    mail_engine: Engine, clock: FixedClock, server: TestServer
) -> None:
    """Connection refused: retried with backoff; once the server is back, one copy each."""
    _breach(mail_engine, clock, cases=3)
    server.stop()
    report = Deliverer(mail_engine).deliver_due()
    assert (report.sent, report.retried) == (0, 6)
    pending = Outbox(mail_engine.context).list(status="pending")
    assert len(pending) == 6  # each retried, none lost
    assert all(m.attempts == 1 and "cannot reach" in (m.last_error or "") for m in pending)
    assert all(
        clock.now() + timedelta(seconds=30)
        <= m.next_attempt_at
        <= clock.now() + timedelta(seconds=60)
        for m in pending
    )
    assert Deliverer(mail_engine).deliver_due().sent == 0  # not due again yet
    server.start()
    clock.advance(timedelta(minutes=1))
    assert Deliverer(mail_engine).deliver_due().sent == 6
    clock.advance(timedelta(hours=1))
    assert Deliverer(mail_engine).deliver_due().sent == 0
    ids = server.script.message_ids()
    assert len(ids) == 6
    assert set(ids.values()) == {1}
    assert _statuses(mail_engine) == {"sent": 6}


def test_a_run_that_cannot_connect_stops_at_once(
    mail_engine: Engine, clock: FixedClock, server: TestServer
) -> None:
    """No session: the claimed batch waits for its backoff; later batches keep their turn."""
    _breach(mail_engine, clock, cases=3)
    server.stop()
    report = Deliverer(mail_engine, batch=2).deliver_due()
    assert (report.sent, report.retried) == (0, 2)
    attempts = sorted(m.attempts for m in Outbox(mail_engine.context).list(status="pending"))
    assert attempts == [0, 0, 0, 0, 1, 1]


def test_a_server_out_of_reach_pauses_the_sender_for_a_first_backoff(
    mail_engine: Engine, clock: FixedClock, server: TestServer
) -> None:
    """After a refused connection the sender claims nothing until a first backoff has
    passed: a mail queued meanwhile keeps its turn, with no attempt counted, and goes
    out with the others once the pause ends and the server is back."""
    [case_id] = _breach(mail_engine, clock)
    server.stop()
    sender = Deliverer(mail_engine)
    assert sender.deliver_due().retried == 2
    assert sender.paused_until is not None
    assert clock.now() + timedelta(seconds=30) <= sender.paused_until
    assert sender.paused_until <= clock.now() + timedelta(seconds=60)
    mail_engine.fire(case_id, "escalate_now", actor="zhao.supervisor", data={"reason": "急"})
    report = sender.deliver_due()  # paused: nothing claimed, nothing tried
    assert (report.sent, report.retried, report.errors) == (0, 0, [])
    waiting = sorted(m.attempts for m in Outbox(mail_engine.context).list(status="pending"))
    assert waiting == [0, 1, 1]
    server.start()
    clock.advance(timedelta(minutes=1))
    assert sender.deliver_due().sent == 3
    assert sender.paused_until is None


def test_a_clock_set_back_ends_the_senders_pause(
    mail_engine: Engine, clock: FixedClock, server: TestServer
) -> None:
    """A pause is measured on the engine's clock: set back an hour (the host's time
    corrected), the sender does not wait an hour more, it tries at once."""
    _breach(mail_engine, clock)
    server.stop()
    sender = Deliverer(mail_engine)
    assert sender.deliver_due().retried == 2
    server.start()
    clock.set(clock.now() - timedelta(hours=1))
    case_id = open_sample(mail_engine)
    mail_engine.fire(case_id, "escalate_now", actor="zhao.supervisor", data={"reason": "急"})
    assert sender.deliver_due().sent == 1  # the hand escalation; the others wait their turn
    assert sender.paused_until is None


@contextmanager
def _paused_worker(engine: Engine, clock: FixedClock, server: TestServer) -> Iterator[Worker]:
    """A worker whose mail sender found the server out of reach a moment ago (a case a
    day late, its mails refused), its jobs armed but never run."""
    _breach(engine, clock)
    server.stop()
    sender = Deliverer(engine)
    assert sender.deliver_due().retried == 2  # connection refused: the sender pauses
    assert sender.paused_until is not None
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
    mail_engine: Engine, clock: FixedClock, server: TestServer
) -> None:
    """A wake that fired arms each idle sender at once, but the mail sender whose
    server was out of reach at the end of its pause (after a run too): an outage costs
    one attempt a pause, not one a wake."""
    with _paused_worker(mail_engine, clock, server) as worker:
        assert worker.deliverer is not None
        ends = worker.deliverer.paused_until
        open_sample(mail_engine, customer="CUST-2", received_at=clock.now() - timedelta(hours=25))
        worker.wake()
        assert worker.fired >= 1
        assert _armed(worker) == ends
        worker._arm_delivery(DELIVER_ID)
        assert _armed(worker) == ends
        clock.advance(timedelta(minutes=1))  # the pause is over: the mails queued are due
        worker._arm_delivery(DELIVER_ID)
        assert _armed(worker) == clock.now()


def test_a_clock_set_back_ends_the_pause_for_the_worker_too(
    mail_engine: Engine, clock: FixedClock, server: TestServer
) -> None:
    """A clock set back before the pause began ends it for the worker as for its
    sender: the worker arms the sender within a poll, not for the pause's end an hour
    ahead of the corrected clock."""
    with _paused_worker(mail_engine, clock, server) as worker:
        server.start()  # the server is back
        clock.set(clock.now() - timedelta(hours=1))  # the host's clock is corrected
        open_sample(mail_engine, customer="CUST-2", received_at=clock.now() - timedelta(hours=25))
        worker.wake()  # fires the new case's deadlines: mails queued
        assert worker.fired >= 1
        assert _armed(worker) <= clock.now() + worker.poll  # not an hour and a pause later
        worker._arm_delivery(DELIVER_ID)  # after a run, too
        assert _armed(worker) <= clock.now() + worker.poll


def test_a_4xx_answer_is_retried_and_then_succeeds(
    mail_engine: Engine, clock: FixedClock, server: TestServer
) -> None:
    """451 is temporary: the mail waits for its backoff and goes out next time."""
    _breach(mail_engine, clock)
    server.script.data_answers.append("451 4.3.0 mailbox busy, try later")
    report = Deliverer(mail_engine).deliver_due()
    assert (report.sent, report.retried) == (1, 1)
    [waiting] = Outbox(mail_engine.context).list(status="pending")
    assert waiting.last_error == "451 4.3.0 mailbox busy, try later"
    clock.advance(timedelta(minutes=1))
    assert Deliverer(mail_engine).deliver_due().sent == 1
    assert len(server.script.received) == 2
    sent = Outbox(mail_engine.context).list(status="sent")
    assert {m.attempts for m in sent} == {1, 2}


def test_a_5xx_answer_makes_a_dead_letter_that_can_be_retried(
    mail_engine: Engine, clock: FixedClock, server: TestServer
) -> None:
    """554 is permanent: dead with the server's answer; `outbox retry` queues it again."""
    _breach(mail_engine, clock)
    server.script.data_answers.append("554 5.6.0 message refused")
    report = Deliverer(mail_engine).deliver_due()
    assert (report.sent, report.dead) == (1, 1)
    [dead] = Outbox(mail_engine.context).list(status="dead")
    assert dead.last_error == "554 5.6.0 message refused"
    clock.advance(timedelta(days=1))
    assert Deliverer(mail_engine).deliver_due().sent == 0  # a dead letter stays dead
    again = Outbox(mail_engine.context).retry(dead.id)
    assert (again.status, again.attempts) == ("pending", 0)
    assert Deliverer(mail_engine).deliver_due().sent == 1
    assert _statuses(mail_engine) == {"sent": 2}


def test_an_invalid_recipient_is_dead_and_a_partly_refused_mail_is_sent(
    db_url: str, clock: FixedClock, server: TestServer
) -> None:
    """550 at RCPT for the only recipient: dead. For one of two: sent, the refusal noted."""
    ladder = [
        {
            **DEFAULT_DOCUMENT["ladder"][0],
            "recipients": {"*": ["a@example.com", "gone@example.com"]},
        },
        {**DEFAULT_DOCUMENT["ladder"][1], "recipients": {"*": ["gone@example.com"]}},
    ]
    mail = {"url": server.url, "agent_domain": "example.com"}
    settings = settings_from_mapping(
        {"sla": {**DEFAULT_DOCUMENT, "ladder": ladder}, "mail": mail}, "t"
    )
    server.script.refused["gone@example.com"] = "550 5.1.1 no such mailbox"
    with Engine.open(db_url, clock=clock, config=settings) as engine:
        open_sample(engine)
        clock.advance(timedelta(hours=28))
        engine.process_due()
        Deliverer(engine).deliver_due()
        by_level = {m.level: m for m in Outbox(engine.context).list()}
    assert by_level[2].status == "dead"
    assert "550 5.1.1 no such mailbox" in (by_level[2].last_error or "")
    assert by_level[1].status == "sent"
    assert "refused gone@example.com: 550" in (by_level[1].last_error or "")


def test_temporary_failures_give_up_after_the_configured_attempts(
    mail_engine: Engine, clock: FixedClock, server: TestServer
) -> None:
    """The backoff doubles (with jitter); after max_attempts the mail is a dead letter."""
    _breach(mail_engine, clock)
    server.stop()
    waits = []
    for _ in range(3):
        before = clock.now()
        Deliverer(mail_engine).deliver_due()
        pending = Outbox(mail_engine.context).list(status="pending")
        if pending:
            waits.append(min(m.next_attempt_at for m in pending) - before)
        clock.advance(timedelta(hours=1))
    assert timedelta(seconds=30) <= waits[0] <= timedelta(seconds=60)
    assert timedelta(seconds=60) <= waits[1] <= timedelta(seconds=120)
    dead = Outbox(mail_engine.context).list(status="dead")
    assert len(dead) == 2
    assert all((m.last_error or "").startswith("gave up after 3 attempts") for m in dead)


def test_an_agent_without_an_address_is_a_dead_letter(
    db_url: str, clock: FixedClock, server: TestServer
) -> None:
    """With no agent map nor domain, a warning to an agent id cannot be sent: it says why."""
    settings = settings_from_mapping({"mail": {"url": server.url}}, "test")
    with Engine.open(db_url, clock=clock, config=settings) as engine:
        _breach(engine, clock)
        Deliverer(engine).deliver_due()
        [dead] = Outbox(engine.context).list(status="dead")
    assert dead.kind == "warning"
    assert "no mail address for agent 'li.na'" in (dead.last_error or "")


def test_login_uses_the_password_from_the_environment(
    db_url: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AUTH with the user of the settings and the password of the environment."""
    smtp = TestServer(users={"casework": "s3cret"})
    smtp.start()
    try:
        settings = _settings(smtp, username="casework", password_env="TEST_SMTP_PASSWORD")
        with Engine.open(db_url, clock=clock, config=settings) as engine:
            _breach(engine, clock)
            monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
            report = Deliverer(engine).deliver_due()
            assert report.retried == 2
            assert "authentication failed: 535" in report.errors[0]
            monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
            clock.advance(timedelta(minutes=5))
            assert Deliverer(engine).deliver_due().sent == 2
    finally:
        smtp.stop()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A self-signed certificate (its file, for the client) and the server's TLS context."""
    made = self_signed(tmp_path)
    if made is None:
        pytest.skip("openssl is not installed: no certificate for the TLS tests")
    return made


def test_starttls_is_required_and_verifies_the_server(
    db_url: str, clock: FixedClock, certificate: tuple[Path, ssl.SSLContext]
) -> None:
    """STARTTLS against our CA sends; a server without STARTTLS or an unknown CA is refused."""
    cert, context = certificate
    plain = TestServer()
    secure = TestServer(tls=context)
    plain.start()
    secure.start()
    try:
        with Engine.open(db_url, clock=clock, config=_settings(plain, starttls=True)) as engine:
            _breach(engine, clock)
            report = Deliverer(engine).deliver_due()
            assert report.retried == 2
            assert "STARTTLS is required but not offered" in report.errors[0]
        untrusted = _settings(secure, starttls=True)
        with Engine.open(db_url, clock=clock, config=untrusted) as engine:
            clock.advance(timedelta(minutes=5))
            report = Deliverer(engine).deliver_due()
            assert report.retried == 2
            assert "CERTIFICATE_VERIFY_FAILED" in report.errors[0]
        trusted = _settings(secure, starttls=True, ca_file=str(cert))
        with Engine.open(db_url, clock=clock, config=trusted) as engine:
            clock.advance(timedelta(minutes=5))
            assert Deliverer(engine).deliver_due().sent == 2
        assert len(secure.script.received) == 2
    finally:
        plain.stop()
        secure.stop()


def test_smtps_speaks_tls_from_the_first_byte(
    db_url: str, clock: FixedClock, certificate: tuple[Path, ssl.SSLContext]
) -> None:
    """smtps:// to a TLS port with our CA: both mails arrive."""
    cert, context = certificate
    server = TestServer(tls=context, implicit_tls=True)
    server.start()
    try:
        settings = _settings(server, ca_file=str(cert))
        with Engine.open(db_url, clock=clock, config=settings) as engine:
            _breach(engine, clock)
            assert Deliverer(engine).deliver_due().sent == 2
        assert len(server.script.received) == 2
    finally:
        server.stop()


def test_the_password_comes_from_the_environment_before_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$password_env wins; else the first line of password_file; never the URL."""
    secret = tmp_path / "smtp-password"
    secret.write_text("from-file\nignored\n")
    config = tmp_path / "casework.toml"
    config.write_text('[mail]\nusername = "cw"\npassword_file = "smtp-password"\n')
    from casework.workflow.config import load_settings

    mail = load_settings(config).mail
    monkeypatch.delenv("CASEWORK_SMTP_PASSWORD", raising=False)
    assert mail.password() == "from-file"
    monkeypatch.setenv("CASEWORK_SMTP_PASSWORD", "from-env")
    assert mail.password() == "from-env"


def test_quiet_hours_hold_mails_and_send_a_digest_when_the_office_opens(
    db_url: str, server: TestServer
) -> None:
    """Level 1 waits for the office: three escalations become one digest on Monday."""
    office = {
        "timezone": "Asia/Shanghai",
        **{d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    }
    config = {
        "sla": {**DEFAULT_DOCUMENT, "calendars": {"office": office}},
        "mail": {"url": server.url, "agent_domain": "example.com", "quiet_hours": {"1": "office"}},
    }
    clock = FixedClock(START - timedelta(days=2, hours=13))  # Friday 20:00 in Shanghai
    with Engine.open(db_url, clock=clock, config=settings_from_mapping(config, "test")) as engine:
        _breach(engine, clock, cases=3)  # Saturday 20:00
        report = Deliverer(engine).deliver_due()
        assert (report.sent, report.held) == (3, 3)  # the warnings are not held
        held = Outbox(engine.context).list(status="held")
        assert {m.next_attempt_at for m in held} == {START}  # Monday 09:00 in Shanghai
        clock.advance(START - clock.now() - timedelta(minutes=1))
        assert Deliverer(engine).deliver_due().sent == 0
        clock.advance(timedelta(minutes=1))
        report = Deliverer(engine).deliver_due()
        assert (report.sent, report.messages) == (3, 1)
        sent = Outbox(engine.context).list(status="sent")
    digest = server.script.received[-1][1]
    assert server.script.received[-1][0] == (SUPERVISOR,)
    assert digest["Subject"].startswith("[casework] 3 notices held during quiet hours")
    keys = [m.dedupe_key for m in held]
    assert digest["Message-ID"] == message_id(["digest", *keys], "localhost")
    assert {m.message_id for m in sent if m.level == 1} == {digest["Message-ID"]}


@pytest.mark.slow
def test_two_delivering_processes_never_send_a_mail_twice(
    db_url: str, tmp_path: Path, server: TestServer
) -> None:
    """Two processes claim from one outbox at once: every mail arrives exactly once."""
    config = tmp_path / "casework.toml"
    config.write_text(
        f'[mail]\nurl = "{server.url}"\nagent_domain = "example.com"\nmax_age_s = 604800\n'
    )
    clock = FixedClock(datetime.now(UTC) - timedelta(days=2))
    with Engine.open(db_url, clock=clock) as engine:
        _breach(engine, clock, cases=30)
    sent = racers.race(2, racers.deliver_all, db_url, str(config))
    assert sum(sent) == 60
    ids = server.script.message_ids()
    assert len(ids) == 60
    assert set(ids.values()) == {1}


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_no_mail(
    db_url: str, tmp_path: Path, server: TestServer
) -> None:
    """SIGKILL while sending: after the lease, the rest goes out; a resend keeps its id."""
    config = tmp_path / "casework.toml"
    config.write_text(
        f'[mail]\nurl = "{server.url}"\nagent_domain = "example.com"\nlease_s = 300\n'
        "max_age_s = 604800\n"
    )
    clock = FixedClock(datetime.now(UTC) - timedelta(days=2))
    with Engine.open(db_url, clock=clock) as engine:
        _breach(engine, clock, cases=40)
    server.script.delay_s = 0.05
    env = {**os.environ, "CASEWORK_DATABASE_URL": db_url, "CASEWORK_CONFIG": str(config)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "casework.workflow.cli", "worker", "--poll", "0.2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert server.script.wait_for(15)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    server.script.delay_s = 0
    later = FixedClock(datetime.now(UTC) + timedelta(seconds=310))
    settings = settings_from_mapping(
        {"mail": {"url": server.url, "agent_domain": "example.com", "max_age_s": 604800}}, "t"
    )
    with Engine.open(db_url, clock=later, config=settings) as engine:
        Deliverer(engine).deliver_due()
        mails = Outbox(engine.context).list()
    assert {m.status for m in mails} == {"sent"}
    ids = server.script.message_ids()
    assert set(ids) == {m.message_id for m in mails}
    assert sum(n - 1 for n in ids.values()) <= 10  # at most the unrecorded acceptances


def test_the_worker_delivers_what_its_deadlines_queue(db_url: str, server: TestServer) -> None:
    """The running worker fires a breach and mails it without another command."""
    from casework.scheduler import Worker

    clock = {"runs_in": ["received"], "within_s": 1, "warn_at": None}
    sla = {**DEFAULT_DOCUMENT, "clocks": {"first_response": clock}}
    settings = settings_from_mapping(
        {"sla": sla, "mail": {"url": server.url, "agent_domain": "example.com"}}, "test"
    )
    with Engine.open(db_url, config=settings) as engine:
        open_sample(engine, received_at=datetime.now(UTC) - timedelta(seconds=2))
        worker = Worker(engine, poll_s=5.0, deliverer=Deliverer(engine))
        worker.start()
        try:
            arrived = server.script.wait_for(1)
        finally:
            worker.stop()
    assert arrived
    assert server.script.received[0][0] == (SUPERVISOR,)


@pytest.mark.parametrize(
    ("mail", "error"),
    [
        ({"sender": "not an address"}, "mail.sender: not a valid mail address"),
        ({"agents": {"li.na": "li.na@exa mple.com"}}, "mail.agents.li.na: not a valid"),
        ({"url": "smtp://user:pw@host"}, "mail.url: no password in the URL"),
        ({"url": "http://host"}, "mail.url must be smtp://"),
        ({"language": "fr"}, "mail.language must be one of en, zh"),
        ({"quiet_hours": {"1": "night"}}, "mail.quiet_hours.1: no calendar 'night'"),
        ({"timezone": "Mars/Base"}, "mail.timezone: unknown time zone"),
        ({"max_attempts": 0}, "mail.max_attempts must be a whole number from 1 to"),
        ({"ca_file": "/no/such/ca.pem"}, "mail.ca_file: no such file"),
        ({"starttls": True, "url": "smtps://host"}, "mail.starttls is for smtp://"),
    ],
)
def test_bad_mail_settings_are_refused_at_load_with_their_key(
    mail: dict[str, Any], error: str
) -> None:
    """Each mistake names the key that holds it."""
    with pytest.raises(ConfigError, match=error.replace("(", r"\(")):
        settings_from_mapping({"mail": mail}, "casework.toml")


def test_an_invalid_ladder_recipient_is_refused_at_load() -> None:
    """A ladder address with a line break is refused with its key."""
    bad = {"*": ["ok@example.com"], "Guangzhou": ["boss@example.com\r\nBcc: x@y"]}
    ladder = [{**DEFAULT_DOCUMENT["ladder"][0], "recipients": bad}]
    with pytest.raises(ConfigError, match=r"sla\.ladder\[0\]\.recipients\.Guangzhou\[0\]"):
        settings_from_mapping({"sla": {**DEFAULT_DOCUMENT, "ladder": ladder}}, "casework.toml")


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{% if %}", "en/notice.subject"),
        ("{{ case.no_such_field }}", "no_such_field"),
    ],
)
def test_a_template_error_is_caught_at_load(tmp_path: Path, template: str, error: str) -> None:
    """An override template that does not compile or names an unknown field stops the load."""
    folder = tmp_path / "mail-templates" / "en"
    folder.mkdir(parents=True)
    (folder / "notice.subject").write_text(template)
    config = tmp_path / "casework.toml"
    config.write_text('[mail]\ntemplates = "mail-templates"\n')
    from casework.workflow.config import load_settings

    with pytest.raises(ConfigError, match=error):
        load_settings(config)


def test_deliver_and_outbox_commands(db_url: str, tmp_path: Path, server: TestServer) -> None:
    """`deliver` reports and exits 1 on failures; `outbox` lists; `outbox retry` re-queues."""
    config = tmp_path / "casework.toml"
    config.write_text(
        f'[mail]\nurl = "{server.url}"\nagent_domain = "example.com"\nmax_age_s = 604800\n'
    )
    clock = FixedClock(datetime.now(UTC) - timedelta(days=2))
    with Engine.open(db_url, clock=clock) as engine:
        _breach(engine, clock)
    base = ["--db", db_url, "--config", str(config)]
    runner = CliRunner()
    server.script.data_answers.append("550 5.7.1 refused by policy")
    result = runner.invoke(main, [*base, "deliver"])
    assert result.exit_code == 1, result.output
    assert "1 mail(s) sent in 1 message(s); 0 to retry later; 1 dead" in result.output
    listed = runner.invoke(main, [*base, "outbox", "--status", "dead", "--json"])
    [dead] = json.loads(listed.output)["mails"]
    assert dead["last_error"] == "550 5.7.1 refused by policy"
    table = runner.invoke(main, [*base, "outbox"])
    assert "550 5.7.1 refused by policy" in table.output
    assert "sent" in table.output
    again = runner.invoke(main, [*base, "outbox", "retry", str(dead["id"])])
    assert again.exit_code == 0, again.output
    twice = runner.invoke(main, [*base, "outbox", "retry", str(dead["id"])])
    assert twice.exit_code == 2
    assert "not dead" in twice.output
    result = runner.invoke(main, [*base, "deliver", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["sent"] == 1
    missing = runner.invoke(main, [*base, "outbox", "retry", "999"])
    assert missing.exit_code == 2
    assert "no outbox mail 999" in missing.output
    bad = runner.invoke(main, [*base, "deliver", "--smtp", "smtp://u:pw@host"])
    assert bad.exit_code == 2
    assert "no password in the URL" in bad.output


def test_the_demo_delivers_its_escalations_to_a_local_sink() -> None:
    """`casework demo` shows the mails it sent to its own SMTP server."""
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "Delivery sends 4 mail(s) to a local SMTP server" in result.output
    assert "Message-ID: <" in result.output
