"""Verification in two processes: each takes half the cases, by id, from its own snapshot.

Cases are independent (a chain, a row and its deadlines belong to one case), so two
snapshots taken a moment apart check exactly what one would: every case against one
consistent view of its own rows. The machine has two cores; this uses both.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial

from casework.workflow.results import VerifyReport


def usable_workers() -> int:
    """The processes a check may take here when the number is left to casework: two on
    a machine with two cores or more, else one."""
    return min(2, os.cpu_count() or 1)


SPLIT_EVENTS = 200_000
"""A history at least this long is checked in two processes when the number is left to
casework: below it, the second process's start-up (about half a second, importing
casework) costs more than the half it takes saves (break-even measured at 150,000
events on SQLite and 300,000 on PostgreSQL on the same 2-core machine)."""


def verify_halves(
    pivot: str,
    lower: Callable[[str], VerifyReport],
    upper: Callable[[str], VerifyReport],
) -> VerifyReport:
    """``lower(pivot)`` here (the cases below ``pivot``) while ``upper(pivot)`` (the rest,
    a picklable function: it runs in a fresh process) runs in a child; one report."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        above = pool.submit(partial(upper, pivot))
        below = lower(pivot)
        other = above.result()
    return VerifyReport(
        below.cases + other.cases, below.events + other.events, below.problems + other.problems
    )
