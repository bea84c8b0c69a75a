"""The organisation's three levels (seed 003: 总部 HQ, 分部 branch, 门店 store): a branch
token sees and acts on its stores' cases, a store token on its store's only, a token
without a branch on every case; lists filtered by a branch include its stores; reports
roll up store -> branch -> company with a total row.

Against the real API server on loopback and the command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from casework.workflow import Engine, FixedClock
from casework.workflow.access.organisation import Organisation, organisation, rollup
from casework.workflow.cli import main
from casework.workflow.config import Settings, settings_from_mapping
from casework.workflow.errors import ConfigError
from casework.workflow.webhooks.settings import WebhookSettings
from tests.support import CHANG_AN, DG, GZ, HU_MEN, ORGANISATION, TIAN_HE
from tests.support.api_server import Served, serving

TOML = ORGANISATION
INTAKE = {"channel": "phone", "category": "service_delayed", "summary": "师傅没有按约上门",
          "actor": "li.na"}  # fmt: skip
HOOKS = "erp.example.com"
UNITS = {"c-changan": CHANG_AN, "c-humen": HU_MEN, "c-dg": DG, "c-tianhe": TIAN_HE}


def _settings() -> Settings:
    import tomllib

    return settings_from_mapping(tomllib.loads(TOML), "casework.toml")


def test_stores_belong_to_branches_and_a_scope_covers_its_stores() -> None:
    org = _settings().organisation
    assert org.company == "总部"
    assert org.covered(DG) == {DG, CHANG_AN, HU_MEN}
    assert org.covered(CHANG_AN) == {CHANG_AN}
    assert org.covered("上海分部") == {"上海分部"}  # a unit not named: itself
    assert (org.branch_of(HU_MEN), org.branch_of(DG), org.branch_of("x")) == (DG, DG, "x")
    assert (org.level(HU_MEN), org.level(GZ)) == ("store", "branch")
    assert Settings().organisation == Organisation()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"branches": {DG: [CHANG_AN], GZ: [CHANG_AN]}}, f"store '{CHANG_AN}' is already"),
        ({"branches": {DG: [GZ], GZ: []}}, f"store '{GZ}' is already"),
        ({"branches": {DG: CHANG_AN}}, f"organisation.branches.{DG} must be a list"),
        ({"stores": {}}, "unknown key organisation.stores"),
        ({"company": ""}, "organisation.company must be a name"),
    ],
)
def test_a_wrong_organisation_is_refused_naming_the_key(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        organisation(body, "casework.toml")


def test_counts_roll_up_store_branch_company_with_a_total_row() -> None:
    org = _settings().organisation
    rows = rollup(org, [(CHANG_AN, {"n": 2}), (HU_MEN, {"n": 1}), (DG, {"n": 1}),
                        (TIAN_HE, {"n": 3}), ("上海店", {"n": 1})])  # fmt: skip
    assert [(r["level"], r["name"], r["n"]) for r in rows] == [
        ("branch", DG, 4),
        ("store", CHANG_AN, 2),
        ("store", HU_MEN, 1),
        ("branch", GZ, 3),
        ("store", TIAN_HE, 3),
        ("branch", "上海店", 1),
        ("company", "总部", 8),
    ]


@dataclass
class World:
    api: Served
    engine: Engine

    def client(self, role: str, branch: str | None) -> Any:
        return self.api.client(self.api.token(role, "zhao.lei", branch))


@pytest.fixture
def world(db_url: str, clock: FixedClock) -> Iterator[World]:
    settings = replace(_settings(), webhooks=WebhookSettings(allowed_hosts=(HOOKS,)))
    engine = Engine.open(db_url, clock=clock, config=settings)
    for case_id, unit in UNITS.items():
        engine.open_case(customer=f"CUST-{case_id}", branch=unit, case_id=case_id, **INTAKE)
    with serving(engine) as api:
        yield World(api, engine)
    engine.close()


# token's branch -> the cases it sees
SEES = [
    (None, set(UNITS)),
    (DG, {"c-changan", "c-humen", "c-dg"}),
    (CHANG_AN, {"c-changan"}),
    (GZ, {"c-tianhe"}),
    (TIAN_HE, {"c-tianhe"}),
]


@pytest.mark.parametrize(("branch", "seen"), SEES)
def test_a_token_sees_and_acts_on_its_level_s_cases(
    world: World, branch: str | None, seen: set[str]
) -> None:
    with world.client("agent", branch) as client:
        listed = client.get("/v1/cases").json()["items"]
        assert {c["id"] for c in listed} == seen
        for case_id in UNITS:
            got = client.get(f"/v1/cases/{case_id}")
            assert got.status_code == (200 if case_id in seen else 404), (case_id, got.text)
            fired = client.post(f"/v1/cases/{case_id}/events", json={"event": "apologise"})
            assert fired.status_code == (200 if case_id in seen else 404), (case_id, fired.text)


def test_a_branch_lists_and_opens_for_its_stores_only(world: World) -> None:
    body = {k: v for k, v in INTAKE.items() if k != "actor"}
    with world.client("agent", DG) as branch:
        one = branch.get("/v1/cases", params={"branch": HU_MEN}).json()["items"]
        assert [c["id"] for c in one] == ["c-humen"]
        assert branch.get("/v1/cases", params={"branch": TIAN_HE}).json()["items"] == []
        opened = branch.post("/v1/cases", json={**body, "customer": "C-9", "branch": HU_MEN})
        assert opened.status_code == 201, opened.text
        assert opened.json()["branch"] == HU_MEN
        elsewhere = {**body, "customer": "C-9", "branch": TIAN_HE}
        refused = branch.post("/v1/cases", json=elsewhere)
        assert refused.status_code == 422
        assert "opens cases of that branch (and its stores) only" in refused.json()["detail"]
        own = branch.post("/v1/cases", json={**body, "customer": "C-9"}).json()
        assert own["branch"] == DG
    with world.client("agent", CHANG_AN) as store:
        up = store.post("/v1/cases", json={**body, "customer": "C-9", "branch": DG})
        assert up.status_code == 422  # a store does not open its branch's cases
        assert store.get("/v1/cases", params={"branch": DG}).json()["items"] == []


def test_the_command_line_lists_a_branch_with_its_stores_and_rolls_reports_up(
    db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    config = tmp_path / "casework.toml"
    config.write_text(TOML, encoding="utf-8")
    with Engine.open(db_url, clock=clock, config=_settings()) as engine:
        for case_id, unit in UNITS.items():
            engine.open_case(customer=f"CUST-{case_id}", branch=unit, case_id=case_id, **INTAKE)
        engine.fire("c-changan", "apologise", actor="li.na")
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(main, ["--db", db_url, "--config", str(config), *args])
        assert result.exit_code == 0, result.output
        return result

    listed = json.loads(run("list", "--branch", DG, "--json").stdout)
    assert {c["id"] for c in listed} == {"c-changan", "c-humen", "c-dg"}
    store = json.loads(run("list", "--branch", CHANG_AN, "--json").stdout)
    assert [c["id"] for c in store] == ["c-changan"]

    window = ("--from", "2026-11-01", "--to", "2026-12-31")
    report = json.loads(run("report", "complaints", *window, "--json").stdout)
    assert [(r["level"], r["name"], r["complaints"]) for r in report["rollup"]] == [
        ("branch", DG, 3),
        ("store", CHANG_AN, 1),
        ("store", HU_MEN, 1),
        ("branch", GZ, 1),
        ("store", TIAN_HE, 1),
        ("company", "总部", 4),
    ]
    text = run("report", "complaints", *window).stdout
    assert f"  {CHANG_AN}" in text
    assert "总部" in text
    mine = json.loads(run("report", "complaints", *window, "--branch", DG, "--json").stdout)
    assert mine["cases"] == 3
    assert [r["level"] for r in mine["rollup"]] == ["branch", "store", "store"]

    sla = json.loads(run("report", "sla", *window, "--json").stdout)
    rows = {(r["level"], r["name"]): r for r in sla["first_response_rollup"]}
    assert rows[("store", CHANG_AN)]["met"] == 1
    counted = {k: r["met"] + r["breached"] + r["open"] for k, r in rows.items()}
    assert counted[("branch", DG)] == 3
    assert counted[("company", "总部")] == 4
    assert rows[("company", "总部")]["met"] == 1
    assert "总部" in run("report", "sla", *window).stdout
    for name in ("complaints", "sla"):
        page = tmp_path / f"{name}.html"
        run("report", name, *window, "--html", str(page))
        html = page.read_text(encoding="utf-8")
        assert f"&emsp;{CHANG_AN}" in html
        assert "<strong>总部</strong>" in html


def test_a_branch_administers_its_stores_tokens_and_mails(world: World, clock: FixedClock) -> None:
    clock.advance(timedelta(days=3))
    world.engine.process_due()  # warnings and escalations of every case into the outbox
    with world.client("admin", DG) as branch:
        store_token = {"actor": "x.y", "role": "agent", "branch": HU_MEN}
        made = branch.post("/v1/tokens", json=store_token)
        assert made.status_code == 201, made.text
        listed = {t["id"] for t in branch.get("/v1/tokens").json()}
        assert made.json()["id"] in listed
        elsewhere = branch.post("/v1/tokens", json={**store_token, "branch": TIAN_HE})
        assert elsewhere.status_code == 403
        mails = branch.get("/v1/outbox").json()
        assert {m["case_id"] for m in mails} == {"c-changan", "c-humen", "c-dg"}
    with world.client("admin", CHANG_AN) as store:
        up = store.post("/v1/tokens", json={"actor": "x.y", "role": "agent", "branch": DG})
        assert up.status_code == 403
        assert made.json()["id"] not in {t["id"] for t in store.get("/v1/tokens").json()}
        assert {m["case_id"] for m in store.get("/v1/outbox").json()} == {"c-changan"}


def test_a_branch_s_webhook_hears_its_stores_cases(world: World, clock: FixedClock) -> None:
    with world.client("admin", DG) as branch:
        made = branch.post("/v1/webhooks", json={"url": f"https://{HOOKS}/dg"})
        assert made.status_code == 201, made.text
        assert made.json()["branch"] == DG
    with world.client("admin", CHANG_AN) as store:
        mine = store.post("/v1/webhooks", json={"url": f"https://{HOOKS}/changan"}).json()
    for case_id in UNITS:
        world.engine.fire(case_id, "apologise", actor="li.na")
    clock.advance(timedelta(days=3))
    world.engine.process_due()  # the worker's events are heard alike
    heard: dict[str, set[str]] = {}
    for row in world.engine.context.store.outbox.rows(kind="webhook"):
        heard.setdefault(str(row.body["webhook"]), set()).add(row.case_id)
    assert heard[made.json()["id"]] == {"c-changan", "c-humen", "c-dg"}
    assert heard[mine["id"]] == {"c-changan"}


def test_a_branch_s_what_if_covers_its_stores(world: World, clock: FixedClock) -> None:
    from datetime import UTC

    from casework.machines.sla import DEFAULT_DOCUMENT, policy_from_document
    from casework.workflow.display.periods import period_of
    from casework.workflow.sla.whatif import simulate

    machine = world.engine.registry.get("complaint")
    policy = policy_from_document(DEFAULT_DOCUMENT, machine.states, machine.events)
    for branch, cases in ((DG, 3), (CHANG_AN, 1), (GZ, 1), (None, 4)):
        period, _ = period_of(month="2026-11", zone=UTC, now=clock.now(), branch=branch)
        assert simulate(world.engine.context, policy, period)["cases"] == cases, branch
