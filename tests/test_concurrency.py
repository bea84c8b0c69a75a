"""Several processes writing one case: no lost update, the chain stays intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from casework.workflow import Engine, FixedClock
from tests.support import open_sample, racers


def _engine_with_case(url: str) -> tuple[Engine, str]:
    clock = FixedClock(datetime.now(UTC) - timedelta(hours=1))
    engine = Engine.open(url, clock=clock)
    return engine, open_sample(engine)


@pytest.mark.slow
def test_two_processes_at_one_version_one_wins(db_url: str) -> None:
    """Both fire at version 1 at once: exactly one wins, the other gets ConcurrentUpdate."""
    engine, case_id = _engine_with_case(db_url)
    for round_ in range(3):
        expected = engine.get(case_id).version
        results = racers.race(2, racers.fire_at_once, db_url, case_id, expected)
        assert sorted(results) == ["conflict", "won"], round_
        assert engine.get(case_id).version == expected + 1
    assert len(engine.history(case_id)) == 4
    assert engine.verify().ok
    engine.close()


@pytest.mark.slow
def test_two_processes_firing_many_lose_nothing(db_url: str) -> None:
    """Without an expected version, concurrent writers are serialised: all events are kept."""
    engine, case_id = _engine_with_case(db_url)
    counts = racers.race(2, racers.fire_many, db_url, case_id, 40)
    assert engine.get(case_id).version == 1 + sum(counts)
    assert engine.verify().ok
    engine.close()


@pytest.mark.slow
def test_eight_processes_firing_at_twenty_cases_lose_no_update(db_url: str) -> None:
    """Eight processes fire random valid events at the same 20 cases, each at the version
    it read, for a minute (CASEWORK_STRESS_S): every accepted event is in the history at
    the version it was acknowledged with, every other one was refused, and every case
    equals its replay."""
    import os

    seconds = float(os.environ.get("CASEWORK_STRESS_S", "60"))
    with Engine.open(db_url) as engine:
        case_ids = [open_sample(engine) for _ in range(20)]
    results = racers.race(8, racers.fire_randomly, db_url, case_ids, seconds)
    accepted = [pair for got, _, _ in results for pair in got]
    conflicts = sum(c for _, c, _ in results)
    assert len(accepted) > 100
    assert conflicts > 0
    assert len(set(accepted)) == len(accepted)  # no version acknowledged twice
    with Engine.open(db_url) as engine:
        for case_id in case_ids:
            history = engine.history(case_id)
            assert len(history) == 1 + sum(1 for c, _ in accepted if c == case_id)
            assert engine.get(case_id).version == len(history)
        report = engine.verify()
        assert report.ok, report.problems
