"""The benchmarks' bulk-loaded open cases are real histories: copies of one case, each
re-chained and committed to its own personal values, which ``verify`` finds whole
before and after the worker fires their deadlines."""

from __future__ import annotations

from bench.sla import policy
from bench.worker import _prepare
from casework.workflow import Engine


def test_copies_of_a_case_verify_whole(db_url: str) -> None:
    _prepare(db_url, 40)
    with Engine.open(db_url, config=policy(24 * 3600)) as engine:
        checked = engine.verify()
        assert (checked.ok, checked.cases) == (True, 40), checked.problems[:2]
        assert len(engine.process_due()) == 40
        checked = engine.verify()
        assert checked.ok, checked.problems[:2]
