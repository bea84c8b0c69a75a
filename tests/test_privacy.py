"""Personal data kept out of the hashed history and erased while every chain,
checkpoint and report stays valid: proven by searching the raw database files."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from casework.storage.records import Remembered
from casework.workflow import Engine, FixedClock, InvalidInput, Settings
from casework.workflow.cli import main
from casework.workflow.config import WebhookSettings
from casework.workflow.display.periods import period_of
from casework.workflow.privacy.commitments import commit
from casework.workflow.reports.business import complaints_report, sla_report
from casework.workflow.webhooks.subscriptions import add
from tests.support import open_sample, run_due, snapshot

H = timedelta(hours=1)
NAME, PHONE, ADDRESS = "张伟", "+86 138 0013 8000", "东莞市长安镇乌沙路1号"
SECRETS = (NAME, PHONE, ADDRESS)


def _zhang(engine: Engine, **extra: Any) -> str:
    return open_sample(engine, customer=NAME, contact=PHONE, branch="东莞长安店",
                       attributes={"address": ADDRESS}, **extra)  # fmt: skip


def _raw_files(engine: Engine) -> list[Path]:
    """The files the database keeps its tables in: SQLite's file and log, PostgreSQL's
    database folder (after a checkpoint, so nothing waits in memory only)."""
    url = engine.db.url
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists()]
    with engine.db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        from sqlalchemy import text

        conn.execute(text("CHECKPOINT"))
        folder = conn.execute(
            text(
                "SELECT current_setting('data_directory') || '/base/' || oid "
                "FROM pg_database WHERE datname = current_database()"
            )
        ).scalar_one()
    return [p for p in Path(folder).iterdir() if p.is_file()]


def _found(engine: Engine, values: tuple[str, ...]) -> set[str]:
    """Which of ``values`` (as UTF-8) lie anywhere in the raw files."""
    found = set()
    for path in _raw_files(engine):
        content = path.read_bytes()
        found |= {v for v in values if v.encode() in content}
    return found


def test_a_new_history_holds_commitments_not_values(engine: Engine) -> None:
    case_id = _zhang(engine)
    case = engine.get(case_id)
    assert (case.customer, case.contact, case.attributes["address"]) == SECRETS
    assert case.event_format == 2
    opening = engine.history(case_id)[0].data
    assert opening["format"] == 2
    for name, value in (("customer", NAME), ("contact", PHONE)):
        assert opening[name].startswith("hmac-sha256:")
        assert value not in json.dumps(opening, ensure_ascii=False)
    assert opening["attributes"]["address"].startswith("hmac-sha256:")
    assert engine.verify().ok
    # the same customer's next case is keyed by the same secret
    second = _zhang(engine)
    assert engine.history(second)[0].data["subject"] == opening["subject"]


def test_erasure_keeps_every_chain_checkpoint_and_count_and_leaves_no_trace(
    engine: Engine, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    zhang = [_zhang(engine), _zhang(engine, channel="regulator")]
    engine.fire(zhang[1], "withdraw", actor="li.na")
    other = open_sample(engine, customer="李雷", contact="+86 139 0000 0001")
    add(engine.context.store, "http://127.0.0.1:9/hook", "*",
        WebhookSettings(allowed_hosts=("127.0.0.1",)), clock.now())  # fmt: skip
    engine.fire(zhang[0], "note", actor="li.na", note="回电")  # a webhook payload names him
    clock.advance(30 * H)
    assert run_due(engine, clock.now())  # his escalation mails name him
    answer = Remembered("h", 201, engine.get(zhang[0]).to_json(), None, clock.now())
    engine.context.store.access.remember("tok1", "key1", answer)
    assert _found(engine, SECRETS) == set(SECRETS)  # the test can see them, before
    key = tmp_path / "k.key"
    assert CliRunner().invoke(main, ["keys", "generate", "--key", str(key)]).exit_code == 0
    checkpoint = tmp_path / "cp.json"
    made = CliRunner().invoke(main, ["--db", db_url, "checkpoint", "--key", str(key), "--out",
                                     str(checkpoint), "--at", clock.now().isoformat()])  # fmt: skip
    assert made.exit_code == 0, made.output
    clock.advance(H)  # the checkpoint states the history recorded by an instant before
    period, _ = period_of(month="2026-11", zone=UTC, now=clock.now())
    before = complaints_report(engine.context, period), sla_report(engine.context, period)

    summary = engine.erase(NAME, actor="dpo", reason="本人申请删除 #PIPL-42")

    assert summary["cases"] == sorted(zhang)
    assert summary["fields"] == ["attributes.address", "contact", "customer"]
    assert engine.verify().ok
    checked = CliRunner().invoke(main, ["--db", db_url, "verify", "--checkpoint", str(checkpoint),
                                        "--keyring", f"{key}.pub"])  # fmt: skip
    assert checked.exit_code == 0, checked.output
    after = complaints_report(engine.context, period), sla_report(engine.context, period)
    for report_before, report_after in zip(before, after, strict=True):
        assert _counts(report_before) == _counts(report_after)
    for case_id in zhang:
        case = engine.get(case_id)
        assert (case.customer, case.contact, case.attributes["address"]) == (
            "[erased]",
            "[erased]",
            "[erased]",
        )
        assert engine.history(case_id)[-1].event == "erased"
    assert engine.get(other).customer == "李雷"
    exported = CliRunner().invoke(main, ["--db", db_url, "export"])
    assert exported.exit_code == 0
    assert '"personal":{"customer":"[erased]"' in exported.stdout
    assert not any(v in exported.stdout for v in SECRETS)
    assert "李雷" in exported.stdout
    assert _found(engine, SECRETS) == set()
    with pytest.raises(InvalidInput, match="no case names this customer"):
        engine.erase(NAME, actor="dpo", reason="again")


def _counts(report: dict[str, Any]) -> str:
    """A report without the instant it was made."""
    return json.dumps({k: v for k, v in report.items() if not k.startswith("generated")},
                      sort_keys=True, default=str)  # fmt: skip


def test_verify_names_a_kept_value_altered_or_deleted_behind_the_engine(engine: Engine) -> None:
    from sqlalchemy import delete, update

    from casework.storage.tables import personal_table

    altered, deleted = _zhang(engine), open_sample(engine, customer="李雷")
    with engine.db.begin() as conn:
        conn.execute(update(personal_table).where(personal_table.c.case_id == altered,
                                                  personal_table.c.field == "contact")
                     .values(value="+86 138 9999 9999"))  # fmt: skip
        conn.execute(delete(personal_table).where(personal_table.c.case_id == deleted))
    report = engine.verify()
    reasons = {(p.case_id, p.reason.split(":")[0]) for p in report.problems}
    assert (altered, "the kept contact does not match the commitment of the opening event") in {
        (c, r) for c, r in reasons
    }
    assert any(c == deleted and "deleted behind the engine's back" in r for c, r in
               ((p.case_id, p.reason) for p in report.problems))  # fmt: skip


def test_a_redacted_export_has_no_values_and_verifies(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    _zhang(engine)
    out = tmp_path / "redacted.jsonl"
    done = CliRunner().invoke(main, ["--db", db_url, "export", "--redact", "--out", str(out)])
    assert done.exit_code == 0, done.output
    text = out.read_text(encoding="utf-8")
    assert not any(v in text for v in SECRETS)
    assert '"redacted":true' in text
    checked = CliRunner().invoke(main, ["verify", "--export", str(out)])
    assert checked.exit_code == 0, checked.output
    full = tmp_path / "full.csv"
    done = CliRunner().invoke(main, ["--db", db_url, "export", "--format", "csv", "--out",
                                     str(full)])  # fmt: skip
    assert NAME in full.read_text(encoding="utf-8")
    assert CliRunner().invoke(main, ["verify", "--export", str(full)]).exit_code == 0


def test_a_commitment_can_be_checked_with_the_value_and_the_secret(engine: Engine) -> None:
    case_id = _zhang(engine)
    opening = engine.history(case_id)[0].data
    with engine.db.connect() as conn:
        from sqlalchemy import text

        secret = conn.execute(text("SELECT secret FROM subjects")).scalar_one()
    assert commit(secret, case_id, "customer", NAME) == opening["customer"]
    assert commit(secret, case_id, "customer", "张三") != opening["customer"]


def test_retention_erases_customers_whose_cases_all_rested_long_enough(
    db_url: str, clock: FixedClock
) -> None:
    settings = Settings(erase_after=timedelta(days=30))
    with Engine.open(db_url, clock=clock, config=settings) as engine:
        done = _zhang(engine)
        for event in ("apologise", "confirm_needs"):
            engine.fire(done, event, actor="li.na")
        engine.fire(done, "resolve", actor="li.na", data={"solution": "换机"})
        engine.fire(done, "follow_up", actor="li.na", data={"satisfaction": 5})
        still_open = open_sample(engine, customer="李雷")
        clock.advance(timedelta(days=29))
        assert engine.erase_due(dry_run=True)["cases"] == []
        clock.advance(timedelta(days=2))
        before = snapshot(engine)
        planned = engine.erase_due(dry_run=True)
        assert planned == {"dry_run": True, "customers": 1, "cases": [done], "expunged": None}
        assert engine.erase(NAME, actor="dpo", reason="request", dry_run=True)["cases"] == [done]
        assert snapshot(engine) == before  # a dry run writes nothing
        assert engine.get(done).customer == NAME
        erased = engine.erase_due()
        assert erased["cases"] == [done]
        assert engine.get(done).customer == "[erased]"
        assert engine.get(still_open).customer == "李雷"
        assert engine.history(done)[-1].actor == "casework"
        assert engine.erase_due()["customers"] == 0
        assert engine.verify().ok


def test_the_command_erases_names_no_value_and_refuses_bad_input(
    db_url: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    opened = runner.invoke(main, ["--db", db_url, "open", "--customer", NAME, "--contact", PHONE,
                                  "--channel", "phone", "--category", "other", "--summary",
                                  "没人来", "--actor", "li.na"])  # fmt: skip
    assert opened.exit_code == 0, opened.output
    case_id = opened.stdout.strip()
    missing = runner.invoke(main, ["--db", db_url, "erase", "--customer", NAME])
    assert missing.exit_code == 2
    assert "missing options: --actor, --reason" in missing.output
    assert runner.invoke(main, ["--db", db_url, "erase", "--due"]).exit_code == 2
    done = subprocess.run(
        [sys.executable, "-m", "casework.workflow.cli", "--db", db_url, "--log-level", "debug",
         "erase", "--customer", NAME, "--actor", "dpo", "--reason", "request #42", "--json"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cases"] == [case_id]
    assert not any(v in done.stdout + done.stderr for v in SECRETS)  # not in logs either
    verify = runner.invoke(main, ["--db", db_url, "verify"])
    assert verify.exit_code == 0, verify.output


def test_format_1_histories_are_read_as_they_are_and_refuse_erasure(
    engine: Engine, clock: FixedClock
) -> None:
    """A case opened before personal data was kept apart holds the customer inside its
    hashed opening: it verifies as ever, and an erasure says why it cannot."""
    from casework.machines import CaseRules
    from casework.workflow.cases.opening import opened_case, opening_data
    from casework.workflow.transitions import profile_of

    definition = engine.registry.get("complaint")
    opening = opening_data(engine.settings, definition, customer=NAME, summary="旧案",
                           channel="phone", category="other", actor="li.na", contact=None,
                           branch=None, priority="normal", attributes=None)  # fmt: skip
    opening["policy"] = None
    rules = CaseRules(definition, {}, profile_of(opening))
    case, event, _ = opened_case("00000000000000aa", rules, opening, "li.na", clock.now(),
                                 clock.now())  # fmt: skip
    with engine.context.store.transaction() as cursor:
        engine.context.store.cases.insert(cursor, case, event)
    assert engine.get("00000000000000aa").event_format == 1
    assert engine.history("00000000000000aa")[0].data["customer"] == NAME
    assert engine.verify().ok
    before = snapshot(engine)
    with pytest.raises(InvalidInput, match="event format 1"):
        engine.erase(NAME, actor="dpo", reason="request")
    assert snapshot(engine) == before  # refused whole: not a row written nor erased
    assert engine.history("00000000000000aa")[0].data["customer"] == NAME
