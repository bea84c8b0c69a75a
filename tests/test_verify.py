"""Verification: every way of tampering with the stored history is named exactly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, delete, insert, text, update

from casework.machines import COMPLAINT_V1
from casework.storage import canonical_event, chain_hash
from casework.storage.chain import PERSONAL_FORMAT
from casework.storage.tables import cases_table, events_table
from casework.workflow import Engine, EventNotAllowed, FixedClock, InvalidInput
from casework.workflow.audit.parallel_verify import SPLIT_EVENTS
from tests.support import open_sample

FULL = [
    ("apologise", {}),
    ("confirm_needs", {}),
    ("resolve", {"solution": "new part"}),
    ("follow_up", {"satisfaction": 4}),
]
UNHAPPY = [*FULL[:3], ("follow_up", {"satisfaction": 2}), ("reopen", {})]
"""A case followed up with a low score and reopened."""


def _full_case(engine: Engine, clock: FixedClock, events: list[Any] = FULL) -> str:
    case_id = open_sample(engine)
    for event, data in events:
        clock.advance(timedelta(hours=1))
        engine.fire(case_id, event, actor="li.na", data=data)
    return case_id


def _as_attacker(engine: Engine, change: Callable[[Connection], Any]) -> None:
    """Write to the database directly, past the append-only triggers, as an attacker can."""
    with engine.db.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS events_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS events_no_delete"))
        change(conn)


def _where(case_id: str, seq: int) -> Any:
    return (events_table.c.case_id == case_id) & (events_table.c.seq == seq)


def _edit(case_id: str) -> Callable[[Connection], Any]:
    return lambda c: c.execute(
        update(events_table).where(_where(case_id, 4)).values(data={"solution": "nothing"})
    )


def _delete_middle(case_id: str) -> Callable[[Connection], Any]:
    return lambda c: c.execute(delete(events_table).where(_where(case_id, 3)))


def _truncate(case_id: str) -> Callable[[Connection], Any]:
    return lambda c: c.execute(delete(events_table).where(_where(case_id, 5)))


def _reorder(case_id: str) -> Callable[[Connection], Any]:
    def change(conn: Connection) -> None:
        for old, new in ((2, 100), (3, 2), (100, 3)):
            conn.execute(update(events_table).where(_where(case_id, old)).values(seq=new))

    return change


def _insert_forged(case_id: str) -> Callable[[Connection], Any]:
    """Append a well-formed event with a correct hash, without touching the case row."""

    def change(conn: Connection) -> None:
        head = conn.execute(
            text("SELECT hash, occurred_at FROM events WHERE case_id = :c AND seq = 5"),
            {"c": case_id},
        ).one()
        last = conn.execute(events_table.select().where(_where(case_id, 5))).one()
        data = {"note": "forged"}
        digest = chain_hash(
            head.hash,
            canonical_event(
                case_id,
                6,
                "note",
                "followed_up",
                "followed_up",
                "x",
                last.occurred_at,
                last.recorded_at,
                data,
                PERSONAL_FORMAT,  # the case's own format: a forger who knows the scheme
            ),
        )
        conn.execute(
            insert(events_table).values(
                case_id=case_id,
                seq=6,
                event="note",
                from_state="followed_up",
                to_state="followed_up",
                actor="x",
                occurred_at=last.occurred_at,
                recorded_at=last.recorded_at,
                data=data,
                prev_hash=head.hash,
                hash=digest,
            )
        )

    return change


def _edit_row(case_id: str) -> Callable[[Connection], Any]:
    return lambda c: c.execute(
        update(cases_table).where(cases_table.c.id == case_id).values(state="resolved")
    )


def _edit_owner(case_id: str) -> Callable[[Connection], Any]:
    return lambda c: c.execute(
        update(cases_table).where(cases_table.c.id == case_id).values(customer="someone else")
    )


def _wipe(case_id: str) -> Callable[[Connection], Any]:
    return lambda c: c.execute(delete(events_table).where(events_table.c.case_id == case_id))


TAMPERING = [
    ("edited event", _edit, 4, "altered"),
    ("deleted event", _delete_middle, 3, "missing"),
    ("reordered events", _reorder, 2, "removed, inserted or reordered"),
    ("forged event appended", _insert_forged, 6, "behind the engine's back"),
    ("truncated tail", _truncate, 5, "tail of the history was removed"),
    ("edited case state", _edit_row, None, "state is 'resolved', replay gives 'followed_up'"),
    ("edited case column", _edit_owner, None, "customer is 'someone else'"),
    ("whole history deleted", _wipe, 1, "history is gone"),
]


@pytest.mark.parametrize(
    ("tamper", "seq", "reason"), [pytest.param(t, s, r, id=n) for n, t, s, r in TAMPERING]
)
def test_verify_names_the_case_and_event_where_history_breaks(
    engine: Engine,
    clock: FixedClock,
    tamper: Callable[[str], Callable[[Connection], Any]],
    seq: int | None,
    reason: str,
) -> None:
    """Direct edits to the database are found, and only on the tampered case."""
    victim = _full_case(engine, clock)
    bystander = _full_case(engine, clock)
    assert engine.verify().ok
    _as_attacker(engine, tamper(victim))
    report = engine.verify()
    assert not report.ok
    assert [(p.case_id, p.seq) for p in report.problems] == [(victim, seq)]
    assert reason in report.problems[0].reason
    assert engine.verify(bystander).ok


def test_the_database_refuses_to_change_events(engine: Engine) -> None:
    """The event table is append-only in the database itself, not only in our code."""
    case_id = open_sample(engine)
    for statement in (
        update(events_table).where(events_table.c.case_id == case_id).values(actor="x"),
        delete(events_table).where(events_table.c.case_id == case_id),
    ):
        with pytest.raises(Exception, match="append-only"), engine.db.begin() as conn:
            conn.execute(statement)
    assert engine.verify().ok


STEPS = st.lists(
    st.tuples(
        st.sampled_from(COMPLAINT_V1.events),
        st.sampled_from(
            [
                {},
                {"solution": "fix"},
                {"satisfaction": 1},
                {"satisfaction": 5},
                {"note": "n"},
                {"to": "wang.wei"},
                {"to": "li.na"},
            ]
        ),
        st.integers(0, 7200),
    ),
    max_size=25,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_random_histories_equal_their_replay(
    engine: Engine, clock: FixedClock, steps: list[tuple[str, dict[str, Any], int]]
) -> None:
    """Whatever sequence of events is fired, each case equals its replay and verifies."""
    case_id = open_sample(engine)
    accepted = 1
    for event, data, seconds in steps:
        clock.advance(timedelta(seconds=seconds))
        try:
            engine.fire(case_id, event, actor="li.na", data=data)
            accepted += 1
        except (EventNotAllowed, InvalidInput):
            pass
    case = engine.get(case_id)
    replay = engine.replay(case_id)
    assert (replay.state, replay.version, replay.owner) == (case.state, case.version, case.owner)
    assert dict(replay.facts) == dict(case.facts)
    assert case.version == accepted == len(engine.history(case_id))
    assert engine.verify(case_id).ok


@pytest.mark.slow
def test_two_processes_verify_exactly_what_one_does(engine: Engine, clock: FixedClock) -> None:
    """Verification split over two processes finds the same cases, events and problems."""
    ids = [_full_case(engine, clock) for _ in range(6)]
    _as_attacker(engine, _edit(ids[1]))
    _as_attacker(engine, _truncate(ids[4]))
    one = engine.verify()
    two = engine.verify(workers=2)
    assert (two.cases, two.events) == (one.cases, one.events) == (6, 29)
    assert sorted(two.problems, key=lambda p: p.case_id) == sorted(
        one.problems, key=lambda p: p.case_id
    )
    assert {p.case_id for p in two.problems} == {ids[1], ids[4]}


def test_verify_left_to_decide_its_processes_checks_a_short_history_in_one(
    engine: Engine, clock: FixedClock
) -> None:
    """``workers=None`` splits only a history long enough to pay for a second process's
    start-up: a short one is checked here, with the same report as one process gives."""
    ids = [_full_case(engine, clock) for _ in range(3)]
    _as_attacker(engine, _edit(ids[1]))
    assert engine.context.store.audit.middle_case_id(SPLIT_EVENTS) is None
    chosen, one = engine.verify(workers=None), engine.verify()
    assert (chosen.cases, chosen.events, chosen.problems) == (one.cases, one.events, one.problems)
    assert [p.case_id for p in chosen.problems] == [ids[1]]


def test_cases_alike_share_their_rules_and_values_of_another_type_do_not() -> None:
    """Verification builds one CaseRules per machine and profile; a branch ``1`` is
    not a branch ``True``, and a value that cannot be a key gets rules of its own."""
    from casework.machines import COMPLAINT_V1
    from casework.workflow.cases.history import SharedRules

    shared = SharedRules({})
    profile = {"priority": "normal", "category": "quality", "channel": "phone", "branch": 1}
    first = shared.rules(COMPLAINT_V1, profile)
    assert shared.rules(COMPLAINT_V1, dict(profile)) is first
    other = shared.rules(COMPLAINT_V1, {**profile, "branch": True})
    assert other is not first
    assert other.profile["branch"] is True
    odd = {**profile, "branch": ["a"]}
    assert shared.rules(COMPLAINT_V1, odd).profile == odd
    assert shared.rules(COMPLAINT_V1, odd) is not shared.rules(COMPLAINT_V1, odd)


def _rewrite(case_id: str, seq: int, **values: Any) -> Callable[[Connection], Any]:
    """Change event ``seq``'s columns and hash it and every later event again (and the
    case row's head), as a forger who knows the scheme would: only the replay can tell."""

    def change(conn: Connection) -> None:
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                events_table.select()
                .where(events_table.c.case_id == case_id)
                .order_by(events_table.c.seq)
            )
        ]
        v = rows[0]["data"].get("format", 1)
        rows[seq - 1].update(values)
        prev = rows[seq - 2]["hash"]
        for row in rows[seq - 1 :]:
            names = ("case_id", "seq", "event", "from_state", "to_state", "actor")
            digest = chain_hash(
                prev,
                canonical_event(
                    *(row[n] for n in names), row["occurred_at"], row["recorded_at"],
                    row["data"], v,
                ),
            )  # fmt: skip
            conn.execute(
                update(events_table)
                .where(_where(case_id, row["seq"]))
                .values(**{**row, "prev_hash": prev, "hash": digest})
            )
            prev = digest
        conn.execute(update(cases_table).where(cases_table.c.id == case_id).values(head_hash=prev))

    return change


def test_cases_alike_share_their_steps_and_differences_the_fold_reads_do_not(
    engine: Engine, clock: FixedClock
) -> None:
    """A check decides a step once for the cases that reach it by the same events and
    data; a value ``1`` is not ``true``, a fact a guard reads (the satisfaction a reopen
    needs) parts the cases, and each case's instants give its own clocks: every case
    gets exactly the problem a check of it alone gives."""
    cases = [_full_case(engine, clock) for _ in range(3)]
    for satisfaction in (1, 2, True, 4.0):
        case_id = _full_case(engine, clock)
        _as_attacker(engine, _rewrite(case_id, 5, data={"satisfaction": satisfaction}))
        cases.append(case_id)
    cases += [_full_case(engine, clock, UNHAPPY) for _ in range(2)]  # the second made to look happy
    _as_attacker(engine, _rewrite(cases[-1], 5, data={"satisfaction": 3}))
    late = _full_case(engine, clock)
    moved = engine.history(late)[1].occurred_at + timedelta(minutes=5)  # the apology
    _as_attacker(engine, _rewrite(late, 2, occurred_at=moved, recorded_at=moved))
    cases.append(late)
    report = engine.verify()
    alone = [p for case_id in sorted(cases) for p in engine.verify(case_id).problems]
    assert sorted(report.problems, key=lambda p: p.case_id) == alone
    found = {p.case_id: (p.seq, p.reason) for p in report.problems}
    blocked = "'follow_up' is not allowed from 'resolved' here"
    replay = "case row differs from its replay: "
    assert found == {
        cases[3]: (
            None,
            f"{replay}facts is {{'satisfaction': 4}}, replay gives {{'satisfaction': 1}}",
        ),
        cases[4]: (
            None,
            f"{replay}facts is {{'satisfaction': 4}}, replay gives {{'satisfaction': 2}}",
        ),
        cases[5]: (5, blocked),  # true is no score
        cases[6]: (5, blocked),  # nor is 4.0
        cases[8]: (6, "'reopen' is not allowed from 'followed_up' here"),
        late: (None, found[late][1]),
    }
    assert found[late][1].startswith(f"{replay}sla is ")


def test_a_check_keeps_one_path_for_the_cases_alike(engine: Engine, clock: FixedClock) -> None:
    """Cases opened alike whose events are alike share one path of steps, at any
    instants; a case whose data the fold reads differently takes one of its own."""
    from casework.workflow.cases.history import CaseChecker, SharedRules

    ids = [_full_case(engine, clock) for _ in range(3)]
    for note in ("called", "called", "called back"):
        case_id = open_sample(engine)
        engine.fire(case_id, "apologise", actor="li.na", data={"said": note})  # not read
        engine.fire(case_id, "note", actor="li.na", data={"note": note})  # read
        ids.append(case_id)
    context = engine.context
    shared = SharedRules(context.policies.known())
    with context.store.audit.snapshot() as streams:
        cases = {row[0]: row for row in streams.cases}
        events = list(streams.events)
        deadlines = list(streams.deadlines)
    counts = []
    for case_id in ids:
        case = cases[case_id]
        definition = context.definition_or_none(case[1], case[2])
        checker = CaseChecker(case_id, definition, shared.policies, shared=shared)
        checker.add_rows(row for row in events if row[0] == case_id)
        assert checker.finish(case, [d for d in deadlines if d[0] == case_id]) is None
        counts.append(shared.paths)
    # the opening, the apology and the confirmation (a resolution arms a timer: each case
    # folds it on its own); the first note, then the other note
    assert counts == [3, 3, 3, 4, 4, 5]


def test_files_attached_after_a_break_are_still_checked(engine: Engine, clock: FixedClock) -> None:
    """Verify reads each event once: the attach events of a case whose chain breaks
    before them are still checked against their files, in one process and in two."""
    from casework.storage.tables import attachments_table

    case_id = _full_case(engine, clock, FULL[:2])
    engine.attach(case_id, "维修单".encode(), kind="invoice", name="维修单.txt", actor="li.na")
    _as_attacker(engine, _edit_seq(case_id, 2))
    with engine.db.begin() as conn:
        conn.execute(delete(attachments_table))
    for workers in (1, 2):
        problems = engine.verify(workers=workers).problems
        assert [(p.case_id, p.seq) for p in problems] == [(case_id, 2), (case_id, 4)]
        assert "altered" in problems[0].reason
        assert "invoice, 维修单.txt) is missing" in problems[1].reason


def _edit_seq(case_id: str, seq: int) -> Callable[[Connection], Any]:
    return lambda c: c.execute(
        update(events_table).where(_where(case_id, seq)).values(actor="someone else")
    )
