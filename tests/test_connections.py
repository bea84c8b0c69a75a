"""Connections are borrowed for one call's transaction and returned at once: an engine
on a host's small pool leaves it free between calls, and ``serve`` under a burst larger
than its pool answers every request and serves normally as soon as the burst ends."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import Engine as SAEngine
from sqlalchemy import create_engine, text

from casework.storage import database
from casework.workflow.api.offload import THREADS
from casework.workflow.clock import FixedClock
from casework.workflow.engine import Engine
from tests.support import PG_ADMIN
from tests.support.api_server import Served, serving
from tests.support.crash import holds_in_a_child

THREADS_FIRING = 40
OPEN = {"customer": "CUST-1", "channel": "phone", "category": "other", "summary": "s"}
CONTACT = {"event": "contact", "data": {"kind": "call"}}


def _host_engine(url: str, size: int, timeout: float = 30.0) -> SAEngine:
    """A host's own SQLAlchemy engine with a pool of ``size`` and no overflow."""
    return create_engine(url, pool_size=size, max_overflow=0, pool_timeout=timeout)


@pytest.fixture
def host(db_url: str) -> Iterator[SAEngine]:
    """The host's engine: a pool of two connections, nothing more."""
    db = _host_engine(db_url, 2)
    yield db
    db.dispose()


def _open(engine: Engine, count: int) -> list[str]:
    return [
        engine.open_case(customer=f"C{i}", channel="phone", category="other", summary="s").id
        for i in range(count)
    ]


def _together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` on ``count`` threads started at one moment; what each returned."""
    start = threading.Barrier(count)

    def run(i: int) -> Any:
        start.wait()
        return work(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def _both_free(host: SAEngine) -> None:
    """The host can check out every connection of its pool at once."""
    assert host.pool.checkedout() == 0  # type: ignore[attr-defined]
    with host.connect() as first, host.connect() as second:
        assert first.execute(text("SELECT 1")).scalar() == 1
        assert second.execute(text("SELECT 1")).scalar() == 1


def test_forty_host_threads_share_a_pool_of_two(host: SAEngine, clock: FixedClock) -> None:
    engine = Engine.open(host, clock=clock)
    ids = _open(engine, THREADS_FIRING)
    _both_free(host)  # between calls casework holds nothing

    def fire(i: int) -> int:
        case = engine.fire(ids[i], "contact", actor="agent", data={"kind": "call"})
        assert engine.get(ids[i]).version == case.version
        return case.version

    versions = _together(THREADS_FIRING, fire)
    assert versions == [2] * THREADS_FIRING
    _both_free(host)
    for _ in range(3):  # sequential calls keep nothing either
        engine.fire(ids[0], "contact", actor="agent", data={"kind": "call"})
    _both_free(host)
    engine.close()
    _both_free(host)


def test_one_call_needs_one_connection_at_a_time(db_url: str, clock: FixedClock) -> None:
    """On a pool of one, every writing and reading call succeeds: none borrows a second
    connection while it holds the first (which would wait on itself)."""
    db = _host_engine(db_url, 1, timeout=5)
    try:
        engine = Engine.open(db, clock=clock)
        case_id = _open(engine, 1)[0]
        engine.fire(case_id, "contact", actor="agent", data={"kind": "call"})
        engine.attach(case_id, b"%PDF-1.4", kind="invoice", name="a.pdf", actor="agent")
        assert engine.get(case_id).version == 3
        assert len(engine.history(case_id)) == 3
        clock.advance(timedelta(days=5))
        assert engine.process_due()  # the worker's batch: deadlines fired, mail queued
        assert engine.get(case_id).version > 3
        assert db.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        db.dispose()


def _burst(api: Served, token: str, ids: list[str], count: int) -> list[httpx.Response]:
    """``count`` requests at once, each on its own connection: events, reads and lists;
    and ``/readyz`` in their midst, which must say ready (its thread is its own)."""

    def request(i: int) -> httpx.Response:
        with api.client(token) as http:
            if i == count // 2:
                ready = http.get("/readyz")
                assert ready.status_code == 200, ready.text
                return ready
            if i % 3 == 0:
                return http.get("/v1/cases", params={"limit": 20})
            if i % 3 == 1:
                return http.get(f"/v1/cases/{ids[i % len(ids)]}")
            return http.post(f"/v1/cases/{ids[i % len(ids)]}/events", json=CONTACT)

    return _together(count, request)


def _answered(responses: list[httpx.Response]) -> None:
    """Every request answered: served, or 503 problem+json saying when to come back."""
    for answer in responses:
        if answer.status_code == 503:
            assert answer.headers["content-type"] == "application/problem+json"
            assert int(answer.headers["retry-after"]) > 0
        else:
            assert answer.status_code in (200, 201, 409), answer.text


def _serves_normally(api: Served, token: str, case_id: str) -> None:
    with api.client(token) as http:
        assert http.get("/readyz").status_code == 200
        assert http.post("/v1/cases", json=OPEN).status_code == 201
        assert http.post(f"/v1/cases/{case_id}/events", json=CONTACT).status_code == 200
        assert http.get("/v1/cases", params={"limit": 5}).status_code == 200


@pytest.mark.slow  # hundreds of requests at once: the full suite runs it, not the fast lane
@pytest.mark.parametrize("size", [None, 2], ids=["serve-pool", "pool-of-two"])
def test_a_burst_larger_than_the_pool_is_answered_and_passes(
    db_url: str, clock: FixedClock, size: int | None
) -> None:
    db = db_url if size is None else _host_engine(db_url, size, timeout=10)
    engine = Engine.open(db, clock=clock)
    pool = engine.db.pool
    burst = 200 if size is None else 3 * max(THREADS.values())  # past threads and pool
    assert burst > pool.size() + max(0, pool._max_overflow)  # type: ignore[attr-defined]
    engine.heartbeat("w1", clock.now())
    ids = _open(engine, 12)
    try:
        with serving(engine) as api:
            token = api.token()
            _answered(_burst(api, token, ids, burst))
            _serves_normally(api, token, ids[0])
            _answered(_burst(api, token, ids, burst))
            _serves_normally(api, token, ids[1])
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        engine.close()
        if not isinstance(db, str):
            db.dispose()


def test_a_request_that_finds_no_connection_is_a_503_with_retry_after(
    db_url: str, clock: FixedClock
) -> None:
    """The pool's wait runs out while the host holds its one connection: 503 problem+json
    with ``Retry-After``; once the host lets go, the same requests are served."""
    db = _host_engine(db_url, 1, timeout=1)
    engine = Engine.open(db, clock=clock)
    case_id = _open(engine, 1)[0]
    try:
        with serving(engine) as api:
            token = api.token()
            with api.client(token) as http:
                assert http.get(f"/v1/cases/{case_id}").status_code == 200  # token known
                with db.connect() as held:
                    held.execute(text("SELECT 1"))
                    busy = [
                        http.get(f"/v1/cases/{case_id}"),
                        http.post(f"/v1/cases/{case_id}/events", json=CONTACT),
                        http.get("/v1/cases"),
                    ]
                for answer in busy:
                    assert answer.status_code == 503, answer.text
                    assert answer.headers["content-type"] == "application/problem+json"
                    assert answer.headers["retry-after"] == "2"
                    assert answer.json()["detail"].startswith("database busy")
                assert http.get(f"/v1/cases/{case_id}").status_code == 200
                assert http.post(f"/v1/cases/{case_id}/events", json=CONTACT).status_code == 200
    finally:
        engine.close()
        db.dispose()


@pytest.mark.postgres
def test_a_connection_dropped_while_idle_is_replaced_unseen(
    pg_url: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pooled connection idle past the bypass window is pinged on checkout: one the
    server dropped is replaced, and the call never sees it."""
    monkeypatch.setattr(database, "ALIVE_BYPASS_S", 0.0)  # every connection "idle"
    with Engine.open(pg_url, clock=clock) as engine:
        case_id = _open(engine, 1)[0]
        engine.get(case_id)
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            cut = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (pg_url.rsplit("/", 1)[1],),
            ).fetchall()
        assert cut  # the pool's sessions were there, and are gone
        assert engine.fire(case_id, "contact", actor="agent", data={"kind": "call"}).version == 2
        assert engine.get(case_id).version == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_process_takes_a_connection_of_its_own_not_its_parents(pg_url: str) -> None:
    """A connection the parent pooled is still the parent's after a fork: the child's
    engine opens its own (on one socket, two processes' statements would interleave)."""
    engine = database.make_engine(pg_url)
    try:
        with engine.connect() as conn:  # pooled once returned
            parent = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()

        def takes_its_own() -> bool:
            with engine.connect() as conn:
                return bool(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != parent)

        assert holds_in_a_child(takes_its_own)
        with engine.connect() as conn:  # the parent's own connection still serves it
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == parent
    finally:
        engine.dispose()
