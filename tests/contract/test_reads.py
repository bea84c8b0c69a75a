"""The port's contract: finding cases as people ask for them, several cases and their
events read or moved together, a deadline cancelled."""

from __future__ import annotations

import pytest

from casework.storage.port import Store
from casework.storage.records import CaseQuery
from tests.contract.rows import H, case_rows, moved, next_event, opened
from tests.support import START

MINE, OTHER = "a1b2c3d4e5f6", "a1b2ffff0000"


@pytest.mark.covers("cases.find")
def test_a_case_is_found_by_customer_phone_id_prefix_serial_or_order(store: Store) -> None:
    with store.transaction() as cursor:
        store.cases.insert(cursor, *case_rows(MINE, START))
        store.cases.insert(cursor, *case_rows(OTHER, START + H, branch="广州天河店",
                                             attributes={"serial_number": "SN-42"}))  # fmt: skip
        store.cases.insert(cursor, *case_rows("b0000000000c", START + 2 * H,
                                             attributes={"order_number": "PO-7"}))  # fmt: skip
        subject, _ = store.personal.subject_for(cursor, "张三", ("s1", "1" * 64), START)
        store.personal.put(cursor, MINE, subject, {"customer": "张三",
                                                   "contact": "+86 138-0013-8000"})  # fmt: skip

    def found(asked: str, limit: int = 10, branches: list[str] | None = None) -> list[str]:
        return [c.id for c in store.cases.find(asked, limit, branches)]

    assert found("张三") == [MINE]
    assert found("张") == []  # a customer is named whole
    assert found("13800138000") == [MINE]  # digits within the contact's
    assert found("+86 138-0013-8000") == [MINE]
    assert found("a1b2") == [OTHER, MINE]  # the latest received first
    assert found("A1B2C3") == [MINE]
    assert found("a1b") == []  # too short a prefix
    assert found("a1b2", limit=1) == [OTHER]
    assert found("a1b2", branches=["东莞长安店"]) == [MINE]
    assert found("a1b2", branches=[]) == []
    assert found("SN-42") == [OTHER]
    assert found("SN-4") == []
    assert found(" PO-7 ") == ["b0000000000c"]
    assert found("   ") == []


@pytest.mark.covers("cases.ids_starting")
def test_ids_starting_take_the_prefix_literally_in_order(store: Store) -> None:
    opened(store, "ab%2", "ab_1", "abc1", "abd1")
    with store.transaction() as cursor:
        store.cases.insert(cursor, *case_rows("abe1", branch="广州天河店"))
    assert store.cases.ids_starting("ab", 10) == ["ab%2", "ab_1", "abc1", "abd1", "abe1"]
    assert store.cases.ids_starting("ab_", 10) == ["ab_1"]
    assert store.cases.ids_starting("ab%", 10) == ["ab%2"]
    assert store.cases.ids_starting("ab", 2) == ["ab%2", "ab_1"]
    assert store.cases.ids_starting("ab", 10, branch="广州天河店") == ["abe1"]
    assert store.cases.ids_starting("zz", 10) == []


@pytest.mark.covers("cases.events_and_cases", "cases.load_many", "cases.append_many")
def test_several_cases_are_read_locked_and_moved_together(store: Store) -> None:
    opened(store, "c1", "c2", "c3")
    first, first_update = next_event(store, "c1", "apologise", "apologised", START + H)
    second, second_update = next_event(store, "c2", "withdraw", "withdrawn", START + H)
    with store.transaction() as cursor:
        locked = store.cases.load_many(cursor, ["c2", "c1", "ghost"])
        assert sorted(locked) == ["c1", "c2"]
        assert locked["c1"].version == 1
        assert store.cases.load_many(cursor, []) == {}
        store.cases.append_many(cursor, [first, second], [(first_update, 1), (second_update, 1)])
        store.cases.append_many(cursor, [], [])
    events, cases = store.cases.events_and_cases(["c1", "c3", "ghost"], ["c2", "ghost"])
    assert {k: [e.event for e in v] for k, v in events.items()} == {
        "c1": ["open", "apologise"],
        "c3": ["open"],
        "ghost": [],
    }
    assert list(cases) == ["c2"]
    assert (cases["c2"].state, cases["c2"].version) == ("withdrawn", 2)
    assert store.cases.events_and_cases([], []) == ({}, {})


@pytest.mark.covers("deadlines.cancel", "deadlines.plan", "cases.by_due")
def test_a_cancelled_deadline_no_longer_orders_its_case(store: Store) -> None:
    opened(store, "c1", "c2")
    key = ("first_response", 1, 0)
    with store.transaction() as cursor:
        store.deadlines.plan(cursor, "c1", key, START + 5 * H)
        store.deadlines.plan(cursor, "c2", key, START + 9 * H)
        store.deadlines.cancel(cursor, "c1", key)
        store.deadlines.cancel(cursor, "c1", ("resolution", 1, 0))  # none such: nothing happens
    assert [(c.id, due) for c, due in store.cases.by_due(CaseQuery(), 10)] == [
        ("c2", START + 9 * H),
        ("c1", None),
    ]
    with store.transaction() as cursor:
        store.deadlines.plan(cursor, "c1", key, START + 2 * H)  # a cancelled one is planned again
    assert store.deadlines.next_due() == START + 2 * H


@pytest.mark.covers("cases.with_events", "cases.append")
def test_events_are_read_back_with_their_data_and_times_in_utc(store: Store) -> None:
    opened(store, "c1")
    moved(store, "c1", "note", "received", START + H, {"text": "客户来电", "n": [1, 2]})
    _, events = store.cases.with_events("c1")
    assert [e.data for e in events] == [{}, {"text": "客户来电", "n": [1, 2]}]
    assert events[1].occurred_at == START + H
    assert all(e.recorded_at.utcoffset() is not None for e in events)
    assert events[1].prev_hash == events[0].hash
