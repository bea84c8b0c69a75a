"""Rows of the wrong type, files that cannot be written whole, and what the command
line says when something unforeseen happens: verify names the case of a malformed row
and goes on; a refused attach keeps no file; a key and its keyring are written whole or
not at all; ``--log-level debug`` prints the traceback it promises."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from casework.workflow import Engine, FixedClock
from casework.workflow.cli import main
from casework.workflow.cli.support import CaseworkGroup
from casework.workflow.errors import CaseworkError
from tests.support import START, open_sample, rows_at

TAMPERINGS = {
    "text attachment": "UPDATE attachments SET content = CAST(content AS TEXT)",
    "attachment size": "UPDATE attachments SET size = size + 1",
    "non-JSON attributes": "UPDATE cases SET attributes = '{not json' WHERE id = :case",
    "version as text": "UPDATE cases SET version = 'two' WHERE id = :case",
    "non-JSON policy": "UPDATE sla_policies SET document = '{not json'",
}
"""Each a type confusion SQLite lets through (PostgreSQL's column types refuse them)."""


def _two_cases(url: str) -> tuple[str, str]:
    """Two cases, the first with an attachment; their ids."""
    clock = FixedClock(START)
    with Engine.open(url, clock=clock) as engine:
        first = open_sample(engine)
        second = open_sample(engine, customer="CUST-2")
        clock.advance(timedelta(minutes=5))
        engine.attach(first, b"%PDF-1.7 report", kind="test_report", name="r.pdf", actor="a")
    return first, second


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_verify_names_the_case_of_a_malformed_row_and_goes_on(
    tmp_path: Path, tampering: str
) -> None:
    url = f"sqlite:///{tmp_path / 'casework.db'}"
    first, second = _two_cases(url)
    with Engine.open(url) as engine, engine.db.begin() as conn:
        conn.execute(text(TAMPERINGS[tampering]), {"case": first})
    result = CliRunner().invoke(main, ["--db", url, "verify", "--workers", "1", "--json"])
    assert result.exit_code == 1, result.output
    assert "unexpected" not in result.output
    report = json.loads(result.stdout)
    assert not report["ok"]
    named = {p["case_id"] for p in report["problems"]}
    assert first in named or tampering == "non-JSON policy", report["problems"]
    assert second not in named or tampering == "non-JSON policy"
    assert report["cases"] == 2, report  # it went on to the other case


def test_a_refused_attach_keeps_no_file(engine: Engine, clock: FixedClock) -> None:
    case_id = open_sample(engine)
    engine.fire(case_id, "withdraw", actor="li.na")
    before = rows_at_engine(engine)
    with pytest.raises(CaseworkError):
        engine.attach(case_id, b"%PDF late", kind="test_report", name="r.pdf", actor="li.na")
    with pytest.raises(CaseworkError, match="bidirectional"):
        engine.attach(case_id, b"MZ", kind="photo", name="photo\u202egpj.exe", actor="li.na")
    assert rows_at_engine(engine) == before


def rows_at_engine(engine: Engine) -> object:
    """Every stored row of the engine's database."""
    return rows_at(engine.db.url.render_as_string(hide_password=False))


def _limited(limit: int) -> None:
    """In the child: files may grow to ``limit`` bytes (a disk that fills up there)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_key_and_its_keyring_are_written_whole_or_not_at_all(tmp_path: Path) -> None:
    """A disk that fills up while the keyring is written: the key and keyring stay as
    they were and no part file is left (before: a key whose keyring line was cut)."""
    key, other, ring = tmp_path / "k", tmp_path / "k2", tmp_path / "ring.pub"
    command = [sys.executable, "-m", "casework.workflow.cli", "keys", "generate"]
    made = subprocess.run([*command, "--key", str(key), "--keyring", str(ring)], check=False)
    assert made.returncode == 0
    kept = ring.read_bytes()
    assert 100 < len(kept) < 150
    full = subprocess.run(
        [*command, "--key", str(other), "--keyring", str(ring)],
        preexec_fn=lambda: _limited(150),
        capture_output=True,
        text=True,
        check=False,
    )
    assert full.returncode == 1, full.stderr
    assert full.stderr.count("\n") == 1, full.stderr
    assert "cannot write" in full.stderr
    assert ring.read_bytes() == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k", "ring.pub"]


def test_log_level_debug_prints_the_traceback_it_promises() -> None:
    @click.group(cls=CaseworkGroup)
    @click.option("--log-level", default="warning")
    def root(log_level: str) -> None:
        from casework.workflow.cli.logs import configure_logging

        configure_logging(log_level)

    @root.command()
    def boom() -> None:
        raise RuntimeError("something nobody foresaw")

    quiet = CliRunner().invoke(root, ["boom"])
    assert quiet.exit_code == 1
    assert quiet.stderr.count("\n") == 1
    assert "--log-level debug shows where" in quiet.stderr
    loud = CliRunner().invoke(root, ["--log-level", "debug", "boom"])
    assert loud.exit_code == 1
    assert "Traceback (most recent call last)" in loud.stderr
    assert "in boom" in loud.stderr


def test_deliver_logs_which_mail_failed_and_why(db_url: str) -> None:
    """Not a terminal: JSON lines with the mail ids and the error, not a bare name."""
    clock = FixedClock(START)
    with Engine.open(db_url, clock=clock) as engine:
        open_sample(engine)
        clock.advance(timedelta(hours=30))
        engine.process_due()
    env = {"CASEWORK_SMTP_PASSWORD": ""}
    result = CliRunner().invoke(
        main,
        ["--db", db_url, "deliver", "--smtp", f"smtp://127.0.0.1:{_closed_port()}"],
        env={**os.environ, **env},
    )
    assert result.exit_code == 1, result.output
    failed = [json.loads(line) for line in result.stderr.splitlines() if '"mail_failed"' in line]
    assert failed, result.stderr
    assert failed[0]["mails"]
    assert failed[0]["error"]


def _closed_port() -> int:
    from tests.support.api_server import free_port

    return free_port()


def test_no_cell_of_a_csv_export_runs_as_a_formula(db_url: str, tmp_path: Path) -> None:
    """An actor, event text or note that starts like a formula is shown as text by a
    spreadsheet (a leading ``'``), and the export still verifies."""
    import csv

    clock = FixedClock(START)
    with Engine.open(db_url, clock=clock) as engine:
        case_id = open_sample(engine, actor='=HYPERLINK("http://evil.example","x")')
        clock.advance(timedelta(minutes=1))
        engine.fire(case_id, "note", actor="-2+3", note="@SUM(1+1)")
        engine.fire(case_id, "note", actor="+cmd", note="'=already quoted")
    out = tmp_path / "export.csv"
    made = CliRunner().invoke(
        main, ["--db", db_url, "export", "--format", "csv", "--out", str(out)]
    )
    assert made.exit_code == 0, made.output
    with out.open(newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert '\'=HYPERLINK("http://evil.example","x")' in cells
    assert "'-2+3" in cells
    assert "'+cmd" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    checked = CliRunner().invoke(main, ["verify", "--export", str(out)])
    assert checked.exit_code == 0, checked.output


def test_a_malformed_case_row_asked_for_by_id_is_one_line_naming_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'casework.db'}"
    first, _ = _two_cases(url)
    with Engine.open(url) as engine, engine.db.begin() as conn:
        conn.execute(text(TAMPERINGS["non-JSON attributes"]), {"case": first})
    for command in (["verify", first], ["show", first]):
        result = CliRunner().invoke(main, ["--db", url, *command])
        assert result.exit_code == 1, result.output
        [line] = [x for x in result.stderr.splitlines() if x.startswith("casework: error")]
        assert f"case {first}: a column of it does not parse" in line
        assert "unexpected" not in line
