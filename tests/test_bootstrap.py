"""One bootstrap: the command line and each ``casework serve`` process resolve (arguments,
environment) to an engine the same way: the argument, else the environment variable,
else the default; serve hands what it resolved to its processes as their environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from casework.storage.records import CaseQuery
from casework.workflow.api.server import app_from_environment
from casework.workflow.bootstrap import (
    DEFAULT_DB,
    Startup,
    engine_from,
    environment,
    startup,
)
from casework.workflow.cli import main
from casework.workflow.engine import Engine

CONFIG = '[intake]\nchannels = ["wechat"]\n'


def test_an_argument_comes_before_the_environment_and_the_environment_before_the_default(
    tmp_path: Path,
) -> None:
    assert startup({}, {}) == Startup(DEFAULT_DB)
    environ = {"CASEWORK_DATABASE_URL": "sqlite:///env.db", "CASEWORK_DB_SCHEMA": "cw",
               "CASEWORK_READ_DATABASE_URL": "sqlite:///standby.db"}  # fmt: skip
    found = startup({"db_url": "sqlite:///given.db", "db_schema": ""}, environ)
    assert found == Startup("sqlite:///given.db", "sqlite:///standby.db", None, "cw")
    assert found.opening() == ("sqlite:///given.db", False)
    assert found.opening(reads=True) == ("sqlite:///standby.db", True)
    assert Startup("sqlite:///a.db").opening(reads=True) == ("sqlite:///a.db", False)
    config = tmp_path / "casework.toml"
    handed = environment(Startup("sqlite:///a.db", config_path="casework.toml"))
    assert set(handed) == {"CASEWORK_DATABASE_URL", "CASEWORK_CONFIG"}
    assert Path(handed["CASEWORK_CONFIG"]).is_absolute()  # a process elsewhere finds it
    again = Startup("sqlite:///a.db", "sqlite:///b.db", str(config), "cw", "cw_")
    assert startup({}, environment(again)) == again


def test_the_command_line_and_a_server_process_open_the_same_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "casework.toml").write_text(CONFIG, encoding="utf-8")
    url, standby = (f"sqlite:///{tmp_path / name}" for name in ("c.db", "standby.db"))
    Engine.open(standby).close()  # a standby of its own: migrated, and empty
    given = {"db_url": url, "read_db": standby, "config_path": str(tmp_path / "casework.toml")}
    with engine_from(given, {}) as engine:
        assert "wechat" in engine.settings.channels  # the settings file read
        engine.open_case(customer="C-1", channel="wechat", category="other", summary="s")
    environ = environment(startup(given, {}))
    listed = CliRunner().invoke(main, ["list", "--json"], env=environ)
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output) == []  # a listing reads the standby
    intake = ["--customer", "C-2", "--channel", "wechat", "--category", "other", "--summary", "s"]
    opened = CliRunner().invoke(main, ["open", *intake], env=environ)
    assert opened.exit_code == 0, opened.output  # a write goes to the database
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    app = app_from_environment()
    while not hasattr(app, "state"):  # the application inside its middleware
        app = app.app
    engine, reader = app.state.engine, app.state.read_engine
    try:
        assert "wechat" in engine.settings.channels
        assert sorted(c.customer for c in engine.page(CaseQuery()).items) == ["C-1", "C-2"]
        assert reader is not None
        assert reader.page(CaseQuery()).items == []
    finally:
        engine.close()
        reader.close()
