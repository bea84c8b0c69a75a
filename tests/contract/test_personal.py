"""The port's contract: personal values apart from the history, each customer's secret,
erasure and what it leaves behind."""

from __future__ import annotations

import pytest

from casework.storage.errors import WriteConflict
from casework.storage.port import Store
from casework.storage.records import Remembered
from tests.contract.rows import H, case_rows, opened, outbox_mail
from tests.support import START

ZHANG, LI = "张三", "李四"
PHONE = "+86 138-0013-8000"
SECRET_1, SECRET_2 = "1" * 64, "2" * 64


def _kept(store: Store, case_id: str, customer: str, new: tuple[str, str], **values: str) -> str:
    """Keep the case's personal values under the customer's subject; the subject's id."""
    with store.transaction() as cursor:
        subject, _ = store.personal.subject_for(cursor, customer, new, START)
        store.personal.put(cursor, case_id, subject, {"customer": customer, **values})
    return subject


@pytest.mark.covers(
    "personal.subject_for", "personal.put", "personal.subjects_named", "personal.values_of"
)
def test_a_customer_keeps_one_subject_and_their_values_by_case(store: Store) -> None:
    opened(store, "c1", "c2", "c3", event_format=2)
    with store.transaction() as cursor:  # no values kept yet: a new subject is stored
        assert store.personal.subject_for(cursor, ZHANG, ("s1", SECRET_1), START) == (
            "s1",
            SECRET_1,
        )
        store.personal.put(cursor, "c1", "s1", {"customer": ZHANG, "contact": PHONE})
    with store.transaction() as cursor:
        assert store.personal.subject_for(cursor, ZHANG, ("s9", "9" * 64), START + H) == (
            "s1",
            SECRET_1,
        )
    _kept(store, "c2", ZHANG, ("s9", "9" * 64))
    _kept(store, "c3", LI, ("s2", SECRET_2))
    with store.transaction() as cursor:
        assert store.personal.subjects_named(cursor, ZHANG) == ["s1"]
        assert store.personal.subjects_named(cursor, "王五") == []
        assert store.personal.values_of(cursor, ["s1"]) == {
            "c1": {"contact": PHONE, "customer": ZHANG},
            "c2": {"customer": ZHANG},
        }
        assert store.personal.values_of(cursor, ["s1", "s2"])["c3"] == {"customer": LI}
        assert store.personal.values_of(cursor, []) == {}


@pytest.mark.covers("personal.put")
def test_a_field_kept_twice_for_a_case_is_a_write_conflict(store: Store) -> None:
    opened(store, "c1")
    _kept(store, "c1", ZHANG, ("s1", SECRET_1))

    def keep_twice() -> None:
        with store.transaction() as cursor:
            store.personal.put(cursor, "c1", "s1", {"contact": PHONE})
            store.personal.put(cursor, "c1", "s1", {"customer": LI})

    with pytest.raises(WriteConflict):
        keep_twice()
    with store.transaction() as cursor:
        assert store.personal.values_of(cursor, ["s1"]) == {"c1": {"customer": ZHANG}}
    with pytest.raises(WriteConflict), store.transaction() as cursor:
        store.personal.put(cursor, "c1", "nobody", {"contact": PHONE})


@pytest.mark.covers(
    "personal.erase", "personal.compaction_pending", "personal.expunge", "personal.values_of"
)
def test_an_erasure_deletes_the_values_and_overwrites_their_copies(store: Store) -> None:
    opened(store, "c1", "c2", event_format=2)
    _kept(store, "c1", ZHANG, ("s1", SECRET_1), contact=PHONE)
    _kept(store, "c2", LI, ("s2", SECRET_2))
    body = {"case_id": "c1", "customer": ZHANG, "note": f"{ZHANG}的投诉", "to": [PHONE]}
    with store.transaction() as cursor:
        store.outbox.queue(cursor, [
            outbox_mail("escalation", None, body=body, recipients=[PHONE, "店长@example.com"]),
            outbox_mail("to-customer", None, kind="notify"),
            outbox_mail("other-case", None, case_id="c2", body={"customer": ZHANG}),
        ])  # fmt: skip
    kept = {"mine": {"id": "c1", "customer": ZHANG}, "theirs": {"id": "c2", "customer": ZHANG}}
    store.access.remember("ab12cd34", "key-1", Remembered("r" * 64, 201, kept, None, START))
    assert store.personal.compaction_pending() is None
    with store.transaction() as cursor:
        store.personal.erase(cursor, ["s1"], ["c1"], [ZHANG, PHONE], START + H)
    with store.transaction() as cursor:
        assert store.personal.subjects_named(cursor, ZHANG) == []
        assert store.personal.values_of(cursor, ["s1", "s2"]) == {"c2": {"customer": LI}}
    mails = {m.dedupe_key: m for m in store.outbox.rows(kind=None)}
    assert set(mails) == {"escalation", "other-case"}  # the customer's own message is gone
    assert mails["escalation"].body == {
        "case_id": "c1", "customer": "[erased]", "note": f"{ZHANG}的投诉", "to": ["[erased]"],
    }  # fmt: skip
    assert mails["escalation"].recipients == ("[erased]", "店长@example.com")
    assert mails["other-case"].body == {"customer": ZHANG}  # another case's row
    answer = store.access.recall("ab12cd34", "key-1")
    assert answer is not None
    assert answer.body == {"mine": {"id": "c1", "customer": "[erased]"}, "theirs": kept["theirs"]}
    assert store.personal.compaction_pending() == START + H
    done = store.personal.expunge()
    if done.startswith("compaction pending"):  # a reader elsewhere held the files
        assert store.personal.compaction_pending() == START + H
    else:
        assert store.personal.compaction_pending() is None


@pytest.mark.covers("personal.erase", "personal.compaction_pending")
def test_erasing_no_one_changes_nothing(store: Store) -> None:
    opened(store, "c1")
    _kept(store, "c1", ZHANG, ("s1", SECRET_1))
    with store.transaction() as cursor:
        store.personal.erase(cursor, [], ["c1"], [ZHANG], START)
        assert store.personal.values_of(cursor, ["s1"]) == {"c1": {"customer": ZHANG}}
    assert store.personal.compaction_pending() is None


@pytest.mark.covers("personal.rows")
def test_personal_rows_pair_each_format_2_case_with_its_kept_values(store: Store) -> None:
    with store.transaction() as cursor:
        case, event = case_rows("c1", data={"customer": "hmac:ab"}, event_format=2,
                                customer=ZHANG, attributes={"serial_number": "SN-1"})  # fmt: skip
        store.cases.insert(cursor, case, event)
        store.cases.insert(cursor, *case_rows("old"))  # format 1: read as it is
    _kept(store, "c1", ZHANG, ("s1", SECRET_1), contact=PHONE)
    cases, values = store.personal.rows(None)
    assert cases == [("c1", ZHANG, None, {"serial_number": "SN-1"}, {}, {"customer": "hmac:ab"})]
    assert values == {"c1": {"customer": (ZHANG, SECRET_1), "contact": (PHONE, SECRET_1)}}
    assert store.personal.rows("c1") == (cases, values)
    assert store.personal.rows("old") == ([], {})


@pytest.mark.covers("personal.resting_customers")
def test_resting_customers_are_those_whose_cases_all_rest(store: Store) -> None:
    with store.transaction() as cursor:
        for case_id, customer, state, event_format in (
            ("c1", "A", "closed", 2), ("c2", "A", "withdrawn", 2), ("c3", "B", "closed", 2),
            ("c4", "B", "received", 2), ("c5", "C", "closed", 1), ("c6", "[erased]", "closed", 2),
        ):  # fmt: skip
            store.cases.insert(cursor, *case_rows(case_id, customer=customer, state=state,
                                                 event_format=event_format))  # fmt: skip
    assert store.personal.resting_customers(["closed", "withdrawn"], START + H) == ["A"]
    assert store.personal.resting_customers(["closed", "withdrawn"], START) == []
    assert store.personal.resting_customers([], START + H) == []
