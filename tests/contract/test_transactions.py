"""The port's contract: transactions (a host's too), what a failed write raises, a
database that refuses writes, wake-ups across processes and what the server says of
itself."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from casework.storage.database import after_commit
from casework.storage.errors import StorageError, WriteConflict
from casework.storage.port import Store
from casework.storage.records import TokenRecord, WebhookRecord
from tests.contract.conftest import Backing
from tests.contract.rows import H, case_rows, next_event, opened
from tests.support import START, wait_until


@pytest.mark.covers("transaction", "unjoinable", "attachments.put")
def test_a_hosts_transaction_is_joined_or_refused_with_a_reason(backing: Backing) -> None:
    store = backing.open()
    host = backing.host_engine()
    with host.connect() as conn:
        assert store.unjoinable(conn)  # no transaction begun on it
        conn.begin()
        reason = store.unjoinable(conn)
        if reason is not None:  # a store that joins no host's transaction says so
            with pytest.raises(StorageError), store.transaction(conn) as cursor:
                store.cases.insert(cursor, *case_rows("c1"))
            with pytest.raises(StorageError):
                store.attachments.put("d" * 64, b"evidence", START, connection=conn)
            assert store.cases.get("c1") is None
            return
        with store.transaction(conn) as cursor:
            store.cases.insert(cursor, *case_rows("c1"))
        assert store.attachments.put("d" * 64, b"evidence", START, connection=conn) is True
        conn.rollback()
        assert store.cases.get("c1") is None
        assert store.attachments.get("d" * 64) is None
        conn.begin()
        with store.transaction(conn) as cursor:
            store.cases.insert(cursor, *case_rows("c2"))

        def open_two() -> None:
            with store.transaction(conn) as cursor:
                store.cases.insert(cursor, *case_rows("c3"))
                store.cases.insert(cursor, *case_rows("c2"))  # taken: this call's work undone

        with pytest.raises(WriteConflict):
            open_two()
        conn.commit()
    assert [c.id for c in store.cases.matching()] == ["c2"]


@pytest.mark.covers("grouped")
def test_writes_that_join_a_group_commit_together_or_not_at_all(backing: Backing) -> None:
    store = backing.open()
    told: list[str] = []
    with store.grouped() as conn:
        if conn is None:  # a store that cannot group: each call commits alone
            opened(store, "c1")
            assert store.cases.get("c1") is not None
            return
        for case_id in ("c1", "c2"):
            with store.transaction(conn) as cursor:
                store.cases.insert(cursor, *case_rows(case_id))

        def open_two() -> None:
            with store.transaction(conn) as cursor:
                store.cases.insert(cursor, *case_rows("c3"))
                store.cases.insert(cursor, *case_rows("c1"))  # taken: only this call undone

        with pytest.raises(WriteConflict):
            open_two()
        after_commit(conn, lambda: told.append("committed"))
        assert told == []
    assert told == ["committed"]
    assert [c.id for c in store.cases.matching()] == ["c1", "c2"]

    def fail_a_group() -> None:
        with store.grouped() as conn:
            assert conn is not None
            with store.transaction(conn) as cursor:
                store.cases.insert(cursor, *case_rows("c4"))
            after_commit(conn, lambda: told.append("rolled back"))
            raise RuntimeError("the group fails")

    with pytest.raises(RuntimeError):
        fail_a_group()
    assert told == ["committed"]
    assert store.cases.get("c4") is None
    assert backing.checked_out() == 0


@pytest.mark.covers("transaction")
def test_the_check_after_each_test_sees_a_transaction_left_open(backing: Backing) -> None:
    store = backing.open()
    with store.transaction():
        assert backing.checked_out() == 1  # what the check after each test holds to 0
    assert backing.checked_out() == 0


@pytest.mark.covers("close")
def test_closing_leaves_no_connection_checked_out(backing: Backing) -> None:
    store = backing.open()
    opened(store, "c1")
    assert store.cases.get("c1") is not None
    store.close()
    assert backing.checked_out() == 0


@pytest.mark.covers("cases.append", "deadlines.plan", "personal.put", "personal.subject_for")
def test_rows_naming_a_missing_case_are_write_conflicts(store: Store) -> None:
    opened(store, "c1")
    row, update = next_event(store, "c1", "apologise", "apologised", START + H)
    ghost = {**row, "case_id": "ghost"}
    with pytest.raises(WriteConflict), store.transaction() as cursor:
        store.cases.append(cursor, ghost, update, expected=1)
    with pytest.raises(WriteConflict), store.transaction() as cursor:
        store.deadlines.plan(cursor, "ghost", ("first_response", 1, 0), START)

    def keep_for_ghost() -> None:
        with store.transaction() as cursor:
            subject, _ = store.personal.subject_for(cursor, "张三", ("s1", "k" * 64), START)
            store.personal.put(cursor, "ghost", subject, {"customer": "张三"})

    with pytest.raises(WriteConflict):
        keep_for_ghost()
    assert store.deadlines.pending_count() == 0
    assert store.cases.with_events("ghost") == (None, [])
    case, events = store.cases.with_events("c1")
    assert case is not None
    assert (case.version, len(events)) == (1, 1)


@pytest.mark.covers("deadlines.plan_many")
def test_a_long_transaction_writes_every_row_or_stops_at_a_bad_one(store: Store) -> None:
    """Hundreds of statements in one transaction, as in a worker's batch (on PostgreSQL
    read back every so many): all of them are written, or, with a bad row among them,
    none, and the transaction goes no further than the call that sent it."""
    opened(store, "c1")
    pending = store.deadlines.pending_count()
    rows = [("c1", ("first_response", 1, level), START + H) for level in range(1, 251)]
    went_on = []

    def with_a_ghost() -> None:
        with store.transaction() as tx:
            store.deadlines.plan_many(tx, [*rows[:5], ("ghost", ("first_response", 1, 0), START)])
            store.deadlines.plan_many(tx, rows)
            went_on.append(True)

    with pytest.raises(WriteConflict):
        with_a_ghost()
    assert not went_on
    assert store.deadlines.pending_count() == pending
    with store.transaction() as tx:
        store.deadlines.plan_many(tx, rows)
        store.deadlines.plan_many(tx, rows[:150])
    assert store.deadlines.pending_count() == pending + 250


@pytest.mark.covers("cases.append")
def test_an_event_at_a_taken_place_is_a_write_conflict(store: Store) -> None:
    opened(store, "c1")
    row, update = next_event(store, "c1", "apologise", "apologised", START + H)
    with store.transaction() as cursor:
        assert store.cases.append(cursor, row, update, expected=1)
    with pytest.raises(WriteConflict), store.transaction() as cursor:
        store.cases.append(cursor, row, {**update, "version": 3}, expected=2)
    case, events = store.cases.with_events("c1")
    assert case is not None
    assert (case.version, [e.seq for e in events]) == (2, [1, 2])


@pytest.mark.covers("access.add_token", "webhooks.add", "access.add_session")
def test_a_taken_key_outside_a_transaction_is_a_write_conflict(store: Store) -> None:
    token = TokenRecord("ab12cd34", "li.na", "agent", None, START)
    store.access.add_token(token, "h" * 64)
    with pytest.raises(WriteConflict):
        store.access.add_token(TokenRecord("ab12cd34", "wang", "agent", None, START), "x" * 64)
    with pytest.raises(WriteConflict):
        store.access.add_token(TokenRecord("other", "wang", "agent", None, START), "h" * 64)
    hook = WebhookRecord("wh1", "https://example.com/hook", ("*",), "s" * 32, START)
    store.webhooks.add(hook)
    with pytest.raises(WriteConflict):
        store.webhooks.add(hook)
    store.access.add_session("k" * 64, "ab12cd34", "csrf", START, START + H)
    with pytest.raises(WriteConflict):
        store.access.add_session("k" * 64, "ab12cd34", "other", START, START + H)
    assert store.access.tokens() == [token]
    assert store.webhooks.subscriptions() == [hook]


@pytest.mark.covers(
    "transaction", "cases.insert", "access.add_token", "service.beat", "cases.get", "access.tokens"
)
def test_a_database_that_refuses_writes_says_so_and_still_reads(backing: Backing) -> None:
    writer = backing.open()
    opened(writer, "c1")
    reader = backing.open(read_only=True)
    with pytest.raises(StorageError) as refused, reader.transaction() as cursor:
        reader.cases.insert(cursor, *case_rows("c2"))
    assert refused.value.read_only
    with pytest.raises(StorageError) as refused:
        reader.access.add_token(TokenRecord("ab12cd34", "li.na", "agent", None, START), "h" * 64)
    assert refused.value.read_only
    with pytest.raises(StorageError) as refused:
        reader.service.beat("worker-1", START, START)
    assert refused.value.read_only
    case = reader.cases.get("c1")
    assert case is not None
    assert case.received_at == START
    assert reader.access.tokens() == []
    assert writer.cases.get("c2") is None


@pytest.mark.covers("deadlines.announce", "deadlines.listen")
def test_an_announced_deadline_is_heard_where_the_store_can_tell(store: Store) -> None:
    heard: list[datetime] = []
    failures: list[Exception] = []
    listener = store.deadlines.listen(heard.append, failures.append)
    try:
        if listener is not None:
            wait_until(listener.listening.is_set, what="the listener listens")
        with store.transaction() as cursor:
            store.deadlines.announce(cursor, START + H)
        if listener is not None:
            wait_until(lambda: heard, what="the announcement is heard")
            assert heard == [START + H]
            assert heard[0].tzinfo is not None
    finally:
        if listener is not None:
            listener.stop()
    assert failures == []


@pytest.mark.covers("server_time", "audit.replication")
def test_the_server_tells_its_clock_and_replication_if_it_has_any(store: Store) -> None:
    now = store.server_time()
    if now is not None:
        assert now.utcoffset() is not None
        assert now.astimezone(UTC) > START
    state = store.audit.replication()
    if state is not None:
        assert state["role"] in ("primary", "standby")
