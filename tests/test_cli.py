"""The ``casework`` command: options, JSON output, exit codes, one-line errors."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from casework.workflow import Engine, FixedClock, InvalidInput
from casework.workflow.cli import main
from tests.support import START, open_sample, snapshot


@pytest.fixture
def run(db_url: str) -> Any:
    """Run the CLI against the test database; returns click's result."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, ["--db", db_url, *args], catch_exceptions=False)

    return invoke


def _open(run: Any, *extra: str) -> str:
    result = run(
        "open",
        "--customer",
        "CUST-7",
        "--channel",
        "store",
        "--category",
        "other",
        "--summary",
        "Rude staff",
        "--actor",
        "li.na",
        *extra,
    )
    assert result.exit_code == 0, result.stderr
    return str(result.stdout.strip())


def test_a_case_through_the_cli_in_json(run: Any) -> None:
    """open, fire, show, history, replay and verify speak the JSON contract."""
    result = run(
        "open",
        "--customer",
        "C1",
        "--channel",
        "web",
        "--category",
        "slow_response",
        "--summary",
        "Waited a week",
        "--json",
    )
    case = json.loads(result.stdout)
    for key in (
        "id",
        "machine",
        "machine_version",
        "state",
        "version",
        "owner",
        "channel",
        "category",
        "received_at",
        "escalation_level",
        "deadlines",
    ):
        assert key in case
    case_id = case["id"]
    fired = json.loads(run("fire", case_id, "apologise", "--actor", "li.na", "--json").stdout)
    assert (fired["state"], fired["version"]) == ("apologised", 2)
    run("fire", case_id, "confirm_needs", "--actor", "li.na")
    run("fire", case_id, "resolve", "--actor", "li.na", "--data", "solution=refund")
    out = run("fire", case_id, "follow_up", "--actor", "li.na", "--data", "satisfaction=5")
    assert "resolved -> followed_up (version 5)" in out.stdout
    history = json.loads(run("history", case_id, "--json").stdout)
    assert [e["event"] for e in history][-1] == "follow_up"
    assert history[-1]["data"] == {"satisfaction": 5}
    assert set(history[0]) >= {
        "case_id",
        "seq",
        "event",
        "from_state",
        "to_state",
        "actor",
        "occurred_at",
        "recorded_at",
        "data",
        "prev_hash",
        "hash",
    }
    replay = json.loads(run("replay", case_id, "--json").stdout)
    assert (replay["state"], replay["version"]) == ("followed_up", 5)
    assert replay["at"].endswith("+00:00")
    assert json.loads(run("show", case_id, "--json").stdout)["state"] == "followed_up"
    listed = json.loads(run("list", "--state", "followed_up", "--json").stdout)
    assert [c["id"] for c in listed] == [case_id]
    verified = json.loads(run("verify", "--json").stdout)
    assert verified == {"ok": True, "cases": 1, "events": 5, "problems": []}


def test_text_output_is_readable(run: Any) -> None:
    """Without --json the commands print lines for people."""
    case_id = _open(run)
    assert case_id in run("list").stdout
    assert "open" in run("history", case_id).stdout
    assert "state received" in run("replay", case_id).stdout
    shown = run("show", case_id).stdout
    assert "owner  li.na" in shown
    assert re.search(
        r"first response: due in (1d|23h 59m), at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d -0[45]:00", shown
    )
    assert "(1d target, 24x7 hours)" in shown
    assert "head_hash" not in shown  # a person's view, not a dump
    assert run("verify").stdout.startswith("ok: 1 cases, 1 events")


BAD = [
    (["fire", "{case}", "resolve", "--actor", "a"], "not allowed in state 'received'"),
    (["fire", "{case}", "note", "--actor", "a"], "condition note_given failed"),
    (["fire", "missing", "apologise", "--actor", "a"], "no case 'missing'"),
    (["fire", "{case}", "contact", "--actor", "a", "--data", "oops"], "must look like key=value"),
    (["fire", "{case}", "contact", "--actor", "a", "--data", "=1"], "must look like key=value"),
    (["fire", "{case}", "apologise", "--actor", "a", "--at", "yesterday"], "not a date or time"),
    (["fire", "{case}", "apologise", "--actor", "a", "--at", "2026-11-23 25:00"], "not a date"),
    (["fire", "{case}", "apologise", "--actor", "a", "--at", "2020-01-01T00:00:00Z"], "before"),
    (["fire", "{case}", "apologise", "--actor", "a", "--at", "2099-01-01T00:00:00Z"], "future"),
    (["fire", "{case}", "note", "--actor", "a", "--note", "x" * 5000], "limit is 4000"),
    (
        ["fire", "{case}", "apologise", "--actor", "a", "--expected-version", "9"],
        "expected version 9",
    ),
    (
        ["open", "--customer", "c", "--channel", "fax", "--category", "other", "--summary", "s"],
        "valid channel values: store, phone",
    ),
    (
        ["open", "--customer", "c", "--channel", "web", "--category", "x", "--summary", "s"],
        "valid category values",
    ),
    (["replay", "{case}", "--at", "2026-11-23", "--tz", "Mars/Olympus"], "unknown time zone"),
    (["show", "missing"], "no case"),
    # the command line's hints to what the library's neutral refusals describe
    (["fire", "{case}", "note", "--actor", "a"], "needs the note text: --note TEXT (data note="),
    (["fire", "{case}", "escalate", "--actor", "a"], "see `casework tick` and `casework replan`"),
    (["fire", "{case}", "attach", "--actor", "a"], ": `casework attach CASE FILE --kind K`"),
    (
        ["open", "--customer", "c", "--channel", "web", "--summary", "s", "--attr", "oops"],
        "--attr 'oops' must look like key=value",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    run: Any, db_url: str, args: list[str], message: str
) -> None:
    """Every bad input: exit status 2, one line on stderr naming the problem, no row changed."""
    case_id = _open(run)
    with Engine.open(db_url) as engine:
        before = snapshot(engine)
    result = run(*(a.replace("{case}", case_id) for a in args))
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]
    with Engine.open(db_url) as engine:
        assert snapshot(engine) == before


def test_verify_exits_1_on_a_broken_history(run: Any, db_url: str) -> None:
    """A failed check is exit status 1 and names the case and the event."""
    case_id = _open(run)
    with Engine.open(db_url) as engine, engine.db.begin() as conn:
        from sqlalchemy import update

        from casework.storage.tables import cases_table

        conn.execute(update(cases_table).values(version=3))
    result = run("verify", "--json")
    assert result.exit_code == 1
    problem = json.loads(result.stdout)["problems"][0]
    assert (problem["case_id"], problem["seq"]) == (case_id, 2)
    text = run("verify")
    assert f"BROKEN case {case_id} event 2" in text.stdout


def test_machines_lists_and_draws(tmp_path: Path) -> None:
    """``machines`` lists states and events and writes a Mermaid diagram."""
    runner = CliRunner()
    result = runner.invoke(main, ["machines", "--diagram", str(tmp_path)])
    assert result.exit_code == 0
    assert "complaint v1" in result.stdout
    assert "events: apologise, confirm_needs, resolve" in result.stdout
    assert (tmp_path / "complaint-v1.mmd").read_text().startswith("stateDiagram-v2")
    described = json.loads(runner.invoke(main, ["machines", "--json"]).stdout)
    assert described[0]["initial_state"] == "received"


@pytest.mark.slow
def test_the_installed_command_runs_the_demo(tmp_path: Path) -> None:
    """The console script works from a fresh directory and its demo verifies."""
    result = subprocess.run(
        [sys.executable, "-m", "casework.workflow.cli", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Verify: ok" in result.stdout
    assert not (tmp_path / "casework.db").exists()


def test_database_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --db, CASEWORK_DATABASE_URL names the database."""
    url = f"sqlite:///{tmp_path}/env.db"
    monkeypatch.setenv("CASEWORK_DATABASE_URL", url)
    result = CliRunner().invoke(main, ["list", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []
    assert (tmp_path / "env.db").exists()


def test_a_bad_config_file_is_named(tmp_path: Path) -> None:
    """A configuration with an unknown key is refused with the file and the key."""
    config = tmp_path / "casework.toml"
    config.write_text("[intake]\nchanels = ['wechat']\n")
    result = CliRunner().invoke(
        main, ["--db", f"sqlite:///{tmp_path}/x.db", "--config", str(config), "list"]
    )
    assert result.exit_code == 2
    assert f"{config}: unknown key intake.chanels" in result.stderr


def test_config_extends_channels(tmp_path: Path) -> None:
    """A configured extra channel is accepted."""
    config = tmp_path / "casework.toml"
    config.write_text("[intake]\nchannels = ['wechat']\n")
    result = CliRunner().invoke(
        main,
        [
            "--db",
            f"sqlite:///{tmp_path}/x.db",
            "--config",
            str(config),
            "open",
            "--customer",
            "c",
            "--channel",
            "wechat",
            "--category",
            "other",
            "--summary",
            "s",
        ],
    )
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("url", "message", "status"),
    [
        ("nosuch://x", "cannot open database nosuch://x", 2),
        ("postgresql://x@host:port/db", "cannot parse the URL", 2),
        ("sqlite:////nonexistent/dir/x.db", "unable to open database file", 1),
        ("postgresql://bob:secret@127.0.0.1:1/x", "bob:***@", 1),
    ],
)
def test_a_database_that_cannot_be_opened_is_one_line(url: str, message: str, status: int) -> None:
    """A malformed --db is bad input (exit 2), an unreachable one a database failure
    (exit 1); either is one line that never echoes a password."""
    result = CliRunner().invoke(main, ["--db", url, "list"])
    assert result.exit_code == status
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]
    assert "secret" not in result.stderr


PHONE = {"brand": "华为", "product_class": "phone", "fault_class": "performance"}


@pytest.mark.parametrize(
    ("attributes", "refused", "hint"),
    [
        (PHONE, "needs the purchase_date", "open the case with --attr purchase_date="),
        ({**PHONE, "brand": "Apple", "purchase_date": "2026-11-20"},
         "needs the manufacturer's test report", "(casework attach CASE FILE --kind test_report)"),
    ],
)  # fmt: skip
def test_a_refused_remedy_names_the_option_that_gives_what_it_needs(
    run: Any, db_url: str, attributes: dict[str, str], refused: str, hint: str
) -> None:
    """The library says what a remedy needs in neutral words; the command line names how
    to give it."""
    with Engine.open(db_url, clock=FixedClock(START)) as engine:
        case_id = open_sample(engine, attributes=attributes)
        engine.fire(case_id, "apologise", actor="li.na")
        engine.fire(case_id, "confirm_needs", actor="li.na")
    at = (START + timedelta(hours=1)).isoformat()
    result = run("fire", case_id, "decide_remedy", "--data", "remedy=exchange", "--actor",
                 "li.na", "--role", "admin", "--at", at)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert refused in result.stderr
    assert hint in result.stderr


def test_a_database_casework_cannot_share_names_the_option_that_sets_it_apart(
    tmp_path: Path,
) -> None:
    """Opening an engine names ``Engine.open``'s parameters, which the command line shows
    as its options."""
    shared = tmp_path / "shared.db"
    with sqlite3.connect(shared) as conn:
        conn.execute("CREATE TABLE cases (id TEXT)")
    with pytest.raises(InvalidInput, match=r"give casework a table prefix \(`table_prefix`\)$"):
        Engine.open(f"sqlite:///{shared}")
    runner = CliRunner()
    result = runner.invoke(main, ["--db", f"sqlite:///{shared}", "list"])
    assert result.exit_code == 2
    assert result.stderr.rstrip().endswith("give casework a table prefix (--db-table-prefix)")
    schema = runner.invoke(main, ["--db", f"sqlite:///{shared}", "--db-schema", "cw", "list"])
    assert schema.exit_code == 2
    assert "a schema is PostgreSQL's (--db-schema); SQLite has none" in schema.stderr
