"""Registered machines are equal: a back office's own machine brings its own SLA policy,
intake and engine events, through the API, the CLI, the worker and ``verify --export``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from statemachine import State, StateChart

from casework.machines import (
    COMPLAINT_V1,
    COMPLAINT_V2,
    AttributeSpec,
    Checks,
    MachineDefinition,
    MachineRegistry,
    Relations,
    RepeatRule,
)
from casework.workflow import ConfigError, Engine, FixedClock, InvalidInput, UnknownEvent
from casework.workflow.cli import main
from casework.workflow.config import settings_from_mapping
from tests.support import open_sample, wait_until
from tests.support.repair_machine import REPAIR_V1

ROOT = Path(__file__).resolve().parent.parent
H = timedelta(hours=1)
REGISTRY = MachineRegistry([COMPLAINT_V1, REPAIR_V1])


def _repair(engine: Engine, **extra: object) -> str:
    return engine.open_case(
        customer="C-9", summary="Screen flickers", machine="repair", actor="li.na",
        attributes={"serial_number": "SN-123"}, **extra,  # type: ignore[arg-type]
    ).id  # fmt: skip


def test_a_repair_order_runs_on_its_own_clock(db_url: str, clock: FixedClock) -> None:
    """No channel or category needed, its own turnaround clock and ladder, no waiting;
    the complaint machine beside it keeps its own rules."""
    with Engine.open(db_url, clock=clock, registry=REGISTRY) as engine:
        order = _repair(engine)
        complaint = open_sample(engine)
        case = engine.get(order)
        assert (case.channel, case.category) == (None, None)
        assert {d["clock"] for d in case.deadlines} == {"turnaround"}
        with pytest.raises(UnknownEvent, match="repair has no event 'wait'"):
            engine.fire(order, "wait", actor="li.na", data={"reason": "part"})
        with pytest.raises(InvalidInput, match="needs channel and category"):
            engine.open_case(customer="C", summary="s")
        engine.fire(complaint, "wait", actor="li.na", data={"reason": "part"})
        clock.advance(72 * H)
        fired = engine.process_due()
        assert {(f.case_id, f.clock, f.level) for f in fired if f.case_id == order} == {
            (order, "turnaround", 0),
            (order, "turnaround", 1),
        }
        [escalation] = [e for e in engine.history(order) if e.event == "escalate"]
        assert escalation.data["clock"] == "turnaround"
        engine.fire(order, "diagnose", actor="li.na")
        engine.fire(order, "repair", actor="li.na")
        assert {d["clock"] for d in engine.get(order).deadlines} == {"pickup"}
        assert engine.verify().ok


def test_configuration_replaces_a_machine_s_policy_checked_against_its_states(
    db_url: str, clock: FixedClock
) -> None:
    """[machines.repair.sla] is checked against the repair order's own states."""
    ladder = REPAIR_V1.sla["ladder"]  # type: ignore[index]
    bad = {"clocks": {"c": {"runs_in": ["received"], "within_s": 60}}, "ladder": ladder}
    settings = settings_from_mapping({"machines": {"repair": {"sla": bad}}}, "casework.toml")
    with pytest.raises(ConfigError, match=r"casework.toml: machines.repair.sla.clocks.c.runs_in"):
        Engine.open(db_url, clock=clock, registry=REGISTRY, config=settings)
    good = {"clocks": {"quick": {"runs_in": ["booked"], "within_s": 3600}}, "ladder": ladder}
    settings = settings_from_mapping({"machines": {"repair": {"sla": good}}}, "casework.toml")
    with Engine.open(db_url, clock=clock, registry=REGISTRY, config=settings) as engine:
        assert {d["clock"] for d in engine.get(_repair(engine)).deadlines} == {"quick"}


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The repair machine installed under ``casework.machines``, as a back office's
    package would be: its entry point on the path of this process and of the children."""
    dist = tmp_path / "site" / "casework_repair-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: casework-repair\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[casework.machines]\nrepair = tests.support.repair_machine:REPAIR_V1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    path = os.pathsep.join([str(tmp_path / "site"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


@pytest.mark.slow
def test_the_cli_the_worker_and_an_export_check_take_the_second_machine(
    db_url: str, tmp_path: Path, installed: dict[str, str]
) -> None:
    """Opened through the CLI four days ago, escalated by a real worker, exported and
    checked from the file alone."""
    runner = CliRunner()
    received = (datetime.now(UTC) - 96 * H).isoformat()
    opened = runner.invoke(
        main,
        ["--db", db_url, "open", "--machine", "repair", "--customer", "C-9", "--summary",
         "Screen flickers", "--attr", "serial_number=SN-1", "--actor", "li.na",
         "--received-at", received],
    )  # fmt: skip
    assert opened.exit_code == 0, opened.output
    order = opened.stdout.strip()
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "casework.workflow.cli", "--db", db_url, "worker", "--poll", "0.2",
         "--no-mail"],
        env=installed, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    try:

        def escalated() -> bool:
            shown = runner.invoke(main, ["--db", db_url, "history", order, "--json"]).stdout
            return any(e["event"] == "escalate" for e in json.loads(shown))

        wait_until(escalated, what="the worker to escalate the repair order")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        log.close()
    assert worker.returncode == 0
    export = tmp_path / "all.jsonl"
    result = runner.invoke(main, ["--db", db_url, "export", "--out", str(export)])
    assert result.exit_code == 0, result.output
    checked = runner.invoke(main, ["verify", "--export", str(export), "--json"])
    assert json.loads(checked.stdout)["ok"] is True, checked.stdout
    assert runner.invoke(main, ["--db", db_url, "verify"]).exit_code == 0


def test_the_opening_binds_the_case_to_its_machine(db_url: str, clock: FixedClock) -> None:
    """A case row moved to another machine (or version) is named by ``verify``."""
    from dataclasses import replace

    from sqlalchemy import update

    from casework.storage.tables import cases_table

    later = replace(COMPLAINT_V1, version=2)  # the same rules: only the opening tells
    registry = MachineRegistry([COMPLAINT_V1, later])
    with Engine.open(db_url, clock=clock, registry=registry) as engine:
        case_id = open_sample(engine, machine="complaint")
        with engine.db.begin() as conn:
            conn.execute(
                update(cases_table).where(cases_table.c.id == case_id).values(machine_version=1)
            )
        [problem] = engine.verify().problems
    assert "machine_version is 1, replay gives 2" in problem.reason


class _RelatingChart(StateChart[Any]):
    """A return order that is related to others by ``relate`` and never merged."""

    allow_event_without_transition = False
    catch_errors_as_events = False
    atomic_configuration_update = True

    open_ = State("Open", initial=True)
    done = State("Done", final=True)

    relate = open_.to.itself(internal=True)
    finish = open_.to(done)


RETURNS_V1 = MachineDefinition(
    name="returns",
    version=1,
    chart=_RelatingChart,
    attributes={"order_number": AttributeSpec(max_length=80)},
    intake=(),
    agent_events=(),
    relations=Relations(
        link="relate", merge=None, merged=None,
        repeat=RepeatRule("order_number", window=timedelta(days=7), category=None),
    ),
)  # fmt: skip


def test_a_machine_declares_its_own_repeats(db_url: str, clock: FixedClock) -> None:
    """The returns machine finds a repeat by its order number within its own week and
    links it with its own event, without going up the ladder."""
    registry = MachineRegistry([COMPLAINT_V2, RETURNS_V1])

    def opened(order: str) -> str:
        attributes = {"order_number": order}
        return engine.open_case(
            customer="C-1", summary="s", machine="returns", actor="li.na", attributes=attributes
        ).id

    with Engine.open(db_url, clock=clock, registry=registry) as engine:
        first = opened("O-1")
        clock.advance(6 * 24 * H)
        again = opened("O-1")
        [link] = [e for e in engine.history(again) if e.event == "relate"]
        assert (link.data, link.actor) == (
            {"case": first, "kind": "repeat", "repeat_of": first},
            "casework",
        )
        assert (engine.get(again).state, engine.get(again).escalation_level) == ("open_", 0)
        assert [r["case"] for r in engine.related(again)] == [first]
        clock.advance(2 * 24 * H)
        late = opened("O-1")  # a week and more after the first: not a repeat
        assert [r["case"] for r in engine.related(late)] == [again]
        assert engine.verify().ok


def test_relations_and_checks_name_the_machine_s_own_events() -> None:
    with pytest.raises(ValueError, match=r"returns: relations or checks name unknown events"):
        replace(RETURNS_V1, relations=Relations(link="link"))
    with pytest.raises(ValueError, match=r"\['decide_remedy'\]"):
        replace(RETURNS_V1, checks=Checks(remedy=("decide_remedy",)))
