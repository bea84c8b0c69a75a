"""Several processes writing one case: no lost update, the chain stays intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests import racers
from tests.support import open_sample
from workflow import Engine, FixedClock


def _engine_with_case(url: str) -> tuple[Engine, str]:
    clock = FixedClock(datetime.now(UTC) - timedelta(hours=1))
    engine = Engine.open(url, clock=clock)
    return engine, open_sample(engine)


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


def test_two_processes_firing_many_lose_nothing(db_url: str) -> None:
    """Without an expected version, concurrent writers are serialised: all events are kept."""
    engine, case_id = _engine_with_case(db_url)
    counts = racers.race(2, racers.fire_many, db_url, case_id, 40)
    assert engine.get(case_id).version == 1 + sum(counts)
    assert engine.verify().ok
    engine.close()
