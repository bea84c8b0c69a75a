"""The soak simulation, short: days of complaints with restarts and an SMTP outage."""

from __future__ import annotations

import pytest

from tests.support.soak import simulate


@pytest.mark.slow
def test_a_short_soak_keeps_every_invariant(db_url: str) -> None:
    """600 complaints over four simulated days with their after-sales work (visits,
    parts, partners), a worker restart each day and an hour without SMTP: every
    invariant of the full soak holds."""
    outcome = simulate(db_url, complaints=600, days=4, seed=5)
    assert outcome.ok, outcome.invariants
    assert outcome.breaches > 0
    assert outcome.mails > 0
    assert outcome.restarts >= 3
    assert outcome.missed_windows > 0  # technicians who came after the window
    assert outcome.structure["from events"]["missed_appointment"] > 0
