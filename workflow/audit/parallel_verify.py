"""Verification in two processes: each takes half the cases, by id, from its own snapshot.

Cases are independent (a chain, a row and its deadlines belong to one case), so two
snapshots taken a moment apart check exactly what one would: every case against one
consistent view of its own rows. The machine has two cores; this uses both.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

from storage.snapshot import middle_case_id
from workflow.config import Settings
from workflow.results import VerifyReport

if TYPE_CHECKING:
    from workflow.engine import Engine


def verify_range(url: str, settings: Settings, low: str) -> VerifyReport:
    """Verify the cases with ids from ``low`` on (run in the second process)."""
    from workflow.engine import Engine

    with Engine.open(url, config=settings, read_only=True) as engine:
        return engine._verify_part(None, (low, None), None)


def verify_halves(engine: Engine, progress: Callable[[int, int], None] | None) -> VerifyReport:
    """Verify the lower half of the cases here and the upper half in a child process."""
    pivot = middle_case_id(engine.db)
    if pivot is None:
        return engine._verify_part(None, (None, None), progress)
    url = engine.db.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        upper = pool.submit(verify_range, url, engine.settings, pivot)
        lower = engine._verify_part(None, (None, pivot), progress)
        other = upper.result()
    return VerifyReport(
        lower.cases + other.cases, lower.events + other.events, lower.problems + other.problems
    )
