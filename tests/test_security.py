"""Secrets stay secret and the files casework writes are private."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from casework.workflow import Engine, FixedClock
from casework.workflow.cli import main
from tests.support import open_sample
from tests.support.mail_server import TestServer

PASSWORD = "pw-Zx9-never-shown"  # noqa: S105 - a test value to look for


def test_the_smtp_password_and_the_signing_key_never_reach_output_or_logs(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed and successful logins, a checkpoint and key rotation, at debug log level:
    neither the password nor any part of the private key is printed or logged."""
    smtp = TestServer(users={"casework": "something-else"})
    smtp.start()
    try:
        config = tmp_path / "casework.toml"
        config.write_text(
            f'[mail]\nurl = "{smtp.url}"\nusername = "casework"\nagent_domain = "example.com"\n'
        )
        clock = FixedClock(datetime.now(UTC) - timedelta(days=2))
        with Engine.open(db_url, clock=clock) as engine:
            open_sample(engine)
            clock.advance(timedelta(hours=30))
            engine.process_due()
        monkeypatch.setenv("CASEWORK_SMTP_PASSWORD", PASSWORD)
        runner = CliRunner()
        base = ["--db", db_url, "--config", str(config), "--log-level", "debug"]
        outputs = [runner.invoke(main, [*base, "deliver"]).output]
        smtp.users["casework"] = PASSWORD
        outputs.append(runner.invoke(main, [*base, "outbox", "--json"]).output)
        key = tmp_path / "signing.key"
        outputs.append(runner.invoke(main, ["keys", "generate", "--key", str(key)]).output)
        secret_lines = key.read_text().splitlines()[1:-1]
        outputs.append(runner.invoke(main, [*base, "checkpoint", "--key", str(key)]).output)
        outputs.append(runner.invoke(main, ["keys", "rotate", "--key", str(key)]).output)
    finally:
        smtp.stop()
    text = "\n".join(outputs)
    assert secret_lines  # the key's secret lines were read: the checks below are not empty
    assert "authentication failed" in text
    assert PASSWORD not in text
    assert all(line not in text for line in secret_lines)
    assert all(line not in (tmp_path / "signing.key.pub").read_text() for line in secret_lines)


def test_files_casework_writes_are_private(engine: Engine, db_url: str, tmp_path: Path) -> None:
    """Exports, checkpoints, reports and keys: mode 0600, whatever the umask."""
    import os

    case_id = open_sample(engine)
    old = os.umask(0o022)
    try:
        key = tmp_path / "k.key"
        runner = CliRunner()
        commands = [
            ["keys", "generate", "--key", str(key)],
            ["--db", db_url, "export", "--out", str(tmp_path / "e.jsonl")],
            ["--db", db_url, "checkpoint", "--key", str(key), "--out", str(tmp_path / "c.json")],
            ["--db", db_url, "report", "case", case_id, "--html", str(tmp_path / "r.html")],
        ]
        for command in commands:
            result = runner.invoke(main, command)
            assert result.exit_code == 0, result.output
    finally:
        os.umask(old)
    for name in ("k.key", "e.jsonl", "c.json", "r.html"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
