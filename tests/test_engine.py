"""The engine on both databases: opening, firing, reading, replaying."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casework.workflow import (
    CaseNotFound,
    ConcurrentUpdate,
    Engine,
    EventNotAllowed,
    FixedClock,
    GuardFailed,
    InvalidInput,
    NaiveDatetime,
    TimeOutOfOrder,
    UnknownChoice,
    UnknownEvent,
    UnknownMachine,
)
from tests.support import START, open_sample, snapshot


def test_a_complaint_walks_the_six_steps(engine: Engine, clock: FixedClock) -> None:
    """Open, apologise, confirm, resolve, follow up: each step stored, chained and replayable."""
    case_id = open_sample(engine)
    steps: list[tuple[str, dict[str, Any], str]] = [
        ("apologise", {}, "apologised"),
        ("confirm_needs", {}, "needs_confirmed"),
        ("resolve", {"solution": "visit tomorrow"}, "resolved"),
        ("follow_up", {"satisfaction": 2}, "followed_up"),
        ("reopen", {}, "needs_confirmed"),
    ]
    for event, data, state in steps:
        clock.advance(timedelta(hours=1))
        case = engine.fire(case_id, event, actor="li.na", data=data)
        assert case.state == state
        assert engine.get(case_id) == case
    history = engine.history(case_id)
    assert [e.event for e in history] == ["open", *(s[0] for s in steps)]
    assert [e.seq for e in history] == [1, 2, 3, 4, 5, 6]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(history))
    assert engine.get(case_id).facts == {"satisfaction": 2}
    assert engine.replay(case_id).state == "needs_confirmed"
    assert engine.verify().ok


def test_open_stores_the_case_as_given(engine: Engine, clock: FixedClock) -> None:
    """Every fixed column and declared attribute lands on the case; the actor owns it."""
    received = START - timedelta(days=2)
    case = engine.open_case(
        customer="CUST-9",
        channel="letter",
        category="product_quality",
        summary="Broken\nagain",
        actor="zhang.san",
        branch="Shenzhen",
        priority="high",
        received_at=received,
        attributes={"product": "phone", "purchase_date": "2026-10-01"},
    )
    stored = engine.get(case.id)
    assert stored == case
    assert (stored.owner, stored.channel, stored.priority) == ("zhang.san", "letter", "high")
    assert stored.received_at == received
    assert stored.received_at.tzinfo is not None
    assert stored.opened_at == START
    assert stored.attributes == {"product": "phone", "purchase_date": "2026-10-01"}
    assert stored.machine == "complaint"
    assert stored.machine_version == 2  # the newest version of the standard machine


def test_assign_hands_the_case_over_and_records_it(engine: Engine) -> None:
    """Ownership hand-overs change the owner and stand in the history."""
    case_id = open_sample(engine)
    case = engine.fire(case_id, "assign", actor="li.na", data={"to": "wang.wei"})
    assert case.owner == "wang.wei"
    assert case.state == "received"
    last = engine.history(case_id)[-1]
    assert (last.event, last.actor, last.data["to"]) == ("assign", "li.na", "wang.wei")


def test_fire_returns_the_case_as_stored(engine: Engine, clock: FixedClock) -> None:
    """The case each fire returns is the one read back after it, its clocks and pending
    deadlines included: events that keep the state, move the clocks, wait, and a change
    of state that ends the wait (two events in one call)."""
    case_id = open_sample(engine)
    for event, data in [("contact", {"kind": "call"}), ("contact", {"kind": "call"}),
                        ("wait", {"reason": "customer"}), ("apologise", {}),
                        ("confirm_needs", {})]:  # fmt: skip
        clock.advance(timedelta(minutes=30))
        case = engine.fire(case_id, event, actor="li.na", data=data)
        assert case == engine.get(case_id)
        assert case.deadlines == tuple(case.sla["pending"])
    assert [e.event for e in engine.history(case_id)][-3:] == [
        "resume",
        "apologise",
        "confirm_needs",
    ]


def test_expected_version_protects_against_a_lost_update(engine: Engine) -> None:
    """A stale expected version is refused with the current one."""
    case_id = open_sample(engine)
    engine.fire(case_id, "apologise", actor="li.na", expected_version=1)
    before = snapshot(engine)
    with pytest.raises(ConcurrentUpdate) as caught:
        engine.fire(case_id, "note", actor="li.na", note="x", expected_version=1)
    assert caught.value.actual_version == 2
    assert snapshot(engine) == before


def test_replay_at_an_instant(engine: Engine, clock: FixedClock) -> None:
    """Replay rebuilds the state as it stood at any instant of the history."""
    case_id = open_sample(engine)
    t1 = clock.advance(timedelta(hours=3))
    engine.fire(case_id, "apologise", actor="li.na")
    t2 = clock.advance(timedelta(hours=3))
    engine.fire(case_id, "confirm_needs", actor="li.na")
    assert engine.replay(case_id, START).state == "received"
    assert engine.replay(case_id, t1 - timedelta(seconds=1)).state == "received"
    assert engine.replay(case_id, t1).state == "apologised"
    replay = engine.replay(case_id, t2 + timedelta(days=1))
    assert (replay.state, replay.version) == ("needs_confirmed", 3)
    with pytest.raises(TimeOutOfOrder, match="not yet received"):
        engine.replay(case_id, START - timedelta(seconds=1))


def test_back_filled_events_keep_their_time(engine: Engine, clock: FixedClock) -> None:
    """``at`` may lie in the past (not before the previous event) and is kept as given."""
    case_id = open_sample(engine, received_at=START - timedelta(days=1))
    at = START - timedelta(hours=20)
    engine.fire(case_id, "apologise", actor="li.na", at=at)
    last = engine.history(case_id)[-1]
    assert last.occurred_at == at
    assert last.recorded_at == START


def test_list_filters_by_state(engine: Engine) -> None:
    """``list`` returns cases oldest received first, optionally of one state."""
    first = open_sample(engine, received_at=START - timedelta(hours=2))
    second = open_sample(engine)
    engine.fire(second, "apologise", actor="li.na")
    assert [c.id for c in engine.list()] == [first, second]
    assert [c.id for c in engine.list(state="apologised")] == [second]
    assert [c.id for c in engine.list(limit=1)] == [first]


NAIVE = datetime(2026, 11, 23, 1, 0)  # noqa: DTZ001 - the point of the test
Bad = Callable[[Engine, str], object]
BAD_INPUT: list[tuple[str, Bad, type[Exception], str]] = [
    ("unknown case", lambda e, c: e.fire("nope", "apologise", actor="a"), CaseNotFound, "no case"),
    (
        "event not allowed",
        lambda e, c: e.fire(c, "resolve", actor="a", data={"solution": "x"}),
        EventNotAllowed,
        "allowed: apologise, withdraw, merge_into, link, note, contact, assign, route",
    ),
    ("unknown event", lambda e, c: e.fire(c, "explode", actor="a"), UnknownEvent, "'explode'"),
    (
        "guard fails",
        lambda e, c: e.fire(c, "note", actor="a"),
        GuardFailed,
        "condition note_given failed",
    ),
    (
        "naive at",
        lambda e, c: e.fire(c, "apologise", actor="a", at=NAIVE),
        NaiveDatetime,
        "timezone-aware",
    ),
    (
        "naive received_at",
        lambda e, c: open_sample(e, received_at=NAIVE),
        NaiveDatetime,
        "timezone-aware",
    ),
    (
        "before the previous event",
        lambda e, c: e.fire(c, "apologise", actor="a", at=START - timedelta(seconds=1)),
        TimeOutOfOrder,
        "before the case's previous event",
    ),
    (
        "in the future",
        lambda e, c: e.fire(c, "apologise", actor="a", at=START + timedelta(hours=1)),
        TimeOutOfOrder,
        "in the future",
    ),
    (
        "received in the future",
        lambda e, c: open_sample(e, received_at=START + timedelta(days=1)),
        TimeOutOfOrder,
        "in the future",
    ),
    (
        "unknown channel",
        lambda e, c: open_sample(e, channel="fax"),
        UnknownChoice,
        "valid channel values: store, phone, letter, web, regulator, media",
    ),
    (
        "unknown category",
        lambda e, c: open_sample(e, category="rude"),
        UnknownChoice,
        "valid category values: missed_appointment",
    ),
    ("unknown priority", lambda e, c: open_sample(e, priority="p0"), UnknownChoice, "priority"),
    ("unknown machine", lambda e, c: open_sample(e, machine="loan"), UnknownMachine, "loan"),
    ("unknown attribute", lambda e, c: open_sample(e, attributes={"x": "1"}), InvalidInput, "'x'"),
    (
        "bad date attribute",
        lambda e, c: open_sample(e, attributes={"purchase_date": "yesterday"}),
        InvalidInput,
        "date",
    ),
    (
        "oversized note",
        lambda e, c: e.fire(c, "note", actor="a", note="x" * 4001),
        InvalidInput,
        "limit is 4000",
    ),
    (
        "oversized data",
        lambda e, c: e.fire(c, "contact", actor="a", data={"t": "x" * 20_000}),
        InvalidInput,
        "bytes as JSON",
    ),
    (
        "bad data key",
        lambda e, c: e.fire(c, "contact", actor="a", data={"a b": 1}),
        InvalidInput,
        "must be a name",
    ),
    (
        "non-JSON data",
        lambda e, c: e.fire(c, "contact", actor="a", data={"when": START}),
        InvalidInput,
        "datetime",
    ),
    (
        "NaN in data",
        lambda e, c: e.fire(c, "contact", actor="a", data={"n": float("nan")}),
        InvalidInput,
        "finite",
    ),
    (
        "stale expected version",
        lambda e, c: e.fire(c, "apologise", actor="a", expected_version=7),
        ConcurrentUpdate,
        "expected version 7, it is now at version 1",
    ),
    ("empty actor", lambda e, c: e.fire(c, "apologise", actor=" "), InvalidInput, "actor"),
    (
        "header injection in customer",
        lambda e, c: open_sample(e, customer="X\r\nBcc: evil@example.com"),
        InvalidInput,
        "control characters",
    ),
    ("empty summary", lambda e, c: open_sample(e, summary=""), InvalidInput, "summary"),
    ("lone surrogate", lambda e, c: open_sample(e, customer="C\ud800"), InvalidInput, "UTF-8"),
    (
        "integer beyond 64 bits",
        lambda e, c: e.fire(c, "contact", actor="a", data={"n": 10**30}),
        InvalidInput,
        "64 bits",
    ),
    (
        "a string for at",
        lambda e, c: e.fire(c, "apologise", actor="a", at="2026-11-23T09:00:00Z"),
        InvalidInput,
        "must be a datetime",
    ),
    (
        "a string for data",
        lambda e, c: e.fire(c, "contact", actor="a", data="to=x"),
        InvalidInput,
        "map of names",
    ),
    (
        "a number for a case id",
        lambda e, c: e.fire(12, "apologise", actor="a"),
        InvalidInput,
        "text",
    ),
    ("a list for a case id", lambda e, c: e.get(["x"]), InvalidInput, "text"),
    (
        "a case id with a quote",
        lambda e, c: open_sample(e, case_id="x'1"),
        InvalidInput,
        "must be 1 to 40 letters",
    ),
    (
        "a case id too long",
        lambda e, c: open_sample(e, case_id="c" * 41),
        InvalidInput,
        "must be 1 to 40 letters",
    ),
    (
        "a summary beyond the column",
        lambda e, c: open_sample(e, summary="x" * 5000),
        InvalidInput,
        "limit is 4000",
    ),
    (
        "an owner beyond the limit",
        lambda e, c: e.fire(c, "assign", actor="a", data={"to": "x" * 300}),
        InvalidInput,
        "limit is 100",
    ),
]


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [pytest.param(a, e, m, id=name) for name, a, e, m in BAD_INPUT],
)
def test_bad_input_is_refused_and_changes_nothing(
    engine: Engine, action: Bad, error: type[Exception], message: str
) -> None:
    """Each bad input raises its specific error with a helpful message; no row changes."""
    case_id = open_sample(engine)
    before = snapshot(engine)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        action(engine, case_id)
    assert snapshot(engine) == before


def test_an_unknown_case_is_not_found_everywhere(engine: Engine) -> None:
    """Every read of a missing case says so."""
    for read in (engine.get, engine.history, engine.replay, engine.verify):
        with pytest.raises(CaseNotFound, match="no case 'missing'"):
            read("missing")


def test_contact_details_never_reach_the_logs(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Log events reach the host's logging as key-value records bound to the case id
    (the event name as message, its keys as attributes), with no contact details."""
    with caplog.at_level(logging.DEBUG, logger="casework"):
        case_id = open_sample(engine, contact="+86 139 1234 5678", customer="Mr Secret")
        engine.fire(case_id, "apologise", actor="li.na")
    fired = [r for r in caplog.records if r.getMessage() == "event_fired"]
    assert [getattr(r, "case_id", None) for r in fired] == [case_id]
    everything = repr([vars(r) for r in caplog.records])
    assert "1234 5678" not in everything  # (4 digits alone may turn up in a hex id)
    assert "12345678" not in everything
    assert "Secret" not in everything


def test_engine_works_on_a_sqlalchemy_engine_of_the_host(db_url: str, clock: FixedClock) -> None:
    """A host that already has a SQLAlchemy engine passes it instead of a URL."""
    from casework.storage import make_engine

    host_db = make_engine(db_url)
    with Engine.open(host_db, clock=clock) as engine:
        case_id = open_sample(engine)
    with Engine.open(host_db, clock=clock) as again:
        assert again.get(case_id).state == "received"
    host_db.dispose()


def test_time_is_utc_whatever_the_offset_given(engine: Engine, clock: FixedClock) -> None:
    """An instant given in +08:00 is stored and returned as the same instant in UTC."""
    from zoneinfo import ZoneInfo

    shanghai = (START - timedelta(hours=1)).astimezone(ZoneInfo("Asia/Shanghai"))
    case = engine.get(open_sample(engine, received_at=shanghai))
    assert case.received_at == shanghai
    assert case.received_at.utcoffset() == timedelta(0)
    assert case.received_at.tzinfo == UTC


def test_configured_limits_cannot_exceed_the_columns() -> None:
    """A summary limit beyond what every database holds is refused where it is set."""
    from casework.workflow import ConfigError, Settings
    from casework.workflow.config import settings_from_mapping

    with pytest.raises(ConfigError, match="from 1 to 4,000"):
        settings_from_mapping({"limits": {"max_text_chars": 5000}}, "casework.toml")
    with pytest.raises(ConfigError, match="max_text_chars must be from 1 to 4000"):
        Settings(max_text_chars=5000)
