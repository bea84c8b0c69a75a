"""Auditors' tools: exports verified without the database, signed checkpoints."""

from __future__ import annotations

import csv
import io
import json
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from casework.storage import GENESIS_HASH, canonical_event, chain_hash
from casework.workflow import Engine, FixedClock
from casework.workflow.audit.export import EVENT_KEYS, export_digest
from casework.workflow.audit.export_check import verify_export
from casework.workflow.catalog import installed_registry
from casework.workflow.cli import main
from tests.support import open_sample


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
    return result.exit_code, json.loads(result.stdout)


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
        (lambda ls: [ls[0].replace('"version":2', '"version":9'), *ls[1:]], "format version 9"),
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


def _rehashed(lines: list[str], edit: Callable[[dict[str, Any]], None]) -> list[str]:
    """The export with ``edit`` applied to every event, then every chain and the end
    record recomputed, as someone who knows the format would forge it."""
    records = [json.loads(line) for line in lines]
    heads: dict[str, tuple[int, str]] = {}
    formats: dict[str, int] = {}
    for record in records[1:-1]:
        edit(record)
        prev = heads.get(record["case_id"], (0, GENESIS_HASH))[1]
        fields = [record[k] for k in EVENT_KEYS[:9]]
        if record["seq"] == 1:  # the opening names the history's format
            formats[record["case_id"]] = (record.get("data") or {}).get("format", 1)
        v = formats.get(record["case_id"], 1)
        record["prev_hash"] = prev
        record["hash"] = chain_hash(prev, canonical_event(*fields, v))
        heads[record["case_id"]] = (record["seq"], record["hash"])
    records[-1].update(events=len(records) - 2, digest=export_digest(records[1:-1]))
    return [json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records]


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        ({"event": "escalate", "data": {}}, "'escalate' is not allowed"),
        ({"event": "sla_warning", "data": {"clock": 1, "cycle": 1}}, "is not allowed"),
        ({"occurred_at": "yesterday", "recorded_at": "yesterday"}, "is not a time"),
        ({"event": "wait", "data": {"reason": "lunch"}}, "'wait' is not allowed"),
        ({"event": "replan", "data": {"policy": "0" * 16}}, "'replan' is not allowed"),
    ],
)
def test_a_forged_event_with_consistent_hashes_is_named_not_crashed_on(
    engine: Engine,
    clock: FixedClock,
    db_url: str,
    tmp_path: Path,
    forge: dict[str, Any],
    reason: str,
) -> None:
    """A file rewritten whole with fresh hashes: the replay still names the bad event."""
    [first, *_] = sorted(_history(engine, clock))
    path = tmp_path / "history.jsonl"
    _export(db_url, path)

    def edit(record: dict[str, Any]) -> None:
        if (record["case_id"], record["seq"]) == (first, 2):
            record.update(forge, from_state=record["to_state"])

    path.write_text("".join(_rehashed(_lines(path), edit)), encoding="utf-8")
    code, report = _verify(path)
    assert code == 1, report
    [problem] = report["problems"]  # type: ignore[misc]
    assert (problem["case_id"], problem["seq"]) == (first, 2)
    assert reason in problem["reason"]


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


def _keys(tmp_path: Path) -> tuple[Path, Path]:
    key = tmp_path / "signing.key"
    result = CliRunner().invoke(main, ["keys", "generate", "--key", str(key)])
    assert result.exit_code == 0, result.output
    return key, tmp_path / "signing.key.pub"


def _checkpoint(db_url: str, key: Path, out: Path, at: FixedClock) -> None:
    """A checkpoint as at the test clock's now (the CLI's own clock is the real one)."""
    result = CliRunner().invoke(
        main,
        ["--db", db_url, "checkpoint", "--key", str(key), "--out", str(out),
         "--at", at.now().isoformat()],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def _verify_checkpoint(db_url: str, checkpoint: Path, keyring: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["--db", db_url, "verify", "--checkpoint", str(checkpoint), "--keyring", str(keyring)],
    )
    return result.exit_code, result.output


def _rewrite_note(engine: Engine, case_id: str, seq: int, note: str) -> None:
    """An attacker with write access edits an event and recomputes every later hash."""
    from sqlalchemy import select, text, update

    from casework.storage import canonical_event, chain_hash
    from casework.storage.tables import cases_table, events_table

    with engine.db.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS events_no_update"))
        rows = conn.execute(
            select(events_table)
            .where(events_table.c.case_id == case_id)
            .order_by(events_table.c.seq)
        ).all()
        prev = rows[0].prev_hash
        for row in rows:
            data = dict(row.data)
            if row.seq == seq:
                data["note"] = note
            digest = chain_hash(
                prev,
                canonical_event(
                    row.case_id, row.seq, row.event, row.from_state, row.to_state, row.actor,
                    row.occurred_at, row.recorded_at, data, rows[0].data.get("format", 1),
                ),
            )  # fmt: skip
            conn.execute(
                update(events_table)
                .where(events_table.c.case_id == case_id, events_table.c.seq == row.seq)
                .values(data=data, prev_hash=prev, hash=digest)
            )
            prev = digest
        conn.execute(update(cases_table).where(cases_table.c.id == case_id).values(head_hash=prev))


def test_a_checkpoint_catches_a_chain_rewritten_with_fresh_hashes(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    """The rewrite passes `verify`; `verify --checkpoint` proves it happened."""
    key, keyring = _keys(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    [case_id, *_] = _history(engine, clock)
    engine.fire(case_id, "note", actor="li.na", note="Customer called, angry")
    clock.advance(timedelta(minutes=5))
    checkpoint = tmp_path / "cp.json"
    _checkpoint(db_url, key, checkpoint, clock)
    assert _verify_checkpoint(db_url, checkpoint, keyring)[0] == 0
    clock.advance(timedelta(hours=1))
    engine.fire(case_id, "note", actor="li.na", note="Later events are fine")
    code, output = _verify_checkpoint(db_url, checkpoint, keyring)
    assert code == 0, output
    seq = next(
        e.seq for e in engine.history(case_id) if e.data.get("note") == "Customer called, angry"
    )
    _rewrite_note(engine, case_id, seq, "Customer called, happy")
    assert engine.verify().ok  # internally consistent: plain verification cannot tell
    code, output = _verify_checkpoint(db_url, checkpoint, keyring)
    assert code == 1
    assert "no longer matches the checkpoint" in output


def test_a_checkpoint_from_another_key_or_database_or_altered_is_refused(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    """Wrong key, edited statement, another database: each named, exit 1."""
    _history(engine, clock)
    key, keyring = _keys(tmp_path)
    (tmp_path / "other").mkdir()
    other_key, _ = _keys(tmp_path / "other")
    stranger = tmp_path / "stranger.json"
    _checkpoint(db_url, other_key, stranger, clock)
    code, output = _verify_checkpoint(db_url, stranger, keyring)
    assert code == 1
    assert "not in the keyring" in output
    checkpoint = tmp_path / "cp.json"
    _checkpoint(db_url, key, checkpoint, clock)
    edited = tmp_path / "edited.json"
    document = json.loads(checkpoint.read_text())
    document["statement"]["events"] += 1
    edited.write_text(json.dumps(document))
    code, output = _verify_checkpoint(db_url, edited, keyring)
    assert code == 1
    assert "the checkpoint was altered" in output
    elsewhere = f"sqlite:///{tmp_path}/elsewhere.db"
    Engine.open(elsewhere).close()
    code, output = _verify_checkpoint(elsewhere, checkpoint, keyring)
    assert code == 1
    assert "a checkpoint of another database" in output


def test_keys_rotate_and_old_checkpoints_still_verify(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    """After rotation the new key signs; the keyring still verifies the old checkpoint."""
    _history(engine, clock)
    key, keyring = _keys(tmp_path)
    old = tmp_path / "old.json"
    _checkpoint(db_url, key, old, clock)
    result = CliRunner().invoke(main, ["keys", "rotate", "--key", str(key)])
    assert result.exit_code == 0, result.output
    new = tmp_path / "new.json"
    _checkpoint(db_url, key, new, clock)
    assert (
        json.loads(old.read_text())["statement"]["key_id"]
        != json.loads(new.read_text())["statement"]["key_id"]
    )
    assert len(keyring.read_text().splitlines()) == 2
    for checkpoint in (old, new):
        assert _verify_checkpoint(db_url, checkpoint, keyring)[0] == 0


def test_key_and_checkpoint_mistakes_are_refused(db_url: str, tmp_path: Path) -> None:
    """An existing key file, a key open to others, a file that is no checkpoint: exit 2."""
    key, keyring = _keys(tmp_path)
    again = CliRunner().invoke(main, ["keys", "generate", "--key", str(key)])
    assert again.exit_code == 2
    key.chmod(0o644)
    loose = CliRunner().invoke(main, ["--db", db_url, "checkpoint", "--key", str(key)])
    assert loose.exit_code == 2
    assert "chmod 600" in loose.output
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": 1}')
    code, output = _verify_checkpoint(db_url, junk, keyring)
    assert code == 2
    assert "is not a casework checkpoint" in output
    nokey = CliRunner().invoke(
        main, ["--db", db_url, "checkpoint"], env={"CASEWORK_SIGNING_KEY": ""}
    )
    assert nokey.exit_code == 2


def test_replay_at_an_instant_shows_the_clocks_as_they_stood(
    engine: Engine, clock: FixedClock, db_url: str
) -> None:
    """Used, remaining, paused and breached, at two instants of one case."""
    case_id = open_sample(engine)
    clock.advance(timedelta(hours=2))
    engine.fire(case_id, "wait", actor="li.na", data={"reason": "customer"})
    clock.advance(timedelta(hours=5))
    engine.fire(case_id, "resume", actor="li.na")
    clock.advance(timedelta(hours=30))
    engine.process_due()
    paused = engine.replay(case_id, clock.now() - timedelta(hours=32)).sla
    first = next(c for c in paused["clocks"] if c["clock"] == "first_response")
    assert paused["waiting"] == "customer"
    assert first["paused"]
    assert first["used_s"] == 2 * 3600
    assert first["remaining_s"] == 22 * 3600
    late = engine.replay(case_id, clock.now()).sla
    first = next(c for c in late["clocks"] if c["clock"] == "first_response")
    assert first["breached"]
    assert first["overdue_s"] == 8 * 3600  # 2 h before the pause, 30 h after it, of 24
    assert first["level"] == 2
    result = CliRunner().invoke(
        main, ["--db", db_url, "replay", case_id, "--at", clock.now().isoformat()]
    )
    assert "first_response #1: 1d 8h used of 1d; BREACHED by 8h, level 2" in result.output


@pytest.mark.slow
def test_the_case_report_renders_in_a_browser(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    """A breached, paused case: the page shows the verified chain, the clocks and events."""
    from tests.support.browser import render

    case_id = open_sample(engine, summary="师傅没来 <b>not bold</b>")
    clock.advance(timedelta(hours=2))
    engine.fire(case_id, "wait", actor="li.na", data={"reason": "customer"})
    clock.advance(timedelta(hours=3))
    engine.fire(case_id, "resume", actor="li.na")
    clock.advance(timedelta(hours=30))
    engine.process_due()
    page = tmp_path / "case.html"
    result = CliRunner().invoke(
        main, ["--db", db_url, "report", "case", case_id, "--html", str(page)]
    )
    assert result.exit_code == 0, result.output
    rendered = render(page, tmp_path)
    assert rendered.console_errors == []
    assert "Chain verified" in rendered.dom
    assert "师傅没来 &lt;b&gt;not bold&lt;/b&gt;" in rendered.dom
    assert rendered.dom.count("<svg") >= 1
    assert "Escalated" in rendered.dom  # the escalations in the timeline, by their label
    assert rendered.screenshot.stat().st_size > 10_000


SHARES = {  # the monthly complaint analysis of the material (DOMAIN.md), times five
    "missed_appointment": 190,
    "not_fixed_first_visit": 165,
    "service_delayed": 120,
    "other": 15,
    "unreasonable_charge": 10,
}


def _month(db_url: str) -> tuple[Engine, FixedClock]:
    """500 complaints received over November 2026 in three branches; 4 in 5 answered
    within two hours; one case passed on twice."""
    from datetime import UTC, datetime

    start = datetime(2026, 11, 1, tzinfo=UTC)
    clock = FixedClock(datetime(2026, 12, 5, tzinfo=UTC))
    engine = Engine.open(db_url, clock=clock)
    categories = [c for c, n in SHARES.items() for _ in range(n)]
    branches = ("Guangzhou", "Shenzhen", "Nanning")
    for n, category in enumerate(categories):
        received = start + timedelta(minutes=83 * n)
        case_id = open_sample(
            engine, category=category, branch=branches[n % 3], received_at=received,
            channel=("phone", "store", "letter", "web")[n % 4],
        )  # fmt: skip
        if n % 5:
            engine.fire(case_id, "apologise", actor="li.na", at=received + timedelta(hours=n % 3))
        if n == 7:
            for to in ("wang.wei", "zhao.lei"):
                engine.fire(
                    case_id,
                    "assign",
                    actor="li.na",
                    data={"to": to},
                    at=received + timedelta(hours=3),
                )
    engine.process_due()
    return engine, clock


@pytest.mark.slow
def test_the_business_reports_give_the_material_s_figures(db_url: str, tmp_path: Path) -> None:
    """Category shares 38/33/24/3/2, compliance, hand-overs and rates per 10,000 jobs;
    both pages render in a browser."""
    from tests.support.browser import render

    engine, _ = _month(db_url)
    engine.close()
    dispatch = tmp_path / "dispatch.csv"
    dispatch.write_text("branch,category,jobs\nGuangzhou,,100000\nShenzhen,other,50000\n")
    period = ["--from", "2026-11-01T00:00:00+00:00", "--to", "2026-12-01T00:00:00+00:00"]
    base = ["--db", db_url, "report"]
    runner = CliRunner()
    complaints = runner.invoke(
        main, [*base, "complaints", *period, "--dispatch", str(dispatch), "--json",
               "--html", str(tmp_path / "complaints.html")],
    )  # fmt: skip
    assert complaints.exit_code == 0, complaints.output
    figures = json.loads(complaints.stdout)
    assert figures["cases"] == 500
    shares = {r["category"]: r["share"] for r in figures["by_category"]}
    assert shares == {
        "missed_appointment": 38.0, "not_fixed_first_visit": 33.0, "service_delayed": 24.0,
        "other": 3.0, "unreasonable_charge": 2.0,
    }  # fmt: skip
    rates = {(r["branch"], r["category"]): r for r in figures["per_10000_jobs"]}
    guangzhou = figures["by_branch"]["Guangzhou"]
    assert rates[("Guangzhou", None)]["per_10000"] == round(guangzhou / 10, 2)
    assert rates[("Shenzhen", "other")]["complaints"] == 5
    sla = runner.invoke(
        main, [*base, "sla", *period, "--json", "--html", str(tmp_path / "sla.html")]
    )
    assert sla.exit_code == 0, sla.output
    report = json.loads(sla.stdout)
    first = next(r for r in report["clocks"] if r["name"] == "first_response")
    assert (first["met"], first["breached"], first["compliance"]) == (400, 100, 80.0)
    # li.na passed the case on once; its second move was made by li.na, no longer the owner
    assert report["handed_on_by"] == {"li.na": 1}
    (moved,) = report["handovers"]
    assert moved["moves"] == ["li.na -> wang.wei", "wang.wei -> zhao.lei (reassigned by li.na)"]
    assert report["escalations_by_level"]["1"] >= 100
    assert report["first_response_time"]["count"] == 400
    assert report["first_response_time"]["max_h"] == 2.0
    for page in ("complaints.html", "sla.html"):
        rendered = render(tmp_path / page, tmp_path)
        assert rendered.console_errors == []
        assert rendered.dom.count("<svg") >= 3


def test_reports_refuse_a_bad_period_or_dispatch_file(db_url: str, tmp_path: Path) -> None:
    """--to before --from, an unreadable date, a malformed CSV: exit 2, one line."""
    runner = CliRunner()
    base = ["--db", db_url, "report"]
    backwards = runner.invoke(
        main, [*base, "sla", "--from", "2026-12-01T00:00:00Z", "--to", "2026-11-01T00:00:00Z"]
    )
    assert backwards.exit_code == 2
    assert "--to must be later than --from" in backwards.output
    bad = runner.invoke(main, [*base, "sla", "--from", "last week", "--to", "2026-11-01T00:00:00Z"])
    assert bad.exit_code == 2
    dispatch = tmp_path / "dispatch.csv"
    dispatch.write_text("branch,jobs\nGuangzhou,many\n")
    broken = runner.invoke(
        main, [*base, "complaints", "--from", "2026-11-01T00:00:00Z", "--to",
               "2026-12-01T00:00:00Z", "--dispatch", str(dispatch)],
    )  # fmt: skip
    assert broken.exit_code == 2
    assert "dispatch.csv:2" in broken.output


def _auditor_url(db_url: str, tmp_path: Path) -> str:
    """A connection that can only read: a read-only SQLite file, or a SELECT-only role."""
    import uuid

    from sqlalchemy import create_engine, text

    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        path.chmod(0o444)
        return db_url
    role = f"auditor_{uuid.uuid4().hex[:8]}"
    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
        conn.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"))
    admin.dispose()
    return db_url.replace("postgres@", f"{role}@")


@pytest.mark.slow
def test_auditor_commands_work_on_a_read_only_connection(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    """verify, export, checkpoint, replay, history and the reports read only; with write
    access they say it is not needed."""
    [case_id, *_] = _history(engine, clock)
    key, keyring = _keys(tmp_path)
    engine.close()
    runner = CliRunner()
    writable = runner.invoke(main, ["--db", db_url, "verify", "--json"])
    assert writable.exit_code == 0
    assert "auditing needs only read access" in writable.stderr
    url = _auditor_url(db_url, tmp_path)
    period = ["--from", "2026-11-01T00:00:00Z", "--to", "2026-12-01T00:00:00Z"]
    commands = [
        ["verify", "--json", "--workers", "2"],
        ["export", "--out", str(tmp_path / "e.jsonl")],
        ["checkpoint", "--key", str(key), "--out", str(tmp_path / "cp.json"),
         "--at", clock.now().isoformat()],
        ["verify", "--checkpoint", str(tmp_path / "cp.json"), "--keyring", str(keyring)],
        ["replay", case_id, "--json"],
        ["history", case_id, "--json"],
        ["report", "case", case_id, "--html", str(tmp_path / "case.html")],
        ["report", "sla", *period, "--json"],
        ["report", "complaints", *period, "--json"],
    ]  # fmt: skip
    for command in commands:
        result = runner.invoke(main, ["--db", url, *command])
        assert result.exit_code == 0, (command, result.output)
        if url.startswith("postgresql"):  # root may write any file; a role is honest
            assert "auditing needs only read access" not in result.stderr
    refused = Engine.open(url, read_only=True)
    try:
        with pytest.raises(Exception, match=r"read-only|readonly"):
            open_sample(refused)
    finally:
        refused.close()
        _drop_role(db_url, url)


def _drop_role(db_url: str, url: str) -> None:
    """Roles outlive the throwaway database: drop the auditor's."""
    if not url.startswith("postgresql"):
        return
    from sqlalchemy import create_engine, text

    role = url.split("://", 1)[1].split("@", 1)[0]
    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP OWNED BY {role}"))
        conn.execute(text(f"DROP ROLE {role}"))
    admin.dispose()


def test_the_streamed_merkle_root_is_rfc_6962_s() -> None:
    """The constant-memory tree gives the recursive definition's root for any size."""
    from casework.storage.merkle import MerkleTree, reference_root

    for size in (*range(20), 31, 32, 33, 100):
        leaves = [f"leaf {n}".encode() for n in range(size)]
        tree = MerkleTree()
        for leaf in leaves:
            tree.add(leaf)
        assert tree.root() == reference_root(leaves), size


def test_verify_checkpoint_says_which_key_signed_what_and_that_it_holds(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    """The auditor sees the key id, the instant, the signed counts and root, and that
    they still hold; in JSON too."""
    _history(engine, clock)
    key, keyring = _keys(tmp_path)
    clock.advance(timedelta(minutes=5))
    checkpoint = tmp_path / "cp.json"
    _checkpoint(db_url, key, checkpoint, clock)
    signed = json.loads(checkpoint.read_text())["statement"]
    args = ["--db", db_url, "verify", "--checkpoint", str(checkpoint), "--keyring", str(keyring)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert f"signed by key {signed['key_id']} (signature valid)" in first
    assert f"history at {signed['at']}" in first
    assert f"its {signed['cases']} cases, {signed['events']} events" in first
    assert f"root {signed['root'][:16]}... still hold" in first
    result = CliRunner().invoke(main, [*args, "--json"])
    checked = json.loads(result.stdout)["checkpoint"]
    assert checked["key_id"] == signed["key_id"]
    assert checked["history_holds"] is True


def test_a_fault_of_the_export_file_is_said_as_one(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    """A cut export reads 'BROKEN export: ... no end record', with no count of cases."""
    _history(engine, clock)
    path = tmp_path / "history.jsonl"
    _export(db_url, path)
    path.write_text("".join(_lines(path)[:-1]), encoding="utf-8")
    result = CliRunner().invoke(main, ["verify", "--export", str(path)])
    assert result.exit_code == 1
    assert result.stdout == "BROKEN export: the export is truncated: it has no end record\n"


@pytest.mark.parametrize(
    ("column", "value"),
    [("received_at", "2026-11-01T00:00:00Z"), ("opened_at", "2026-11-01T00:00:00Z")],
)
def test_an_edited_case_column_is_named_by_verify_and_the_checkpoint(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path, column: str, value: str
) -> None:
    """Reports select by received_at: an edit of it (or opened_at) names case and column."""
    from datetime import datetime

    from sqlalchemy import update

    from casework.storage.tables import cases_table

    [case_id, *_] = _history(engine, clock)
    key, keyring = _keys(tmp_path)
    clock.advance(timedelta(minutes=5))
    checkpoint = tmp_path / "cp.json"
    _checkpoint(db_url, key, checkpoint, clock)
    with engine.db.begin() as conn:
        conn.execute(
            update(cases_table)
            .where(cases_table.c.id == case_id)
            .values({column: datetime.fromisoformat(value)})
        )
    [problem] = engine.verify().problems
    assert problem.case_id == case_id
    assert problem.reason.startswith(f"case row differs from its replay: {column} is")
    code, output = _verify_checkpoint(db_url, checkpoint, keyring)
    assert code == 1
    assert f"BROKEN case {case_id} case row: case row differs from its replay: {column}" in output


def test_an_edited_policy_document_is_named_by_verify_and_the_checkpoint(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    """Ladder recipients changed to an outside address in the stored policy: named."""
    from sqlalchemy import select, update

    from casework.storage.tables import policies_table

    _history(engine, clock)
    key, keyring = _keys(tmp_path)
    clock.advance(timedelta(minutes=5))
    checkpoint = tmp_path / "cp.json"
    _checkpoint(db_url, key, checkpoint, clock)
    with engine.db.begin() as conn:
        version, document = conn.execute(
            select(policies_table.c.version, policies_table.c.document)
        ).one()
        document["ladder"][0]["recipients"] = {"*": ["spy@evil.example"]}
        conn.execute(
            update(policies_table)
            .where(policies_table.c.version == version)
            .values(document=document)
        )
    with Engine.open(db_url, clock=clock) as fresh:
        problems = fresh.verify().problems
    assert [p.case_id for p in problems][:1] == ["(sla_policies)"]
    assert f"stored SLA policy {version}: its document does not match its digest" in (
        problems[0].reason
    )
    code, output = _verify_checkpoint(db_url, checkpoint, keyring)
    assert code == 1
    assert f"BROKEN SLA policies: stored SLA policy {version}" in output


def _recomputed_end(lines: list[str]) -> list[str]:
    """An editor's cover-up: the end record recomputed for the events left in the file."""
    events = [json.loads(line) for line in lines[1:-1]]
    end = json.loads(lines[-1])
    cases = len({event["case_id"] for event in events})
    end.update(cases=cases, events=len(events), digest=export_digest(events))
    return [*lines[:-1], json.dumps(end) + "\n"]


def _without_a_case(lines: list[str]) -> list[str]:
    victim = json.loads(lines[1])["case_id"]
    kept = [line for line in lines[1:-1] if json.loads(line)["case_id"] != victim]
    return _recomputed_end([lines[0], *kept, lines[-1]])


def _without_a_tail(lines: list[str]) -> list[str]:
    return _recomputed_end([*lines[:-2], lines[-1]])


def _edited_policy(lines: list[str]) -> list[str]:
    header = json.loads(lines[0])
    for document in header["policies"].values():
        document["ladder"][0]["recipients"] = {"*": ["spy@evil.example"]}
    return [json.dumps(header) + "\n", *lines[1:]]


def _hidden_by_since(lines: list[str]) -> list[str]:
    header = json.loads(lines[0])
    header["filters"]["since"] = "2026-11-23T01:30:00.000000+00:00"
    victim = json.loads(lines[1])["case_id"]
    kept = [
        line
        for line in lines[1:-1]
        if not line.startswith(f'{{"record":"event","case_id":"{victim}","seq":1,')
    ]
    return _recomputed_end([json.dumps(header) + "\n", *kept, lines[-1]])


@pytest.mark.parametrize(
    ("tamper", "unsigned", "signed"),
    [
        (_without_a_case, None, "the signature does not match the statement"),
        (_without_a_tail, None, "the signature does not match the statement"),
        (_edited_policy, "does not match its digest", "does not match its digest"),
        (_hidden_by_since, None, "the header is not the one that was signed"),
    ],
    ids=["a case removed", "a tail removed", "a policy edited", "events hidden by since"],
)
def test_a_signed_export_is_bound_to_what_it_claims(
    engine: Engine,
    clock: FixedClock,
    db_url: str,
    tmp_path: Path,
    tamper: Any,
    unsigned: str | None,
    signed: str,
) -> None:
    """A case or a tail removed with the end record recomputed, an edited policy, events
    dropped behind a forged since: an unsigned export cannot tell (but for the policy's
    digest); a signed one checked with the keyring names each."""
    _history(engine, clock, cases=4)
    clock.advance(timedelta(hours=30))
    engine.process_due()
    key, keyring = _keys(tmp_path)
    path = tmp_path / "signed.jsonl"
    _export(db_url, path, "--sign", str(key))
    runner = CliRunner()
    good = runner.invoke(main, ["verify", "--export", str(path), "--keyring", str(keyring)])
    assert good.exit_code == 0, good.output
    assert "export signed by key" in good.stdout
    path.write_text("".join(tamper(_lines(path))), encoding="utf-8")
    plain = runner.invoke(main, ["verify", "--export", str(path), "--json"])
    if unsigned is None:
        assert plain.exit_code == 0, plain.stdout
    else:
        assert unsigned in plain.stdout
    checked = runner.invoke(
        main, ["verify", "--export", str(path), "--keyring", str(keyring), "--json"]
    )
    assert checked.exit_code == 1
    reasons = " | ".join(p["reason"] for p in json.loads(checked.stdout)["problems"])
    assert signed in reasons


def test_an_unsigned_export_fails_a_check_that_requires_a_signature(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    _history(engine, clock)
    _, keyring = _keys(tmp_path)
    path = tmp_path / "plain.jsonl"
    _export(db_url, path)
    result = CliRunner().invoke(main, ["verify", "--export", str(path), "--keyring", str(keyring)])
    assert result.exit_code == 1
    assert "BROKEN export: the export is not signed" in result.stdout


def _edited_line(lines: list[str], fmt: str, edit: str) -> list[str]:
    """``lines`` with a personal value of an opening, or the machine version of a later
    event, changed (what no event hash covers)."""
    if fmt == "jsonl":
        records = [json.loads(line) for line in lines]
        if edit == "personal":
            opening = next(r for r in records if r.get("personal"))
            opening["personal"]["customer"] = "someone else"
        else:
            later = next(r for r in records if r.get("seq") == 2)
            later["machine_version"] = 7
        return [json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records]
    rows = list(csv.reader(lines))
    columns = rows[0]
    if edit == "personal":
        opening = next(r for r in rows[1:] if r[columns.index("personal")])
        personal = json.loads(opening[columns.index("personal")])
        personal["customer"] = "someone else"
        opening[columns.index("personal")] = json.dumps(personal, ensure_ascii=False)
    else:
        later = next(r for r in rows[1:] if r[columns.index("seq")] == "2")
        later[columns.index("machine_version")] = "7"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().splitlines(keepends=True)


@pytest.mark.parametrize("edit", ["personal", "machine_version"])
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_signed_export_covers_personal_values_and_machine_versions(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path, fmt: str, edit: str
) -> None:
    """A personal value beside an opening, or a later event's ``machine_version``,
    edited in a signed export fails ``verify --export --keyring``: as it stands (the
    digest no longer matches) and with the end record recomputed by someone who knows
    the format (the signature no longer matches)."""
    _history(engine, clock)
    key, keyring = _keys(tmp_path)
    path = tmp_path / f"signed.{fmt}"
    _export(db_url, path, "--format", fmt, "--sign", str(key))
    runner = CliRunner()
    check = ["verify", "--export", str(path), "--keyring", str(keyring), "--json"]
    assert runner.invoke(main, check).exit_code == 0
    edited = _edited_line(_lines(path), fmt, edit)
    path.write_text("".join(edited), encoding="utf-8")
    checked = runner.invoke(main, check)
    assert checked.exit_code == 1
    reasons = " | ".join(p["reason"] for p in json.loads(checked.stdout)["problems"])
    assert "records were added, removed or changed" in reasons
    if fmt == "jsonl":
        path.write_text("".join(_recomputed_end(edited)), encoding="utf-8")
        covered = runner.invoke(main, check)
        assert covered.exit_code == 1
        assert "the signature does not match" in covered.stdout


def test_a_signed_export_of_format_1_still_verifies_and_says_what_it_covers(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    """An export signed before format 2 checks as before; the check says that its
    signature leaves personal values and machine versions out."""
    from casework.workflow.audit.checkpoints import export_signer, load_private_key
    from casework.workflow.audit.export import end_statement, header_digest

    _history(engine, clock)
    key, keyring = _keys(tmp_path)
    path = tmp_path / "old.jsonl"
    _export(db_url, path)
    records = [json.loads(line) for line in _lines(path)]
    header, events, end = records[0], records[1:-1], records[-1]
    header["version"] = 1
    end["digest"] = export_digest(events, version=1)
    end["header_sha256"] = header_digest(header)
    statement = end_statement(end["header_sha256"], end["cases"], end["events"],
                              end["digest"], version=1)  # fmt: skip
    end["signature"] = export_signer(load_private_key(key))(statement)
    compact = (json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records)
    path.write_text("".join(line + "\n" for line in compact), encoding="utf-8")
    result = CliRunner().invoke(main, ["verify", "--export", str(path), "--keyring", str(keyring)])
    assert result.exit_code == 0, result.output
    assert "does not cover personal values nor machine versions" in result.stdout
