"""Auditors' tools: exports verified without the database, signed checkpoints."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support import open_sample
from workflow import Engine, FixedClock
from workflow.catalog import installed_registry
from workflow.cli import main
from workflow.export_check import verify_export


def _history(engine: Engine, clock: FixedClock, cases: int = 3) -> list[str]:
    """A few cases with some steps and an escalation."""
    ids = []
    for n in range(cases):
        case_id = open_sample(engine, summary=f'Complaint {n}: 师傅没来, "quoted", a,b')
        clock.advance(timedelta(hours=1))
        if n % 2 == 0:
            engine.fire(case_id, "apologise", actor="li.na", note="Sorry")
        ids.append(case_id)
    clock.advance(timedelta(hours=30))
    engine.process_due()
    return ids


def _export(db_url: str, path: Path, *args: str) -> None:
    result = CliRunner().invoke(main, ["--db", db_url, "export", "--out", str(path), *args])
    assert result.exit_code == 0, result.output


def _verify(path: Path) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(main, ["verify", "--export", str(path), "--json"])
    return result.exit_code, json.loads(result.output)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_verifies_on_its_own(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path, fmt: str
) -> None:
    """Export then verify without the database: every event, counted and checked."""
    _history(engine, clock)
    stored = engine.verify()
    path = tmp_path / f"history.{fmt}"
    _export(db_url, path, "--format", fmt)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    code, report = _verify(path)
    assert code == 0, report
    assert (report["cases"], report["events"]) == (stored.cases, stored.events)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda ls: ls[:-1], "truncated: it has no end record"),
        (lambda ls: ls[:3] + ls[4:], "records were added, removed or changed"),
        (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], "event 1 is missing"),
        (lambda ls: [ls[0], *ls[1:-1], ls[1], ls[-1]], "reordered"),
        (lambda ls: [ls[0].replace('"version":1', '"version":9'), *ls[1:]], "format version 9"),
        (lambda ls: ls[1:], "the first record is not its header"),
        (lambda ls: [*ls[:2], "{not json\n", *ls[2:]], "is not JSON"),
        (lambda ls: [*ls, ls[1]], "records follow the end record"),
    ],
)
def test_a_damaged_export_is_caught(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path, tamper: object, reason: str
) -> None:
    """Cut, gapped, reordered, mislabelled or padded exports fail with a reason (exit 1)."""
    _history(engine, clock)
    path = tmp_path / "history.jsonl"
    _export(db_url, path)
    lines = _lines(path)
    path.write_text("".join(tamper(lines)), encoding="utf-8")  # type: ignore[operator]
    code, report = _verify(path)
    assert code == 1
    reasons = " | ".join(p["reason"] for p in report["problems"])  # type: ignore[attr-defined]
    assert reason in reasons


def test_an_edited_event_in_an_export_is_named(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    """Changing one word of an event's data: that case and event are named."""
    [first, *_] = sorted(_history(engine, clock))
    path = tmp_path / "history.jsonl"
    _export(db_url, path)
    lines = _lines(path)
    lines[1] = lines[1].replace("Complaint", "Compliment")
    path.write_text("".join(lines), encoding="utf-8")
    report = verify_export(path, installed_registry())
    [problem] = report.problems
    assert (problem.case_id, problem.seq) == (first, 1)
    assert "altered" in problem.reason


def test_an_export_of_a_period_checks_its_chains_from_where_they_start(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    """--since cuts chains open; what is there still links and hashes."""
    start = clock.now()
    _history(engine, clock)
    since = (start + timedelta(minutes=30)).isoformat()
    path = tmp_path / "part.csv"
    _export(db_url, path, "--since", since, "--format", "csv")
    code, report = _verify(path)
    assert code == 0, report
    assert 0 < report["events"] < engine.verify().events  # type: ignore[operator]


def test_export_refuses_bad_input(db_url: str, tmp_path: Path) -> None:
    """Bad dates, an unknown case, an existing file: exit 2 and nothing written."""
    runner = CliRunner()
    base = ["--db", db_url, "export"]
    bad = runner.invoke(main, [*base, "--since", "yesterday"])
    assert bad.exit_code == 2
    backwards = runner.invoke(
        main, [*base, "--since", "2026-02-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z"]
    )
    assert backwards.exit_code == 2
    assert "--until must be later" in backwards.output
    unknown = runner.invoke(main, [*base, "--case", "nope", "--out", str(tmp_path / "x")])
    assert unknown.exit_code == 2
    assert not (tmp_path / "x").exists()
    existing = tmp_path / "kept.jsonl"
    existing.write_text("keep me")
    again = runner.invoke(main, [*base, "--out", str(existing)])
    assert again.exit_code == 2
    assert existing.read_text() == "keep me"
    missing = runner.invoke(main, ["verify", "--export", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2
