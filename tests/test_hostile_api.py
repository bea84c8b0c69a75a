"""Hostile input and a read-only database at the HTTP API and the console: never a 5xx
for what a client sent, a 503 (not a 500) for a database that refuses writes, and
nothing secret in the log."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import structlog

from casework.workflow import Engine, FixedClock
from casework.workflow.access.tokens import issue
from casework.workflow.cli.logs import configure_logging
from tests.support import START, open_sample
from tests.support.api_server import serving
from tests.test_read_only import _read_only

BIG = str(2**63)
"""An id one past the largest 64-bit signed whole number."""


@pytest.fixture
def served(engine: Engine) -> Iterator[tuple[Any, str]]:
    """The API on a database with one case, and an administrator's token."""
    open_sample(engine)
    with serving(engine) as server:
        yield server, server.token("admin", "root")


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/outbox/{BIG}/retry",
        f"/v1/webhooks/deliveries/{BIG}/retry",
        "/v1/outbox/-1/retry",
        f"/v1/outbox/{'9' * 40}/retry",
    ],
)
def test_an_id_beyond_64_bits_is_422_not_a_database_failure(
    served: tuple[Any, str], path: str
) -> None:
    server, token = served
    with server.client(token) as client:
        answer = client.post(path)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "query",
    [
        "month=9999-12",
        "month=0000-01",
        "from=2026-01-01&to=9999-12-31",
        "from=9999-12-31",
        "from=0001-01-01&to=2026-01-01",
    ],
)
@pytest.mark.parametrize("report", ["sla", "complaints"])
def test_a_report_period_outside_the_calendar_is_422(
    served: tuple[Any, str], report: str, query: str
) -> None:
    server, token = served
    with server.client(token) as client:
        answer = client.get(f"/v1/reports/{report}?{query}")
    assert answer.status_code == 422, answer.text
    assert "outside the years" in answer.json()["detail"] or "month" in answer.json()["detail"]


@contextmanager
def _signed_in(server: Any, role: str = "supervisor") -> Iterator[httpx.Client]:
    """A console browser signed in as ``role``."""
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as client:
        page = client.get("/login")
        csrf = _csrf_of(page.text)
        answer = client.post(
            "/login",
            data={"token": server.token(role, "zhao.min"), "csrf": csrf},
            headers={"Origin": server.url},
        )
        assert answer.status_code == 303, answer.text
        yield client


def _csrf_of(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


@pytest.mark.parametrize(
    "path", ["/reports?from=2026-11-01&to=9999-12-31", "/reports/sla.html?month=9999-12"]
)
def test_console_report_dates_outside_the_calendar_are_explained(
    served: tuple[Any, str], path: str
) -> None:
    server, _ = served
    with _signed_in(server) as client:
        answer = client.get(path)
    assert answer.status_code < 500, answer.text
    assert "outside the years" in answer.text


def test_an_oversized_zone_cookie_is_ignored(served: tuple[Any, str]) -> None:
    server, _ = served
    with _signed_in(server) as client:
        client.cookies.set("casework_tz", "A" * 5000)
        answer = client.get("/overdue")
        report = client.get("/reports?month=2026-11")
    assert answer.status_code == 200, answer.text
    assert report.status_code == 200, report.text


def test_report_pages_carry_the_consoles_content_security_policy(
    served: tuple[Any, str],
) -> None:
    pytest.importorskip("matplotlib")
    server, _ = served
    with _signed_in(server) as client:
        answer = client.get("/reports/sla.html?month=2026-11")
    assert answer.status_code == 200, answer.text
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


def test_login_without_the_forms_csrf_token_or_from_another_site_is_refused(
    served: tuple[Any, str],
) -> None:
    """Login CSRF: another site's form must not sign a browser in as its own user."""
    server, _ = served
    token = server.token("agent", "mallory")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        forged = client.post("/login", data={"token": token})
        assert forged.status_code == 403, forged.text
        assert "casework_session" not in forged.cookies
        csrf = _csrf_of(client.get("/login").text)
        cross = client.post(
            "/login",
            data={"token": token, "csrf": csrf},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert cross.status_code == 403, cross.text
        assert "casework_session" not in cross.cookies
        old_browser = client.post(  # no Sec-Fetch-Site: the Origin decides
            "/login",
            data={"token": token, "csrf": _csrf_of(cross.text)},
            headers={"Origin": "https://evil.example"},
        )
        assert old_browser.status_code == 403, old_browser.text
        behind_a_proxy = client.post(  # the browser says same-origin; the Host is the proxy's
            "/login",
            data={"token": token, "csrf": _csrf_of(old_browser.text)},
            headers={"Origin": "https://casework.example", "Sec-Fetch-Site": "same-origin"},
            follow_redirects=False,
        )
        assert behind_a_proxy.status_code == 303, behind_a_proxy.text


@pytest.fixture
def read_only_served(db_url: str) -> Iterator[tuple[Any, str, str]]:
    """The API on a database that refuses writes; an administrator's and an agent's
    token made before it did."""
    clock = FixedClock(START)
    with Engine.open(db_url, clock=clock) as engine:
        open_sample(engine)
        admin = issue(engine.context.store, "root", "admin", None, clock.now()).token
        agent = issue(engine.context.store, "li.na", "agent", None, clock.now()).token
    url = _read_only(db_url)
    with Engine.open(url, clock=clock) as engine, serving(engine) as server:
        yield server, admin, agent


@pytest.fixture
def captured_log() -> Iterator[io.StringIO]:
    """What the server logs, at debug level, as JSON lines."""
    out = io.StringIO()
    configure_logging("debug", json_lines=True, stream=out)
    root = logging.getLogger()
    handler = logging.StreamHandler(out)
    root.addHandler(handler)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        structlog.reset_defaults()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/webhooks", {"url": "https://hooks.example.com/x", "events": ["*"]}),
        ("/v1/tokens", {"actor": "wang.wei", "role": "agent"}),
    ],
)
def test_a_read_only_database_answers_503_on_every_write(
    read_only_served: tuple[Any, str, str], path: str, body: dict[str, Any]
) -> None:
    server, admin, _ = read_only_served
    with server.client(admin) as client:
        answer = client.post(path, json=body)
    assert answer.status_code == 503, answer.text
    assert answer.json()["type"] == "urn:casework:problem:read-only-database"
    assert "OperationalError" not in answer.text


def test_console_sign_in_on_a_read_only_database_is_a_clear_page_and_logs_no_secret(
    read_only_served: tuple[Any, str, str], captured_log: io.StringIO
) -> None:
    server, _, agent = read_only_served
    with httpx.Client(base_url=server.url, timeout=30) as client:
        csrf = _csrf_of(client.get("/login").text)
        answer = client.post("/login", data={"token": agent, "csrf": csrf})
    assert answer.status_code == 503, answer.text
    assert "read-only" in answer.text
    assert "<html" in answer.text
    logged = captured_log.getvalue()
    assert agent not in logged
    assert csrf not in logged


def test_a_console_write_on_a_read_only_database_is_a_page_not_a_500(db_url: str) -> None:
    """A session made while the database still took writes; then it refuses them."""
    from casework.workflow.console.sessions import COOKIE, sign_in

    clock = FixedClock(START)
    with Engine.open(db_url, clock=clock) as engine:
        token = issue(engine.context.store, "root", "admin", None, clock.now()).token
        cookie, session = sign_in(engine.context.store, token, clock.now())
    form = {"csrf": session.csrf, "actor": "wang.wei", "role": "agent"}
    with (
        Engine.open(_read_only(db_url), clock=clock) as engine,
        serving(engine) as server,
        httpx.Client(base_url=server.url, timeout=30, cookies={COOKIE: cookie}) as client,
    ):
        answer = client.post("/tokens", data=form)
    assert answer.status_code == 503, answer.text
    assert "text/html" in answer.headers["content-type"]
    assert "read-only" in answer.text
