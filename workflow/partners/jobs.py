"""Dispatched jobs: installations and repairs per day, branch, category and partner,
recorded one by one or imported from a CSV file in one transaction."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import datetime, time, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casework.workflow import validation
from casework.workflow.display.times import read_time
from casework.workflow.errors import InvalidInput
from casework.workflow.files import read_text

if TYPE_CHECKING:
    from casework.workflow.context import Context

JOB_KINDS = ("installation", "repair")
COLUMNS = ("kind", "branch", "category", "partner", "done_at", "jobs")
MAX_JOBS = 2**31 - 1
"""The most jobs one row may count (what every database's column holds)."""
JOBS_FILE_BYTES = 64 << 20
"""The largest CSV of jobs imported at once (64 MiB)."""


def job_row(values: Mapping[str, Any], zone: tzinfo, source: str, where: str) -> dict[str, Any]:
    """One stored row from what a person or a file gives: ``done_at`` a date or time in
    ``zone`` (a date is its noon, well inside the day), ``jobs`` a positive count."""
    kind = str(values.get("kind") or "").strip()
    branch = str(values.get("branch") or "").strip()
    if kind not in JOB_KINDS:
        raise InvalidInput(f"{where}: kind must be installation or repair, not {kind!r}")
    if not branch:
        raise InvalidInput(f"{where}: branch is missing")
    text = str(values.get("done_at") or "").strip()
    try:
        count = int(str(values.get("jobs") or "1").strip())
    except ValueError:
        raise InvalidInput(f"{where}: jobs must be a whole number") from None
    if count <= 0:
        raise InvalidInput(f"{where}: jobs must be more than zero")
    if count > MAX_JOBS:
        raise InvalidInput(f"{where}: jobs must be a whole number from 1 to {MAX_JOBS:,}")
    done = read_time(text, f"{where}: done_at", zone).moment
    if len(text) == 10:  # a date: count the jobs at its noon
        local = done.astimezone(zone)
        done = datetime.combine(local.date(), time(12), tzinfo=zone)
    return {
        "kind": kind,
        "branch": _name(branch, f"{where}: branch"),
        "category": _name(values.get("category"), f"{where}: category"),
        "partner": _name(values.get("partner"), f"{where}: partner"),
        "done_at": done,
        "jobs": count,
        "source": source,
    }


def _name(value: Any, what: str) -> str | None:
    """A branch, category or partner as given: one line without control or
    bidirectional characters; ``None`` if empty."""
    text = str(value or "").strip()
    return validation.text(text, what, max_chars=200) if text else None


def import_jobs(context: Context, path: str | Path, zone: tzinfo) -> tuple[int, int]:
    """Import a CSV of dispatched jobs (header ``kind,branch,category,partner,done_at,
    jobs``; category, partner and jobs may be empty) in one transaction: nothing is
    stored if any row is wrong. Returns (rows, jobs)."""
    file = Path(path)
    text = read_text(file, "CSV", limit=JOBS_FILE_BYTES, what="CSV of jobs", encoding="utf-8-sig")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        missing = [c for c in ("kind", "branch", "done_at") if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput(f"{file}: needs the columns {', '.join(missing)}")
        rows = [
            job_row(values, zone, file.name, f"{file}:{number}")
            for number, values in enumerate(reader, 2)
        ]
    except csv.Error as err:
        raise InvalidInput(f"{file}:{reader.line_num}: not a CSV line ({err})") from None
    return len(rows), context.store.partners.add_jobs(rows)


def add_jobs(context: Context, rows: Iterable[dict[str, Any]]) -> int:
    """Store rows made by :func:`job_row`; how many jobs they add up to."""
    return context.store.partners.add_jobs(list(rows))
