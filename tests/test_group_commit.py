"""Group commit on SQLite: events posted together share one transaction and one durable
commit; none is answered before it, a write that fails on its own fails alone, and a
failure of the database fails the whole group with nothing of it stored.

The requests go to the real application: through its ASGI interface, started in one
turn of the event loop (so they form one group, as requests that reach a busy server
together do), and over loopback to a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from casework.storage.errors import StorageError
from casework.workflow.access.tokens import issue
from casework.workflow.api.app import create_app
from casework.workflow.api.offload import offload_for
from casework.workflow.clock import FixedClock
from casework.workflow.engine import Engine
from tests.support import START
from tests.support.api_server import serving
from tests.support.asgi import asgi_post

OPEN = {"customer": "CUST-1", "channel": "phone", "category": "service_delayed",
        "summary": "师傅没有按约上门", "branch": "东莞长安店"}  # fmt: skip


@pytest.fixture
def sqlite_engine(tmp_path: Path, sqlite_template: Path) -> Any:
    path = tmp_path / "casework.db"
    path.write_bytes(sqlite_template.read_bytes())
    engine = Engine.open(f"sqlite:///{path}", clock=FixedClock(START))
    yield engine
    engine.close()


def _cases(engine: Engine, n: int) -> list[str]:
    return [engine.open_case(actor="li.na", **OPEN).id for _ in range(n)]


async def _post(app: Any, token: str, case_id: str, body: dict[str, Any],
                headers: dict[str, str]) -> tuple[int, Any]:  # fmt: skip
    """POST ``body`` to the case's events through the ASGI application: status, body."""
    sent = [(b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
            *((k.lower().encode(), v.encode()) for k, v in headers.items())]  # fmt: skip
    raw = json.dumps(body, ensure_ascii=False).encode()
    status, answer = await asgi_post(app, f"/v1/cases/{case_id}/events", raw, sent)
    return status, json.loads(answer or b"null")


def _together(engine: Engine, posts: list[tuple[str, dict[str, Any], dict[str, str]]]) -> Any:
    """Send ``posts`` (case, body, headers) at once to a new application on ``engine``:
    the answers, in order, and its group commit."""
    app = create_app(engine)
    token = issue(engine.context.store, "li.na", "agent", None, engine.clock.now()).token

    async def main() -> list[tuple[int, Any]]:
        return await asyncio.gather(*(_post(app, token, c, b, h) for c, b, h in posts))

    answers = asyncio.run(main())
    return answers, offload_for(engine).group, app


def _notes(engine: Engine, case_id: str) -> list[str]:
    return [e.data.get("note", "") for e in engine.history(case_id) if e.event == "note"]


def test_events_posted_together_share_one_commit_and_each_is_stored(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    cases = _cases(sqlite_engine, 4)
    posts = [(cases[n % 4], {"event": "note", "note": f"第{n}次催促"}, {}) for n in range(8)]
    with caplog.at_level(logging.INFO, logger="casework"):
        answers, group, app = _together(sqlite_engine, posts)
    fired = [r for r in caplog.records if r.getMessage() == "event_fired"]
    assert len(fired) == 8  # logged once the group is committed
    assert [status for status, _ in answers] == [200] * 8
    assert (group.commits, group.writes) == (1, 8)
    for n, (_, body) in enumerate(answers):
        assert body["id"] == cases[n % 4]
    assert [body["version"] for _, body in answers] == [2, 2, 2, 2, 3, 3, 3, 3]
    for n, case_id in enumerate(cases):
        assert _notes(sqlite_engine, case_id) == [f"第{n}次催促", f"第{n + 4}次催促"]
    assert sqlite_engine.verify().ok
    counted = app.metrics.transitions.labels("note")._value.get()
    assert counted == 8


def test_a_write_that_fails_on_its_own_fails_alone(sqlite_engine: Engine) -> None:
    (case_id,) = _cases(sqlite_engine, 1)
    posts = [
        (case_id, {"event": "note", "note": "一"}, {}),
        ("C-DOES-NOT-EXIST", {"event": "note", "note": "二"}, {}),
        (case_id, {"event": "close"}, {}),  # not allowed while received
        (case_id, {"event": "note", "note": "三"}, {"If-Match": '"1"'}),  # stale by then
        (case_id, {"event": "note", "note": "四"}, {}),
    ]
    answers, group, _ = _together(sqlite_engine, posts)
    assert [status for status, _ in answers] == [200, 404, 422, 412, 200]
    assert (group.commits, group.writes) == (1, 5)
    assert _notes(sqlite_engine, case_id) == ["一", "四"]
    assert sqlite_engine.get(case_id).version == 3
    assert sqlite_engine.verify().ok


def _fail_writes_of(engine: Engine, sql: list[str]) -> None:
    """Add ``sql`` (triggers) to the engine's SQLite file, beside casework's schema."""
    path = engine.db.url.database
    assert path is not None
    with sqlite3.connect(path) as conn:
        for statement in sql:
            conn.execute(statement)


def test_a_driver_error_in_one_write_fails_the_whole_group(sqlite_engine: Engine) -> None:
    cases = _cases(sqlite_engine, 3)
    # the database fails the event that says so, as a full disk or an I/O error would
    _fail_writes_of(sqlite_engine, [
        "CREATE TRIGGER fail_io BEFORE INSERT ON events WHEN NEW.data LIKE '%磁盘故障%' "
        "BEGIN SELECT json('{磁盘'); END",
    ])  # fmt: skip
    posts = [(cases[0], {"event": "note", "note": "先到"}, {}),
             (cases[1], {"event": "note", "note": "磁盘故障"}, {}),
             (cases[2], {"event": "note", "note": "后到"}, {})]  # fmt: skip
    answers, group, app = _together(sqlite_engine, posts)
    assert [status for status, _ in answers] == [503, 503, 503]
    assert all("malformed JSON" in body["detail"] for _, body in answers)
    assert group.commits == 0
    for case_id in cases:
        assert _notes(sqlite_engine, case_id) == []
        assert sqlite_engine.get(case_id).version == 1
    assert app.metrics.transitions.labels("note")._value.get() == 0
    # the next group is stored: nothing of the failed one is left open
    answers, group, _ = _together(
        sqlite_engine, [(c, {"event": "note", "note": "恢复"}, {}) for c in cases]
    )
    assert [status for status, _ in answers] == [200] * 3
    assert sqlite_engine.verify().ok


def test_a_failed_commit_fails_every_write_of_the_group(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    cases = _cases(sqlite_engine, 2)
    # a row checked only at COMMIT (a deferred key) that one event's insert leaves behind
    _fail_writes_of(sqlite_engine, [
        "CREATE TABLE held (case_id TEXT REFERENCES cases (id) DEFERRABLE INITIALLY DEFERRED)",
        "CREATE TRIGGER hold AFTER INSERT ON events WHEN NEW.data LIKE '%提交失败%' "
        "BEGIN INSERT INTO held VALUES ('no such case'); END",
    ])  # fmt: skip
    posts = [(cases[0], {"event": "note", "note": "提交失败"}, {}),
             (cases[1], {"event": "note", "note": "正常"}, {})]  # fmt: skip
    with caplog.at_level(logging.INFO, logger="casework"):
        answers, group, app = _together(sqlite_engine, posts)
    assert [status for status, _ in answers] == [503, 503]
    assert [r for r in caplog.records if r.getMessage() == "event_fired"] == []
    assert all("FOREIGN KEY" in body["detail"] for _, body in answers)
    assert group.commits == 0
    for case_id in cases:
        assert _notes(sqlite_engine, case_id) == []
    assert app.metrics.transitions.labels("note")._value.get() == 0
    assert sqlite_engine.verify().ok


def test_keyed_requests_run_alone_and_keep_their_answers(sqlite_engine: Engine) -> None:
    cases = _cases(sqlite_engine, 4)
    keyed = {"Idempotency-Key": "reminder-1"}
    posts = [(c, {"event": "note", "note": "无键"}, {}) for c in cases]
    posts += [(cases[0], {"event": "note", "note": "有键"}, keyed)] * 2
    answers, group, _ = _together(sqlite_engine, posts)
    statuses = [status for status, _ in answers]
    assert statuses[:4] == [200] * 4
    assert sorted(statuses[4:]) in ([200, 200], [200, 409])  # replayed, or still under way
    assert (group.commits, group.writes) == (1, 4)
    assert _notes(sqlite_engine, cases[0]).count("有键") == 1
    assert sqlite_engine.verify().ok


def test_a_write_of_its_own_inside_a_group_is_refused_at_once(sqlite_engine: Engine) -> None:
    store = sqlite_engine.context.store
    with store.grouped() as connection:
        assert connection is not None
        with pytest.raises(StorageError, match="must join it"), store.transaction():
            pass
    # another thread queues for the group's lock instead, and writes once it is done
    done = threading.Event()
    with store.grouped():
        writer = threading.Thread(target=lambda: (_cases(sqlite_engine, 1), done.set()))
        writer.start()
        assert not done.wait(0.2)
    writer.join(10)
    assert done.is_set()


def test_a_real_server_answers_every_concurrent_write(sqlite_engine: Engine) -> None:
    cases = _cases(sqlite_engine, 8)
    with serving(sqlite_engine) as served:
        token = served.token()
        failures: list[Any] = []

        def client(n: int) -> None:
            with served.client(token) as http:
                for k in range(25):
                    answer = http.post(f"/v1/cases/{cases[n]}/events",
                                       json={"event": "note", "note": f"{n}-{k}"})  # fmt: skip
                    if answer.status_code != 200 or answer.json()["version"] != k + 2:
                        failures.append((n, k, answer.status_code, answer.text))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with served.client(served.token("admin", "ops")) as http:
            metrics = http.get("/metrics").text
    assert failures == []
    assert 'casework_transitions_total{event="note"} 200.0' in metrics
    grouped = re.search(r"^casework_group_commit_events_total (\S+)$", metrics, re.MULTILINE)
    assert grouped is not None
    assert 0 <= float(grouped[1]) <= 200
    for n, case_id in enumerate(cases):
        assert _notes(sqlite_engine, case_id) == [f"{n}-{k}" for k in range(25)]
    assert sqlite_engine.verify().ok


def test_cases_merged_into_each_other_together_leave_one_standing(sqlite_engine: Engine) -> None:
    # a merge checks that the case it goes into is not merged itself, in committed data:
    # it runs in a transaction of its own, so the second sees the first
    first, second = _cases(sqlite_engine, 2)
    posts = [(first, {"event": "merge_into", "data": {"case": second}}, {}),
             (second, {"event": "merge_into", "data": {"case": first}}, {})]  # fmt: skip
    answers, _, _ = _together(sqlite_engine, posts)
    assert [status for status, _ in answers] == [200, 422]
    assert "is merged itself" in answers[1][1]["detail"]
    assert [sqlite_engine.get(c).state for c in (first, second)] == ["merged", "received"]
    assert sqlite_engine.verify().ok
