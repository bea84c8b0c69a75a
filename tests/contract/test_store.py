"""The storage port's contract: what any :class:`storage.port.Store` must do, checked on
SQLite and on PostgreSQL alike (the ``db_url`` fixture runs each test on both).

Rows are written through the port itself, by hand, so the contract holds whatever the
engine above it does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine as SAEngine

from casework.storage import GENESIS_HASH, make_engine
from casework.storage.errors import WriteConflict
from casework.storage.migrate import upgrade
from casework.storage.port import Store
from casework.storage.records import CaseQuery, Remembered, TokenRecord
from casework.storage.sql_store import SqlStore
from casework.workflow.transitions import event_row
from tests.support import START

H = timedelta(hours=1)


@pytest.fixture(params=[None, "cw_"], ids=["plain", "prefixed"])
def store(db_url: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    """The port on a database with the current schema and nothing in it, its tables
    named as they are by default and under a table prefix."""
    db: SAEngine = make_engine(db_url, table_prefix=request.param)
    upgrade(db)
    store = SqlStore(db)
    yield store
    store.close()
    db.dispose()


def _case(case_id: str, at: Any = START, **columns: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A case row and its opening event."""
    event = event_row(case_id, 1, "open", None, "received", "li.na", at, at, {}, GENESIS_HASH)
    case = {
        "id": case_id, "machine": "complaint", "machine_version": 1, "state": "received",
        "version": 1, "owner": "li.na", "branch": "东莞长安店", "channel": "phone",
        "category": "service_delayed", "priority": "normal", "customer": "C-1",
        "contact": None, "summary": "师傅没有按约上门", "received_at": at, "opened_at": at,
        "last_event_at": at, "escalation_level": 0, "attributes": {}, "facts": {},
        "head_hash": event["hash"], "sla_policy": None, "sla": {}, **columns,
    }  # fmt: skip
    return case, event


def _opened(store: Store, *ids: str, at: Any = START) -> None:
    with store.transaction() as cursor:
        for case_id in ids:
            store.cases.insert(cursor, *_case(case_id, at))


def _next(store: Store, case_id: str, event: str, to_state: str, at: Any) -> tuple[Any, Any]:
    """The event that follows the case's last one, and the case update it makes."""
    case = store.cases.get(case_id)
    assert case is not None
    row = event_row(case_id, case.version + 1, event, case.state, to_state, "li.na", at, at, {},
                    case.head_hash)  # fmt: skip
    update = {"state": to_state, "version": case.version + 1, "owner": case.owner, "facts": {},
              "escalation_level": 0, "last_event_at": at, "head_hash": row["hash"]}  # fmt: skip
    return row, update


def test_a_case_and_its_opening_event_are_read_back_as_written(store: Store) -> None:
    _opened(store, "c1")
    case, events = store.cases.with_events("c1")
    assert case is not None
    assert (case.id, case.state, case.version, case.branch) == ("c1", "received", 1, "东莞长安店")
    assert case.received_at == START
    assert case.received_at.tzinfo is not None
    assert [(e.seq, e.event, e.hash) for e in events] == [(1, "open", case.head_hash)]
    assert store.cases.get("c1") == case
    assert store.cases.get("missing") is None
    assert store.cases.with_events("missing") == (None, [])


def test_a_taken_case_id_is_a_write_conflict_and_nothing_is_written(store: Store) -> None:
    _opened(store, "c1")

    def insert_two() -> None:
        with store.transaction() as cursor:
            store.cases.insert(cursor, *_case("c2"))
            store.cases.insert(cursor, *_case("c1"))

    with pytest.raises(WriteConflict):
        insert_two()
    assert store.cases.get("c2") is None
    assert [c.id for c in store.cases.matching()] == ["c1"]


def test_a_transaction_that_raises_writes_nothing(store: Store) -> None:
    def insert_then_fail() -> None:
        with store.transaction() as cursor:
            store.cases.insert(cursor, *_case("c1"))
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        insert_then_fail()
    assert store.cases.matching() == []


def test_append_moves_the_case_only_from_the_expected_version(store: Store) -> None:
    _opened(store, "c1")
    row, update = _next(store, "c1", "apologise", "apologised", START + H)
    with store.transaction() as cursor:
        assert store.cases.load(cursor, "c1") is not None
        assert store.cases.append(cursor, row, update, expected=1) is True
    stale, stale_update = _next(store, "c1", "note", "apologised", START + 2 * H)

    def append_stale() -> None:
        with store.transaction() as cursor:
            if not store.cases.append(cursor, stale, {**stale_update, "version": 3}, expected=1):
                raise LookupError("the case moved on")

    with pytest.raises(LookupError):
        append_stale()
    case, events = store.cases.with_events("c1")
    assert case is not None
    assert (case.state, case.version) == ("apologised", 2)
    assert [e.event for e in events] == ["open", "apologise"]


def test_a_queue_puts_the_next_deadline_first(store: Store) -> None:
    _opened(store, "idle", at=START)
    _opened(store, "later", "sooner", "shut", at=START + H)
    with store.transaction() as cursor:
        store.deadlines.plan(cursor, "later", ("first_response", 1, 0), START + 20 * H)
        store.deadlines.plan(cursor, "sooner", ("first_response", 1, 0), START + 5 * H)
        store.deadlines.plan(cursor, "shut", ("first_response", 1, 0), START + 2 * H)
    row, update = _next(store, "shut", "withdraw", "withdrawn", START + 2 * H)
    with store.transaction() as cursor:
        assert store.cases.append(cursor, row, update, expected=1)
    mine = CaseQuery(owner="li.na", branch="东莞长安店", not_states=("withdrawn",))
    found = store.cases.by_due(mine, 2)
    assert [(c.id, due) for c, due in found] == [
        ("sooner", START + 5 * H),
        ("later", START + 20 * H),
    ]
    assert store.cases.count(mine) == 3
    last, due = found[-1]
    rest = store.cases.by_due(replace(mine, after_due=(due, last.received_at, last.id)), 5)
    assert [(c.id, due) for c, due in rest] == [("idle", None)]
    after_idle = replace(mine, after_due=(None, rest[0][0].received_at, "idle"))
    assert store.cases.by_due(after_idle, 5) == []
    elsewhere = CaseQuery(owner="li.na", branch="广州天河店")
    assert store.cases.by_due(elsewhere, 10) == []
    assert store.cases.count(elsewhere) == 0
    received = CaseQuery(received_from=START + H, received_until=START + 2 * H)
    assert [c.id for c in store.cases.matching(received)] == ["later", "shut", "sooner"]
    assert [c.id for c in store.cases.matching(CaseQuery(states=("withdrawn",)))] == ["shut"]


def test_cases_come_in_the_order_received_by_state_and_limit(store: Store) -> None:
    _opened(store, "late", at=START + H)
    _opened(store, "early", at=START)
    assert [c.id for c in store.cases.matching()] == ["early", "late"]
    assert [c.id for c in store.cases.matching(limit=1)] == ["early"]
    assert store.cases.matching(CaseQuery(state="closed")) == []
    loaded, _ = store.cases.received_between(START, START + H, ["open"])
    assert [c.id for c in loaded] == ["early"]
    _, events = store.cases.received_between(START, START + 2 * H, ["open"])
    assert sorted(events) == ["early", "late"]


def test_deadlines_are_planned_moved_cancelled_and_claimed_once(store: Store) -> None:
    _opened(store, "c1", "c2")
    first, second = ("first_response", 1, 0), ("first_response", 1, 1)
    with store.transaction() as cursor:
        store.deadlines.plan(cursor, "c1", first, START + 18 * H)
        store.deadlines.plan(cursor, "c1", second, START + 24 * H)
        store.deadlines.plan_many(cursor, [("c2", first, START + 30 * H)])
    assert store.deadlines.pending_count() == 3
    assert store.deadlines.next_due() == START + 18 * H
    with store.transaction() as cursor:
        store.deadlines.plan(cursor, "c1", first, START + 20 * H)  # moved later
        store.deadlines.cancel_many(cursor, [("c2", first)])
    assert store.deadlines.next_due() == START + 20 * H
    assert store.deadlines.pending_count() == 2
    with store.transaction() as cursor:
        due = store.deadlines.claim(cursor, START + 24 * H, 10)
    assert [(d.case_id, d.level, d.due_at) for d in due] == [
        ("c1", 0, START + 20 * H),
        ("c1", 1, START + 24 * H),
    ]
    with store.transaction() as cursor:
        assert store.deadlines.claim(cursor, START + 48 * H, 10) == []
        store.deadlines.plan(cursor, "c1", first, START + 40 * H)  # a fired deadline stays fired
    assert store.deadlines.next_due() is None
    with store.transaction() as cursor:
        store.deadlines.unclaim(cursor, [("pending", START + 50 * H, due[1].id)])
    assert store.deadlines.next_due() == START + 50 * H


def test_a_claim_takes_at_most_its_limit_earliest_first(store: Store) -> None:
    _opened(store, "c1")
    with store.transaction() as cursor:
        store.deadlines.plan_many(
            cursor, [("c1", ("clock", 1, n), START + n * H) for n in range(5)]
        )
    with store.transaction() as cursor:
        due = store.deadlines.claim(cursor, START + 10 * H, 2)
    assert [d.level for d in due] == [0, 1]
    assert store.deadlines.pending_count() == 3


def test_a_policy_is_kept_once_under_its_version(store: Store) -> None:
    with store.transaction() as cursor:
        store.deadlines.store_policy(cursor, "v1", "standard", {"target": 24}, START)
        store.deadlines.store_policy(cursor, "v1", "other", {"target": 1}, START + H)
    assert store.deadlines.policies() == {"v1": {"target": 24}}


def _deadlines(store: Store, count: int) -> list[int]:
    """Ids of ``count`` fired deadlines of case c1 (a mail names the deadline it is for)."""
    with store.transaction() as cursor:
        store.deadlines.plan_many(
            cursor, [("c1", ("first_response", 1, n), START) for n in range(count)]
        )
        return [d.id for d in store.deadlines.claim(cursor, START, count)]


def _mail(key: str, deadline_id: int, level: int = 1) -> dict[str, Any]:
    return {
        "dedupe_key": key, "case_id": "c1", "deadline_id": deadline_id,
        "kind": "warning" if level == 0 else "escalation", "level": level,
        "recipients": ["店长@example.com"], "subject": "", "body": {"case_id": "c1"},
        "next_attempt_at": START, "created_at": START,
    }  # fmt: skip


def test_mails_are_queued_once_claimed_under_a_lease_and_their_outcome_recorded(
    store: Store,
) -> None:
    _opened(store, "c1")
    ids = _deadlines(store, 3)
    with store.transaction() as cursor:
        store.outbox.queue(cursor, [_mail("a", ids[0]), _mail("b", ids[1]),
                                   _mail("c", ids[2], level=0)])  # fmt: skip
        store.outbox.queue(cursor, [_mail("a", ids[0])])  # already queued: left out
    assert store.outbox.counts()["pending"] == 3
    ready, held = store.outbox.claim(
        due_by=START, lease_until=START + H, token="t1", limit=10,
        hold_until=lambda mail: START + 2 * H if mail.level == 0 else None,
    )  # fmt: skip
    assert held == 1
    assert sorted(m.dedupe_key for m in ready) == ["a", "b"]
    assert store.outbox.claim(due_by=START, lease_until=START + H, token="t2", limit=10,
                             hold_until=lambda mail: None) == ([], 0)  # fmt: skip
    by_key = {m.dedupe_key: m for m in ready}
    assert store.outbox.mark_sent([(by_key["a"].id, "<id@x>", None)], "wrong-token", START) == 0
    assert store.outbox.mark_sent([(by_key["a"].id, "<id@x>", None)], "t1", START) == 1
    assert store.outbox.mark_failed([], [by_key["b"].id], "t1", error="550", buried="550 no") == (
        0,
        1,
    )
    counts = store.outbox.counts()
    assert (counts["sent"], counts["dead"], counts["held"], counts["pending"]) == (1, 1, 1, 0)
    assert store.outbox.next_attempt() == START + 2 * H
    mail, found = store.outbox.requeue(by_key["b"].id, START + H)
    assert found is None
    assert mail is not None
    assert mail.status == "pending"
    mail, found = store.outbox.requeue(by_key["a"].id, START + H)
    assert mail is None
    assert found is not None
    assert found.status == "sent"
    assert store.outbox.requeue(999_999, START) == (None, None)
    assert store.outbox.requeue_all("dead", START) == 0
    assert [m.dedupe_key for m in store.outbox.rows(status="sent")] == ["a"]
    assert len(store.outbox.rows(limit=2)) == 2


def test_a_failed_sending_is_retried_later_or_buried(store: Store) -> None:
    _opened(store, "c1")
    ids = _deadlines(store, 2)
    with store.transaction() as cursor:
        store.outbox.queue(cursor, [_mail("a", ids[0]), _mail("b", ids[1])])
    ready, _ = store.outbox.claim(due_by=START, lease_until=START + H, token="t", limit=10,
                                 hold_until=lambda mail: None)  # fmt: skip
    a, b = sorted(ready, key=lambda m: m.dedupe_key)
    assert store.outbox.mark_failed(
        [(a.id, START + 2 * H)], [b.id], "t", error="421", buried="gave up"
    )
    assert {m.dedupe_key: m.status for m in store.outbox.rows()} == {"a": "pending", "b": "dead"}
    assert store.outbox.rows(status="dead")[0].last_error == "gave up"
    assert store.outbox.release([a.id], "t", START) == 0  # no longer under this lease


def test_a_snapshot_streams_cases_events_and_pending_deadlines_by_case_id(store: Store) -> None:
    _opened(store, "b", "a", "c")
    with store.transaction() as cursor:
        store.deadlines.plan(cursor, "b", ("first_response", 1, 0), START + H)
    with store.audit.snapshot() as streams:
        cases = [row[0] for row in streams.cases]
        events = [(row[0], row[1]) for row in streams.events]
        deadlines = [row[0] for row in streams.deadlines]
    assert cases == ["a", "b", "c"]
    assert events == [("a", 1), ("b", 1), ("c", 1)]
    assert deadlines == ["b"]
    assert store.audit.middle_case_id() == "b"
    with store.audit.snapshot(id_range=("b", None)) as streams:
        assert [row[0] for row in streams.cases] == ["b", "c"]
    with store.audit.snapshot(["c"]) as streams:
        assert [row[0] for row in streams.cases] == ["c"]


def test_exports_and_heads_read_the_history_as_recorded(store: Store) -> None:
    _opened(store, "a", "b")
    row, update = _next(store, "a", "apologise", "apologised", START + H)
    with store.transaction() as cursor:
        store.cases.append(cursor, row, update, expected=1)
    with store.audit.export_rows() as rows:
        exported = [(r[0], r[1], r[11]) for r in rows]
    assert exported == [("a", 1, "complaint"), ("a", 2, "complaint"), ("b", 1, "complaint")]
    with store.audit.export_rows(case_id="b") as rows:
        assert [r[0] for r in rows] == ["b"]
    with store.audit.case_heads(START) as heads:
        assert [(case_id, seq) for case_id, seq, _ in heads] == [("a", 1), ("b", 1)]
        assert heads.events == 2
    assert store.database_id()


def test_late_candidates_are_escalated_cases_or_those_with_a_deadline_due(
    store: Store,
) -> None:
    with store.transaction() as cursor:
        for case_id, level in (("quiet", 0), ("escalated", 2), ("due", 0), ("warned", 0)):
            case, event = _case(case_id, escalation_level=level, sla_policy="v1")
            store.cases.insert(cursor, case, event)
        store.deadlines.plan(cursor, "due", ("first_response", 1, 1), START + H)
        store.deadlines.plan(cursor, "warned", ("first_response", 1, 0), START + H)
        store.deadlines.plan(cursor, "quiet", ("first_response", 1, 0), START + 2 * H)
    # A warning nobody processed (the worker stopped) may hide a passed target too.
    assert sorted(c.id for c in store.cases.late_candidates(START + H)) == [
        "due",
        "escalated",
        "warned",
    ]
    assert [c.id for c in store.cases.late_candidates(START)] == ["escalated"]


def test_tokens_are_kept_by_hash_and_revoked_once(store: Store) -> None:
    token = TokenRecord("ab12cd34", "li.na", "agent", "东莞长安店", START)
    store.access.add_token(token, "h" * 64)
    assert store.access.token_by_hash("h" * 64) == token
    assert store.access.token_by_hash("x" * 64) is None
    assert store.access.tokens() == [token]
    revoked = store.access.revoke_token("ab12cd34", START + H)
    assert revoked is not None
    assert revoked.revoked_at == START + H
    again = store.access.revoke_token("ab12cd34", START + 2 * H)
    assert again is not None
    assert again.revoked_at == START + H
    assert store.access.revoke_token("missing", START) is None


def test_an_answer_is_remembered_once_per_key_and_forgotten_when_old(store: Store) -> None:
    answer = Remembered("r" * 64, 201, {"id": "c1", "名": "张三"}, "/v1/cases/c1", START)
    assert store.access.remember("ab12cd34", "key-1", answer) is True
    assert store.access.remember("ab12cd34", "key-1", answer) is False
    assert store.access.recall("ab12cd34", "key-1") == answer
    assert store.access.recall("other", "key-1") is None
    assert store.access.forget_before(START + H) == 1
    assert store.access.recall("ab12cd34", "key-1") is None
