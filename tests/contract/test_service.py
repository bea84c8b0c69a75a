"""The port's contract: what serving needs beside cases: webhook subscriptions, console
sessions, answers held while a request runs, worker heartbeats and the figures
``/metrics`` reads."""

from __future__ import annotations

import pytest

from casework.storage.port import Store
from casework.storage.records import Heartbeat, Remembered, TokenRecord, WebhookRecord
from tests.contract.rows import H, opened, outbox_mail
from tests.support import START


@pytest.mark.covers("webhooks.add", "webhooks.subscriptions", "webhooks.remove", "webhooks.targets")
def test_webhooks_are_listed_oldest_first_and_removed_once(store: Store) -> None:
    later = WebhookRecord("wh1", "https://a.example/hook", ("case.opened",), "s" * 32,
                          START + H, branch="东莞长安店")  # fmt: skip
    first = WebhookRecord("wh2", "https://b.example/hook", ("*",), "t" * 32, START)
    store.webhooks.add(later)
    store.webhooks.add(first)
    assert store.webhooks.subscriptions() == [first, later]
    with store.transaction() as cursor:
        assert store.webhooks.targets(cursor) == [
            ("wh1", "https://a.example/hook", ("case.opened",), "东莞长安店"),
            ("wh2", "https://b.example/hook", ("*",), None),
        ]
    removed = store.webhooks.remove("wh2", START + 2 * H)
    assert removed is not None
    assert removed.removed_at == START + 2 * H
    again = store.webhooks.remove("wh2", START + 3 * H)
    assert again is not None
    assert again.removed_at == START + 2 * H
    assert store.webhooks.remove("missing", START) is None
    assert store.webhooks.subscriptions() == [later]
    assert store.webhooks.subscriptions(removed=True) == [removed, later]
    with store.transaction() as cursor:
        assert [target[0] for target in store.webhooks.targets(cursor)] == ["wh1"]


@pytest.mark.covers("access.add_session", "access.session", "access.drop_session")
def test_a_session_speaks_for_its_token_until_dropped_or_expired(store: Store) -> None:
    token = TokenRecord("ab12cd34", "li.na", "agent", "东莞长安店", START)
    store.access.add_token(token, "h" * 64)
    store.access.add_session("a" * 64, "ab12cd34", "csrf-a", START, START + H)
    store.access.add_session("b" * 64, "ab12cd34", "csrf-b", START, START + 8 * H)
    store.access.add_session("c" * 64, "ab12cd34", "csrf-c", START, START + 8 * H)
    store.access.add_session("d" * 64, "no-such-token", "csrf-d", START, START + 8 * H)
    found = store.access.session("a" * 64)
    assert found is not None
    assert (found.token, found.csrf, found.expires_at) == (token, "csrf-a", START + H)
    assert store.access.session("d" * 64) is None  # no token behind it
    assert store.access.session("x" * 64) is None
    store.access.drop_session("b" * 64, START + 2 * H)  # and those ended before then
    assert store.access.session("a" * 64) is None
    assert store.access.session("b" * 64) is None
    assert store.access.session("c" * 64) is not None


@pytest.mark.covers(
    "access.remember", "access.take_over", "access.settle", "access.forget", "access.recall"
)
def test_a_held_key_is_taken_over_settled_and_forgotten(store: Store) -> None:
    placeholder = Remembered("r" * 64, 0, {}, None, START)
    assert store.access.remember("ab12cd34", "key-1", placeholder)
    assert store.access.take_over("ab12cd34", "key-1", START, START + H) is True
    assert store.access.take_over("ab12cd34", "key-1", START, START + 2 * H) is False  # taken first
    assert store.access.take_over("ab12cd34", "missing", START, START + H) is False
    stale = Remembered("r" * 64, 201, {"id": "old"}, "/v1/cases/old", START)
    store.access.settle("ab12cd34", "key-1", stale)  # the request that lost the key: no effect
    assert store.access.recall("ab12cd34", "key-1") == Remembered("r" * 64, 0, {}, None, START + H)
    final = Remembered("r" * 64, 201, {"id": "c1", "名": "张三"}, "/v1/cases/c1", START + H)
    store.access.settle("ab12cd34", "key-1", final)
    assert store.access.recall("ab12cd34", "key-1") == final
    assert store.access.take_over("ab12cd34", "key-1", START + H, START + 2 * H) is False  # settled
    store.access.forget("ab12cd34", "key-1")
    store.access.forget("ab12cd34", "never-kept")
    assert store.access.recall("ab12cd34", "key-1") is None


@pytest.mark.covers("service.beat", "service.latest_beat")
def test_the_latest_beat_is_the_freshest_of_any_worker(store: Store) -> None:
    assert store.service.latest_beat() is None
    store.service.beat("w1", START, START)
    store.service.beat("w2", START + H, START + H)
    assert store.service.latest_beat() == Heartbeat("w2", START + H, START + H)
    store.service.beat("w1", START + 5 * H, START + 2 * H)  # started when it first beat
    assert store.service.latest_beat() == Heartbeat("w1", START, START + 2 * H)


@pytest.mark.covers("service.figures")
def test_figures_count_deadlines_mails_and_how_late_deadlines_fired(store: Store) -> None:
    empty = store.service.figures(START, [1.0])
    assert (empty.deadlines_pending, empty.deadlines_overdue, dict(empty.outbox)) == (0, 0, {})
    assert (empty.oldest_pending_mail, empty.fire_lag_count, empty.fire_lag_sum) == (None, 0, 0)
    assert list(empty.fire_lag_buckets) == [(1.0, 0)]
    opened(store, "c1")
    with store.transaction() as cursor:
        due = [("a", START), ("b", START + H), ("c", START + 9 * H)]
        store.deadlines.plan_many(cursor, [("c1", (clock, 1, 0), at) for clock, at in due])
    with store.transaction() as cursor:  # fired 2 hours and 1 hour late
        assert len(store.deadlines.claim(cursor, START + 2 * H, 10)) == 2
    with store.transaction() as cursor:
        store.deadlines.plan_many(cursor, [("c1", ("d", 1, 0), START + 3 * H)])
        store.outbox.queue(cursor, [
            outbox_mail("m1", None, created_at=START + H),
            outbox_mail("m2", None, created_at=START, kind="webhook"),
            outbox_mail("m3", None, created_at=START + 2 * H),
        ])  # fmt: skip
    figures = store.service.figures(START + 4 * H, [3000.0, 5000.0, 8000.0])
    assert (figures.deadlines_pending, figures.deadlines_overdue) == (2, 1)
    assert dict(figures.outbox) == {("escalation", "pending"): 2, ("webhook", "pending"): 1}
    assert figures.oldest_pending_mail == START + H  # webhooks aside
    assert list(figures.fire_lag_buckets) == [(3000.0, 0), (5000.0, 1), (8000.0, 2)]
    assert figures.fire_lag_count == 2
    assert figures.fire_lag_sum == pytest.approx(3 * 3600.0)
