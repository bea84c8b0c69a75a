"""The short way of firing an event answers as FastAPI's route does: every case (a good
body, bad JSON, a body the model refuses, one too large, no token, a role or branch
that may not, an unknown case, an event not allowed, an idempotent replay...) is sent
the short way (``Content-Type: application/json``) to one server and through FastAPI
(another JSON media type) to its twin on a copy of the same database, each with
``Content-Length`` and chunked; status, headers and body are the same. On SQLite the
short way's work runs on the event loop, on PostgreSQL on threads."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import APIRouter, Request
from psycopg import sql

from casework.workflow.access.tokens import issue
from casework.workflow.api import models
from casework.workflow.api.endpoints import declare
from casework.workflow.api.hot_path import MEDIA_TYPE, HotPath
from casework.workflow.api.limits import MAX_BODY
from casework.workflow.clock import FixedClock
from casework.workflow.engine import Engine
from tests.support import PG_ADMIN, START
from tests.support.api_server import serving

SHORT = MEDIA_TYPE.decode()
THROUGH_FASTAPI = "application/vnd.casework+json"
"""A JSON media type FastAPI reads and the short way leaves to it."""
COMPARED = ("content-type", "content-length", "etag", "location", "idempotent-replayed",
            "www-authenticate", "retry-after", "allow", "connection")  # fmt: skip
"""The headers that must match (not ``date``)."""
OPEN = {"customer": "CUST-1", "channel": "phone", "category": "service_delayed",
        "summary": "师傅没有按约上门", "branch": "东莞长安店"}  # fmt: skip


@dataclass
class Twin:
    """One of the two servers: its client per token name and the short way it runs."""

    clients: dict[str, httpx.Client]
    hot_path: HotPath


def _hot_path(app: Any) -> HotPath:
    while not isinstance(app, HotPath):
        app = app.app
    return app


def _admin(statement: sql.Composable) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(statement)


def _copy(url: str, name: str, stack: ExitStack) -> str:
    """A copy of the database at ``url`` (closed), named ``name``, dropped at the end."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        shutil.copyfile(path, path.with_name(name + ".db"))
        return f"sqlite:///{path.with_name(name + '.db')}"
    base, source = url.rsplit("/", 1)
    copy = f"{source}_{name}"
    _admin(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(copy),
                                                            sql.Identifier(source)))  # fmt: skip
    stack.callback(_admin, sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(copy)))
    return f"{base}/{copy}"


@pytest.fixture
def twins(db_url: str) -> Iterator[tuple[Twin, Twin, dict[str, str]]]:
    """Two servers on copies of one database (cases and tokens made once), and the ids
    of its cases by name."""
    with Engine.open(db_url, clock=FixedClock(START)) as engine:
        now = engine.clock.now()
        tokens = {
            "agent": issue(engine.context.store, "li.na", "agent", None, now).token,
            "auditor": issue(engine.context.store, "zhao.min", "auditor", None, now).token,
            "other branch": issue(
                engine.context.store, "wu.fang", "agent", "深圳南山店", now
            ).token,
        }
        ids = {"open": engine.open_case(actor="li.na", **OPEN).id}
    with ExitStack() as stack:
        twins = []
        for name in ("short", "fastapi"):
            url = _copy(db_url, name, stack)
            engine = stack.enter_context(Engine.open(url, clock=FixedClock(START)))
            served = stack.enter_context(serving(engine))
            clients = {
                who: stack.enter_context(served.client(token)) for who, token in tokens.items()
            }
            clients["nobody"] = stack.enter_context(served.client())
            twins.append(Twin(clients, _hot_path(served.app)))
        yield twins[0], twins[1], ids


def _chunks(body: bytes) -> Iterator[bytes]:
    middle = len(body) // 2
    yield body[:middle]
    yield body[middle:]


@dataclass(frozen=True)
class Case:
    """A request: who sends it (a token's name), to which case, its body and headers,
    and whether the short way answers it (else it hands it to FastAPI)."""

    name: str
    who: str
    target: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    short: bool = True


NOTE = b'{"event": "note", "note": "x"}'
BIG = b"x" * MAX_BODY
CASES = [
    Case("a good body", "agent", "open", '{"event": "note", "note": "客户"}'.encode()),
    Case("an If-Match", "agent", "open", NOTE, {"if-match": '"2"'}),
    Case("a stale If-Match", "agent", "open", NOTE, {"if-match": '"1"'}),
    Case("a bad If-Match", "agent", "open", NOTE, {"if-match": "three"}),
    Case("a back-filled event", "agent", "open", b'{"event": "note", "at": "2026-03-02T09:30Z"}'),
    Case("repeated keys", "agent", "open", b'{"event": "reopen", "event": "note"}'),
    Case("a lone surrogate", "agent", "open", b'{"event": "note", "note": "\\ud800"}', short=False),
    Case("bad JSON", "agent", "open", b'{"event": ', short=False),
    Case("not UTF-8", "agent", "open", b'{"event": "\xff"}', short=False),
    Case("no body", "agent", "open", b"", short=False),
    Case("NaN", "agent", "open", b'{"event": "note", "data": {"x": NaN}}'),
    Case("a body of the wrong type", "agent", "open", b"[1, 2]", short=False),
    Case("a field of the wrong type", "agent", "open", b'{"event": 3}', short=False),
    Case("an unknown field", "agent", "open", b'{"event": "note", "colour": "red"}', short=False),
    Case("the actor in the body", "agent", "open", b'{"event": "note", "actor": "b"}', short=False),
    Case("a bad instant", "agent", "open", b'{"event": "note", "at": 1700000000}', short=False),
    Case("too large", "agent", "open", b'{"event": "note", "note": "%s"}' % BIG, short=False),
    Case("no token", "nobody", "open", NOTE),
    Case("a role that may not write", "auditor", "open", NOTE),
    Case("another branch's case", "other branch", "open", NOTE),
    Case("an unknown case", "agent", "0123456789abcdef", NOTE),
    Case("a NUL in the case id", "agent", "%00", NOTE),
    Case("an event not allowed", "agent", "open", b'{"event": "reopen"}'),
    Case("an unknown event", "agent", "open", b'{"event": "dance"}'),
    Case("a failed guard", "agent", "open", b'{"event": "note"}'),
    Case("a keyed request", "agent", "open", b'{"event": "apologise"}', {"idempotency-key": "k"}),
    Case("its replay", "agent", "open", b'{"event": "apologise"}', {"idempotency-key": "k"}),
    Case("the key on another body", "agent", "open", NOTE, {"idempotency-key": "k"}),
    Case("a key too long", "agent", "open", NOTE, {"idempotency-key": "k" * 201}),
]


def _send(twin: Twin, case: Case, kind: str, chunked: bool, ids: dict[str, str]) -> httpx.Response:
    content: Any = _chunks(case.body) if chunked else case.body
    return twin.clients[case.who].post(
        f"/v1/cases/{ids.get(case.target, case.target)}/events",
        content=content,
        headers={"content-type": kind, **case.headers},
    )


def _seen(answer: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    return (
        answer.status_code,
        {k: v for k, v in answer.headers.items() if k in COMPARED},
        answer.content,
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_the_short_way_answers_as_fastapi(
    twins: tuple[Twin, Twin, dict[str, str]], chunked: bool
) -> None:
    short, fastapi, ids = twins
    answered: Counter[int] = Counter()
    for case in CASES:
        served = short.hot_path.served
        one = _send(short, case, SHORT, chunked, ids)
        other = _send(fastapi, case, THROUGH_FASTAPI, chunked, ids)
        assert _seen(one) == _seen(other), case.name
        assert short.hot_path.served == served + case.short, case.name
        answered[one.status_code] += 1
    assert fastapi.hot_path.served == 0
    del answered[413]  # refused before any route was matched
    for twin in (short, fastapi):  # each request the route saw counted under its template
        assert _counted(twin.clients["agent"].get("/metrics").text) == answered


def _counted(metrics: str) -> dict[int, int]:
    """Requests of ``POST /v1/cases/{id}/events`` by status, from the metrics' text."""
    label = 'casework_http_requests_total{method="POST",route="/v1/cases/{case_id}/events",'
    return {
        int(line.split('status="')[1].split('"')[0]): int(float(line.split()[-1]))
        for line in metrics.splitlines()
        if line.startswith(label)
    }


def test_a_declared_route_takes_only_what_the_short_way_passes() -> None:
    def listed(request: Request, engine: Engine, state: str | None = None) -> None:
        """Takes a query parameter."""

    def counted(case_id: int, body: models.FireEvent, engine: Engine) -> None:
        """Takes a number from its path."""

    for func, path in [(listed, "/cases"), (counted, "/cases/{case_id}/events")]:
        with pytest.raises(TypeError, match="text path parameters and one body model only"):
            declare(APIRouter(), "POST", path, func, "short")
