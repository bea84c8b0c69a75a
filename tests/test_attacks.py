"""Attacks rerun after the holes of one adversarial review were closed: each test is an
attack that once got through, kept so it stays closed."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from casework.scheduler.worker import Worker
from casework.workflow.api.slow_clients import TimelyH11Protocol, TimelyHttpToolsProtocol
from casework.workflow.cli import main
from casework.workflow.clock import FixedClock
from casework.workflow.config import settings_from_mapping
from casework.workflow.engine import Engine
from casework.workflow.errors import ClockAhead, InvalidInput
from casework.workflow.outbox.mail import Outbox
from casework.workflow.reports.daily import queue_daily_reports
from casework.workflow.webhooks.settings import WebhookSettings
from casework.workflow.webhooks.subscriptions import checked_url
from tests.support import START, open_sample, wait_until
from tests.support.api_server import serving
from tests.test_audit import _export, _history, _keys, _lines
from tests.test_limits import SLACK, _refused, chunked_post
from tests.test_server_clock import YEAR, HostClock


@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_a_chunked_body_that_also_declares_a_small_length_is_still_counted(
    engine: Engine, parser: str
) -> None:
    # h11 frames a body by Transfer-Encoding when both are sent (RFC 9112 6.3): a small
    # Content-Length beside it must not let 300 MB through unread, token or none.
    with serving(engine, http=parser) as api:
        for path in ("/v1/cases", "/v1/tokens"):
            for declared in ("0", "10"):
                status, body, sent = chunked_post(
                    api.url, path, token=None, headers=(f"Content-Length: {declared}",)
                )
                if parser == "httptools":  # this parser refuses such a request itself
                    assert status == 400, body
                    assert sent < SLACK
                else:
                    _refused(status, body, sent)


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b:1::a9fe:a9fe]/",  # local-use NAT64 (RFC 8215) of 169.254.169.254
        "http://[64:ff9b:1::7f00:1]/",  # ... of 127.0.0.1
        "http://[::ffff:0:a00:1]/",  # IPv4-translated (SIIT, RFC 2765) 10.0.0.1
        "http://[::ffff:0:7f00:1]/",  # ... 127.0.0.1
        "http://[fec0::1]/",  # site-local (deprecated, still routed inside some networks)
    ],
)
def test_translated_and_site_local_ipv6_targets_are_internal(url: str) -> None:
    with pytest.raises(InvalidInput, match=r"internal address .*allowed_hosts"):
        checked_url(url, WebhookSettings())


def test_a_worker_whose_clock_runs_a_year_ahead_queues_no_daily_report(pg_url: str) -> None:
    # Its report would be of a day a year ahead and, queued once per day, would take the
    # place of the true report of that day when it comes.
    settings = settings_from_mapping(
        tomllib.loads(
            '[organisation]\ncompany = "HQ"\n[organisation.branches]\nNorth = ["North-1"]\n'
            '[reports.daily]\nenabled = true\nat = "00:00"\nhq = ["hq@example.com"]\n'
            '[reports.daily.recipients]\nNorth = ["north@example.com"]\n'
        ),
        "casework.toml",
    )
    with Engine.open(pg_url, clock=HostClock(YEAR), config=settings) as ahead:
        with pytest.raises(ClockAhead):
            queue_daily_reports(ahead.context)
        Worker(ahead, listen=False).daily_report()  # logged, nothing queued
        assert Outbox(ahead.context).list(kind="report") == []
    with Engine.open(pg_url, clock=HostClock(), config=settings) as right:
        assert len(queue_daily_reports(right.context)) == 2


@pytest.mark.parametrize("where", ["event", "end"])
def test_a_field_added_to_a_signed_export_is_caught(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path, where: str
) -> None:
    # No hash covers a field the format does not have: a signed export claims every
    # field of every record, so one added ("approved_by") must fail the check.
    _history(engine, clock)
    key, keyring = _keys(tmp_path)
    path = tmp_path / "signed.jsonl"
    _export(db_url, path, "--sign", str(key))
    check = ["verify", "--export", str(path), "--keyring", str(keyring)]
    assert CliRunner().invoke(main, check).exit_code == 0
    lines = _lines(path)
    at = 1 if where == "event" else len(lines) - 1
    record = json.loads(lines[at])
    added = {**record, "approved_by": "the auditor"}
    lines[at] = json.dumps(added, ensure_ascii=False, separators=(",", ":")) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    checked = CliRunner().invoke(main, check)
    assert checked.exit_code == 1, checked.output
    assert "approved_by" in checked.output


@pytest.mark.parametrize(
    ("column", "stored", "said"),
    [
        ("received_at", "garbage", "a stored time does not parse: 'garbage'"),
        ("received_at", "2026-12-01T00:00:00", "a stored time does not parse: '2026-12-01T00"),
        ("attributes", "{bad", "a stored JSON value does not parse: '{bad'"),
        ("sla", "x", "a stored JSON value does not parse: 'x'"),
    ],
)
@pytest.mark.parametrize("command", [["list"], ["report", "sla", "--month", "2026-11"]])
def test_a_column_that_does_not_parse_is_one_line_for_list_and_reports(
    tmp_path: Path, column: str, stored: str, said: str, command: list[str]
) -> None:
    # SQLite keeps times and JSON as text (PostgreSQL's column types refuse these
    # edits); a time without its offset is no time casework wrote either.
    path = tmp_path / "cases.db"
    with Engine.open(f"sqlite:///{path}", clock=FixedClock(START)) as engine:
        case_id = open_sample(engine)
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE cases SET {column} = ? WHERE id = ?", (stored, case_id))
    listed = CliRunner().invoke(main, ["--db", f"sqlite:///{path}", *command])
    assert listed.exit_code == 1, listed.output
    assert "unexpected" not in listed.output
    assert said in listed.output
    assert listed.output.count("casework: error:") == 1


class _QuickH11(TimelyH11Protocol):
    head_timeout_s = 0.3
    body_timeout_s = 0.6


class _QuickHttpTools(TimelyHttpToolsProtocol):
    head_timeout_s = 0.3
    body_timeout_s = 0.6


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (what it answered before is read and dropped)."""
    sock.settimeout(0.05)
    try:
        while chunk := sock.recv(4096):
            del chunk
        return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("parser", [_QuickHttpTools, _QuickH11])
def test_a_client_trickling_a_request_head_is_cut_off(engine: Engine, parser: type) -> None:
    # Thousands of connections sending a header line now and then, no token needed,
    # held every file descriptor of serve: nobody else was answered.
    with serving(engine, http=parser) as api:
        address = ("127.0.0.1", int(api.url.rsplit(":", 1)[1]))
        with (
            socket.create_connection(address) as trickling,
            socket.create_connection(address) as after_one,  # one request, then a trickle
            socket.create_connection(address) as slow_body,  # a whole head, a trickled body
        ):
            trickling.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            after_one.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            after_one.sendall(b"GET /healthz HTTP/1.1\r\n")
            slow_body.sendall(
                b"POST /v1/cases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n{"
            )
            socks = (trickling, after_one, slow_body)

            def trickle_and_check() -> bool:
                for sock, more in zip(
                    socks, (b"X-Slow: 1\r\n", b"X-Slow: 1\r\n", b" "), strict=True
                ):
                    with contextlib.suppress(OSError):
                        sock.sendall(more)
                return all(_closed_by_server(sock) for sock in socks)

            wait_until(trickle_and_check, timeout=30, what="the server to cut the trickles off")
        with api.client(api.token()) as client:  # whole requests are served as before
            assert client.get("/healthz").status_code == 200
            opened = client.post("/v1/cases", json={"customer": "C", "channel": "phone",
                                 "category": "other", "summary": "s"})  # fmt: skip
            assert opened.status_code == 201, opened.text
