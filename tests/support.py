"""Helpers for tests: snapshots of every stored row, to prove nothing changed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from workflow import Engine


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every casework table, in a stable order."""
    tables = {"cases": "id", "events": "case_id, seq"}
    with engine.db.connect() as conn:
        return {
            name: [tuple(row) for row in conn.execute(text(f"SELECT * FROM {name} ORDER BY {key}"))]
            for name, key in tables.items()
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
