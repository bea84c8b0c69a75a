"""Helpers for tests: a typical complaint, the start of test time, the test server's
address, snapshots of every stored row (to prove nothing changed), counts of what
fired and waiting on a condition with a deadline. Servers, crash and race harnesses
and a second machine live beside this file."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, inspect, text

from casework.workflow import Engine

PG_ADMIN = os.environ.get("CASEWORK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
"""The PostgreSQL server the tests make their throwaway databases on."""
START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
"""Where test time starts: a Monday, 09:00 in China."""
T = TypeVar("T")


DG, GZ = "东莞分部", "广州分部"
CHANG_AN, HU_MEN, TIAN_HE = "东莞长安店", "东莞虎门店", "广州天河店"
ORGANISATION = f"""
[organisation]
company = "总部"
[organisation.branches]
"{DG}" = ["{CHANG_AN}", "{HU_MEN}"]
"{GZ}" = ["{TIAN_HE}"]
"""
"""An ``[organisation]`` of two branches: DG with the stores CHANG_AN and HU_MEN, GZ with
TIAN_HE."""


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = 60.0,
    what: str,
    interval: float = 0.02,
    tolerate: tuple[type[Exception], ...] = (),
) -> T:
    """Call ``predicate`` until it returns something true and return that; fail naming
    ``what`` after ``timeout`` seconds. The deadline is generous on purpose: it only
    bounds a test that would otherwise hang, and says nothing about speed. Errors of
    the ``tolerate`` types count as "not yet" (the last one is reported)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            result = predicate()
        except tolerate as err:
            last = err
        else:
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"waited {timeout:g} s for {what}" + (f"; last error {last!r}" if last else "")
            )
        time.sleep(interval)  # the polling step, not a wait for something to happen


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie no one reaped yet counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the engine's database, in a stable order."""
    with engine.db.connect() as conn:
        return every_row(conn)


def every_row(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the database lists (asked of it, so a table added later
    counts without a change here), each table's rows sorted."""
    names = sorted(inspect(conn).get_table_names())
    assert names, "the database lists no tables: a snapshot of it would prove nothing"
    quote = conn.dialect.identifier_preparer.quote
    return {
        name: sorted(
            (tuple(row) for row in conn.execute(text(f"SELECT * FROM {quote(name)}"))),
            key=repr,
        )
        for name in names
    }


def open_sample(engine: Engine, **overrides: Any) -> str:
    """Open a typical complaint and return its id."""
    values: dict[str, Any] = {
        "customer": "CUST-1",
        "channel": "phone",
        "category": "service_delayed",
        "summary": "Nobody came.",
        "actor": "li.na",
        "contact": "+86 138 0000 0000",
        "branch": "Guangzhou",
    }
    values.update(overrides)
    return engine.open_case(**values).id


def decidable(engine: Engine, **attributes: Any) -> str:
    """A phone of 华为 sold 2026-11-20 with a performance fault (``attributes`` change
    these), apologised for and its needs confirmed: a case ready for ``decide_remedy``."""
    values = {"purchase_date": "2026-11-20", "brand": "华为", "product_class": "phone",
              "fault_class": "performance", **attributes}  # fmt: skip
    case_id = open_sample(engine, attributes=values)
    engine.fire(case_id, "apologise", actor="li.na")
    engine.fire(case_id, "confirm_needs", actor="li.na")
    return case_id


def book_visit(engine: Engine, case_id: str, start: datetime) -> None:
    """Apologise, confirm the needs and book technician wang for two hours from ``start``."""
    engine.fire(case_id, "apologise", actor="li.na")
    engine.fire(case_id, "confirm_needs", actor="li.na")
    engine.fire(
        case_id, "book_visit", actor="li.na",
        data={"from": start.isoformat(), "to": (start + timedelta(hours=2)).isoformat(),
              "technician": "wang"},
    )  # fmt: skip


def fired_deadlines(engine: Engine) -> tuple[dict[str, int], int, Counter[tuple[Any, ...]]]:
    """Deadline rows by status, outbox rows, and how often each (case, clock, cycle,
    level) was recorded as a warning or escalation event."""
    from sqlalchemy import func, select

    from casework.storage.tables import deadlines_table, outbox_table

    with engine.db.connect() as conn:
        statuses = dict(
            conn.execute(
                select(deadlines_table.c.status, func.count()).group_by(deadlines_table.c.status)
            ).all()
        )
        mails = conn.execute(select(func.count()).select_from(outbox_table)).scalar_one()
    seen: Counter[tuple[Any, ...]] = Counter()
    for case in engine.list():
        for event in engine.history(case.id):
            if event.event in ("sla_warning", "escalate"):
                seen[(case.id, event.data["clock"], event.data["cycle"], event.data["level"])] += 1
    return statuses, mails, seen


def run_due(engine: Engine, moment: Any, *, batch: int = 200) -> list[Any]:
    """Move the engine's fixed clock to ``moment`` and fire what is due then."""
    engine.clock.set(moment)  # type: ignore[attr-defined]
    return engine.process_due(batch=batch)


def rows_at(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the database at ``url``, read afresh."""
    from sqlalchemy import create_engine

    db = create_engine(url)
    try:
        with db.connect() as conn:
            return every_row(conn)
    finally:
        db.dispose()


def all_fired_once(engine: Engine) -> None:
    """Nothing is pending, every deadline fired once, and each queued one mail."""
    statuses, mails, seen = fired_deadlines(engine)
    assert statuses.get("pending", 0) == 0
    assert set(seen.values()) == {1}
    assert statuses["fired"] == len(seen) == mails
