"""The storage port's contract: cases and events, deadlines, the outbox, history streams,
tokens and kept answers. What any :class:`casework.storage.port.Store` must do, checked on
every store of ``conftest.py``.

Rows are written through the port itself, by hand, so the contract holds whatever the
engine above it does.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from casework.storage.errors import WriteConflict
from casework.storage.port import Store
from casework.storage.records import (
    CASE_FIELDS,
    EVENT_FIELDS,
    CaseQuery,
    Remembered,
    TokenRecord,
)
from casework.storage.timestamps import iso
from tests.contract.rows import H, case_rows, fired_deadlines, next_event, opened, outbox_mail
from tests.support import START


@pytest.mark.covers("transaction", "cases.insert", "cases.get", "cases.with_events")
def test_a_case_and_its_opening_event_are_read_back_as_written(store: Store) -> None:
    opened(store, "c1")
    case, events = store.cases.with_events("c1")
    assert case is not None
    assert (case.id, case.state, case.version, case.branch) == ("c1", "received", 1, "东莞长安店")
    assert case.received_at == START
    assert case.received_at.tzinfo is not None
    assert [(e.seq, e.event, e.hash) for e in events] == [(1, "open", case.head_hash)]
    assert store.cases.get("c1") == case
    assert store.cases.get("missing") is None
    assert store.cases.with_events("missing") == (None, [])


@pytest.mark.covers("cases.insert", "cases.matching")
def test_a_taken_case_id_is_a_write_conflict_and_nothing_is_written(store: Store) -> None:
    opened(store, "c1")

    def insert_two() -> None:
        with store.transaction() as cursor:
            store.cases.insert(cursor, *case_rows("c2"))
            store.cases.insert(cursor, *case_rows("c1"))

    with pytest.raises(WriteConflict):
        insert_two()
    assert store.cases.get("c2") is None
    assert [c.id for c in store.cases.matching()] == ["c1"]


@pytest.mark.covers("transaction")
def test_a_transaction_that_raises_writes_nothing(store: Store) -> None:
    def insert_then_fail() -> None:
        with store.transaction() as cursor:
            store.cases.insert(cursor, *case_rows("c1"))
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        insert_then_fail()
    assert store.cases.matching() == []


@pytest.mark.covers("cases.append", "cases.load")
def test_append_moves_the_case_only_from_the_expected_version(store: Store) -> None:
    opened(store, "c1")
    row, update = next_event(store, "c1", "apologise", "apologised", START + H)
    with store.transaction() as cursor:
        assert store.cases.load(cursor, "c1") is not None
        assert store.cases.append(cursor, row, update, expected=1) is True
    stale, stale_update = next_event(store, "c1", "note", "apologised", START + 2 * H)

    def append_stale() -> None:
        with store.transaction() as cursor:
            if not store.cases.append(cursor, stale, {**stale_update, "version": 3}, expected=1):
                raise LookupError("the case moved on")

    with pytest.raises((LookupError, WriteConflict)):  # the latter where it is learnt late
        append_stale()
    case, events = store.cases.with_events("c1")
    assert case is not None
    assert (case.state, case.version) == ("apologised", 2)
    assert [e.event for e in events] == ["open", "apologise"]


@pytest.mark.covers("deadlines.plan", "cases.by_due", "cases.count", "cases.matching")
def test_a_queue_puts_the_next_deadline_first(store: Store) -> None:
    opened(store, "idle", at=START)
    opened(store, "later", "sooner", "shut", at=START + H)
    with store.transaction() as cursor:
        store.deadlines.plan(cursor, "later", ("first_response", 1, 0), START + 20 * H)
        store.deadlines.plan(cursor, "sooner", ("first_response", 1, 0), START + 5 * H)
        store.deadlines.plan(cursor, "shut", ("first_response", 1, 0), START + 2 * H)
    row, update = next_event(store, "shut", "withdraw", "withdrawn", START + 2 * H)
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


@pytest.mark.covers("cases.matching", "cases.received_between")
def test_cases_come_in_the_order_received_by_state_and_limit(store: Store) -> None:
    opened(store, "late", at=START + H)
    opened(store, "early", at=START)
    assert [c.id for c in store.cases.matching()] == ["early", "late"]
    assert [c.id for c in store.cases.matching(limit=1)] == ["early"]
    assert store.cases.matching(CaseQuery(state="closed")) == []
    loaded, _ = store.cases.received_between(START, START + H, ["open"])
    assert [c.id for c in loaded] == ["early"]
    _, events = store.cases.received_between(START, START + 2 * H, ["open"])
    assert sorted(events) == ["early", "late"]


@pytest.mark.covers(
    "deadlines.plan",
    "deadlines.plan_many",
    "deadlines.pending_count",
    "deadlines.next_due",
    "deadlines.cancel_many",
    "deadlines.claim",
    "deadlines.unclaim",
)
def test_deadlines_are_planned_moved_cancelled_and_claimed_once(store: Store) -> None:
    opened(store, "c1", "c2")
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


@pytest.mark.covers("deadlines.claim")
def test_a_claim_takes_at_most_its_limit_earliest_first(store: Store) -> None:
    opened(store, "c1")
    with store.transaction() as cursor:
        store.deadlines.plan_many(
            cursor, [("c1", ("clock", 1, n), START + n * H) for n in range(5)]
        )
    with store.transaction() as cursor:
        due = store.deadlines.claim(cursor, START + 10 * H, 2)
    assert [d.level for d in due] == [0, 1]
    assert store.deadlines.pending_count() == 3


@pytest.mark.covers("deadlines.store_policy", "deadlines.policies")
def test_a_policy_is_kept_once_under_its_version(store: Store) -> None:
    with store.transaction() as cursor:
        store.deadlines.store_policy(cursor, "v1", "standard", {"target": 24}, START)
        store.deadlines.store_policy(cursor, "v1", "other", {"target": 1}, START + H)
    assert store.deadlines.policies() == {"v1": {"target": 24}}


@pytest.mark.covers(
    "outbox.queue",
    "outbox.counts",
    "outbox.claim",
    "outbox.mark_sent",
    "outbox.mark_failed",
    "outbox.next_attempt",
    "outbox.requeue",
    "outbox.requeue_all",
    "outbox.rows",
)
def test_mails_are_queued_once_claimed_under_a_lease_and_their_outcome_recorded(
    store: Store,
) -> None:
    opened(store, "c1")
    ids = fired_deadlines(store, 3)
    with store.transaction() as cursor:
        store.outbox.queue(cursor, [outbox_mail("a", ids[0]), outbox_mail("b", ids[1]),
                                   outbox_mail("c", ids[2], level=0)])  # fmt: skip
        store.outbox.queue(cursor, [outbox_mail("a", ids[0])])  # already queued: left out
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


@pytest.mark.covers("outbox.mark_failed", "outbox.release")
def test_a_failed_sending_is_retried_later_or_buried(store: Store) -> None:
    opened(store, "c1")
    ids = fired_deadlines(store, 2)
    with store.transaction() as cursor:
        store.outbox.queue(cursor, [outbox_mail("a", ids[0]), outbox_mail("b", ids[1])])
    ready, _ = store.outbox.claim(due_by=START, lease_until=START + H, token="t", limit=10,
                                 hold_until=lambda mail: None)  # fmt: skip
    a, b = sorted(ready, key=lambda m: m.dedupe_key)
    assert store.outbox.mark_failed(
        [(a.id, START + 2 * H)], [b.id], "t", error="421", buried="gave up"
    )
    assert {m.dedupe_key: m.status for m in store.outbox.rows()} == {"a": "pending", "b": "dead"}
    assert store.outbox.rows(status="dead")[0].last_error == "gave up"
    assert store.outbox.release([a.id], "t", START) == 0  # no longer under this lease


@pytest.mark.covers("audit.snapshot", "audit.middle_case_id")
def test_a_snapshot_streams_cases_events_and_pending_deadlines_by_case_id(store: Store) -> None:
    opened(store, "b", "a", "c")
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
    assert store.audit.middle_case_id(min_events=3) == "b"  # counting stops at three
    assert store.audit.middle_case_id(min_events=4) is None  # too short to split
    with store.audit.snapshot(id_range=("b", None)) as streams:
        assert [row[0] for row in streams.cases] == ["b", "c"]
    with store.audit.snapshot(["c"]) as streams:
        assert [row[0] for row in streams.cases] == ["c"]


@pytest.mark.covers("audit.export_rows", "audit.case_heads", "database_id")
def test_exports_and_heads_read_the_history_as_recorded(store: Store) -> None:
    opened(store, "a", "b")
    row, update = next_event(store, "a", "apologise", "apologised", START + H)
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


@pytest.mark.covers("cases.late_candidates")
def test_late_candidates_are_escalated_cases_or_those_with_a_deadline_due(
    store: Store,
) -> None:
    with store.transaction() as cursor:
        for case_id, level in (("quiet", 0), ("escalated", 2), ("due", 0), ("warned", 0)):
            case, event = case_rows(case_id, escalation_level=level, sla_policy="v1")
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


@pytest.mark.covers(
    "access.add_token", "access.token_by_hash", "access.tokens", "access.revoke_token"
)
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


@pytest.mark.covers("access.remember", "access.recall", "access.forget_before")
def test_an_answer_is_remembered_once_per_key_and_forgotten_when_old(store: Store) -> None:
    answer = Remembered("r" * 64, 201, {"id": "c1", "名": "张三"}, "/v1/cases/c1", START)
    assert store.access.remember("ab12cd34", "key-1", answer) is True
    assert store.access.remember("ab12cd34", "key-1", answer) is False
    assert store.access.recall("ab12cd34", "key-1") == answer
    assert store.access.recall("other", "key-1") is None
    assert store.access.forget_before(START + H) == 1
    assert store.access.recall("ab12cd34", "key-1") is None


@pytest.mark.covers(
    "outbox.claim",
    "outbox.release",
    "outbox.requeue_all",
    "outbox.rows",
    "outbox.counts",
    "outbox.next_attempt",
)
def test_mails_are_given_back_requeued_and_listed_by_kind_case_and_branch(
    store: Store,
) -> None:
    opened(store, "c1")
    with store.transaction() as cursor:
        store.cases.insert(cursor, *case_rows("c2", branch="广州天河店"))
        store.outbox.queue(cursor, [
            outbox_mail("a", None), outbox_mail("b", None, case_id="c2"),
            outbox_mail("hook", None, kind="webhook"), outbox_mail("sms", None, kind="notify"),
            outbox_mail("report", None, case_id=None, next_attempt_at=START + H),
        ])  # fmt: skip
    ready, _ = store.outbox.claim(due_by=START, lease_until=START + H, token="t", limit=10,
                                 hold_until=lambda mail: None)  # fmt: skip
    assert [m.dedupe_key for m in ready] == ["a", "b"]  # mails only, due ones only
    assert all((m.status, m.attempts) == ("sending", 1) for m in ready)
    assert store.outbox.release([ready[0].id], "other-token", START) == 0
    assert store.outbox.release([ready[0].id], "t", START + 2 * H) == 1
    given_back = store.outbox.rows(mail_id=ready[0].id)[0]
    assert (given_back.status, given_back.attempts) == ("pending", 0)
    assert given_back.next_attempt_at == START + 2 * H
    hooks, _ = store.outbox.claim(due_by=START, lease_until=START + H, token="w", limit=10,
                                 hold_until=lambda mail: None, kind="webhook")  # fmt: skip
    assert [m.dedupe_key for m in hooks] == ["hook"]
    assert store.outbox.mark_failed([], [hooks[0].id], "w", error="500", buried="gone") == (0, 1)
    assert store.outbox.requeue_all("dead", START + 3 * H, kind="mail") == 0
    assert store.outbox.requeue_all("dead", START + 3 * H, kind="webhook") == 1
    hook = store.outbox.rows(kind="webhook")[0]
    assert (hook.status, hook.attempts, hook.next_attempt_at) == ("pending", 0, START + 3 * H)
    # each sender asks when its own rows fall due: the due mails do not wake the others
    assert store.outbox.next_attempt("webhook") == START + 3 * H
    assert store.outbox.next_attempt("notify") == START
    assert store.outbox.next_attempt("mail") == START + H  # b's lease, the report
    assert store.outbox.next_attempt() == START
    assert store.outbox.requeue_all("pending", START) == 4  # a, sms, report, the webhook: due now
    assert store.outbox.next_attempt() == START
    keys = {m.dedupe_key for m in store.outbox.rows(kind=None)}
    assert keys == {"a", "b", "hook", "sms", "report"}
    assert [m.dedupe_key for m in store.outbox.rows(kind="mail")] == ["a", "b", "report"]
    assert [m.dedupe_key for m in store.outbox.rows(kind="notify")] == ["sms"]
    assert [m.dedupe_key for m in store.outbox.rows(case_id="c2")] == ["b"]
    assert [m.dedupe_key for m in store.outbox.rows(branch="广州天河店")] == ["b"]
    both = ["广州天河店", "东莞长安店"]
    assert [m.dedupe_key for m in store.outbox.rows(branch=both)] == ["a", "b", "hook", "sms"]
    assert [m.dedupe_key for m in store.outbox.rows(status="sending")] == ["b"]
    assert store.outbox.counts("webhook") == {"pending": 1, "held": 0, "sending": 0, "sent": 0,
                                            "dead": 0}  # fmt: skip
    assert store.outbox.counts("mail") == {"pending": 2, "held": 0, "sending": 1, "sent": 0,
                                         "dead": 0}  # fmt: skip
    assert store.outbox.counts()["pending"] == 4


@pytest.mark.covers("audit.snapshot", "audit.export_rows", "audit.case_heads")
def test_streams_give_times_as_canonical_text_and_event_data_as_stored(store: Store) -> None:
    with store.transaction() as cursor:
        case, event = case_rows("c1", data={"名": "张三", "n": 1}, attributes={"serial": "S"},
                                event_format=2)  # fmt: skip
        store.cases.insert(cursor, case, event)
        store.deadlines.plan(cursor, "c1", ("first_response", 1, 0), START + H)
        subject, _ = store.personal.subject_for(cursor, "张三", ("s1", "1" * 64), START)
        store.personal.put(cursor, "c1", subject, {"customer": "张三"})
    with store.audit.snapshot() as streams:
        (case_row,) = list(streams.cases)
        (event_row,) = list(streams.events)
        (deadline_row,) = list(streams.deadlines)
    assert dict(zip(CASE_FIELDS, case_row, strict=True)) == {
        **case, "received_at": iso(START), "opened_at": iso(START), "last_event_at": iso(START),
        "channel": "phone", "category": "service_delayed",
    }  # fmt: skip
    assert dict(zip(EVENT_FIELDS, event_row, strict=True)) == {
        **event, "occurred_at": iso(START), "recorded_at": iso(START),
    }  # fmt: skip
    assert deadline_row == ("c1", "first_response", 1, 0, iso(START + H))
    with store.audit.export_rows(since=iso(START), until=iso(START + H)) as rows:
        (exported,) = list(rows)
    assert exported[: len(EVENT_FIELDS)] == event_row
    assert exported[len(EVENT_FIELDS) : -1] == ("complaint", 1, 2)
    assert json.loads(exported[-1]) == {"customer": "张三"}
    with store.audit.export_rows(since=iso(START + H)) as rows:
        assert list(rows) == []
    with store.audit.case_heads(START - H) as heads:
        assert (list(heads), heads.events) == ([], 0)
