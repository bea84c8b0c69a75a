"""An ``Idempotency-Key`` whose request died with its process (the placeholder left,
nothing recorded) is free again once its lease has run out: the retry runs the request."""

from __future__ import annotations

from datetime import timedelta

from casework.storage.records import Remembered
from casework.workflow.access.tokens import issue
from casework.workflow.api.idempotency import LEASE, fingerprint
from casework.workflow.clock import FixedClock
from casework.workflow.engine import Engine
from tests.support.api_server import Served

OPEN = {"customer": "CUST-1", "channel": "phone", "category": "service_delayed",
        "summary": "师傅没有按约上门", "branch": "东莞长安店"}  # fmt: skip


def test_a_placeholder_whose_request_died_is_taken_over_after_its_lease(
    api: Served, clock: FixedClock
) -> None:
    issued = issue(api.engine.context.store, "li.na", "agent", None, clock.now())
    stamp = fingerprint("POST", "/v1/cases", OPEN)
    # what `serve` leaves when it is killed while the request is under way
    died = Remembered(stamp, 0, {}, None, clock.now())
    assert api.engine.context.store.access.remember(issued.record.id, "order-7781", died)
    key = {"Idempotency-Key": "order-7781"}
    with api.client(issued.token) as http:
        clock.advance(LEASE - timedelta(seconds=1))
        busy = http.post("/v1/cases", json=OPEN, headers=key)
        assert busy.status_code == 409  # it may still be running: not run twice
        assert "still under way" in busy.json()["detail"]
        assert api.engine.list() == []
        clock.advance(timedelta(seconds=2))
        retried = http.post("/v1/cases", json=OPEN, headers=key)
        assert retried.status_code == 201, retried.text
        assert "idempotent-replayed" not in retried.headers
        again = http.post("/v1/cases", json=OPEN, headers=key)
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == retried.json()
        assert [c.id for c in api.engine.list()] == [retried.json()["id"]]
        other = http.post("/v1/cases", json={**OPEN, "summary": "另一件"}, headers=key)
        assert other.status_code == 422  # the key still binds its request


def test_only_one_retry_takes_a_dead_placeholder_over_and_a_late_answer_is_dropped(
    engine: Engine, clock: FixedClock
) -> None:
    store, began = engine.context.store, clock.now()
    assert store.access.remember("tok1", "k", Remembered("h", 0, {}, None, began))
    later = began + LEASE + timedelta(seconds=1)
    assert store.access.take_over("tok1", "k", began, later)
    assert not store.access.take_over("tok1", "k", began, later)  # the second retry was late
    # the first request's answer, arriving after all, does not replace the new holder's
    store.access.settle("tok1", "k", Remembered("h", 201, {"first": True}, None, began))
    kept = store.access.recall("tok1", "k")
    assert kept is not None
    assert (kept.status, kept.created_at) == (0, later)
    store.access.settle("tok1", "k", Remembered("h", 201, {"second": True}, "/x", later))
    kept = store.access.recall("tok1", "k")
    assert kept is not None
    assert (kept.status, kept.body) == (201, {"second": True})
