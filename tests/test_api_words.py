"""The API's refusals speak of the request, never of the command line: no answer to a
bad request names a ``casework`` command or a ``--`` option, though the same errors
read that way on the command line."""

from __future__ import annotations

import re
from datetime import timedelta

import click
import httpx
from click.testing import CliRunner

from casework.workflow.cli import main
from casework.workflow.engine import Engine
from tests.support import decidable, open_sample
from tests.support.api_server import Served

COMMANDS = main.list_commands(click.Context(main))
CLI_WORDING = re.compile(rf"casework (?:{'|'.join(map(re.escape, COMMANDS))})\b|(?<![\w-])--\w")


def _bad_requests(http: httpx.Client, engine: Engine, token_id: str) -> list[httpx.Response]:
    case_id = open_sample(engine)
    events = f"/v1/cases/{case_id}/events"
    undated = open_sample(engine)
    for step in ("apologise", "confirm_needs"):
        engine.fire(undated, step, actor="li.na")
    strict = decidable(engine, brand="Apple")
    report = "/v1/reports/sla"
    behind = open_sample(engine)  # this host's clock then runs behind its last event
    engine.fire(behind, "apologise", actor="li.na", at=engine.clock.now() + timedelta(minutes=2))
    return [
        http.get("/v1/cases/nope"),
        http.post("/v1/cases/nope/events", json={"event": "apologise"}),
        http.post(events, json={"event": "escalate"}),
        http.post(events, json={"event": "attach"}),
        http.post(events, json={"event": "note"}),
        http.post(f"/v1/cases/{undated}/events",
                  json={"event": "decide_remedy", "data": {"remedy": "repair"}}),
        http.post(f"/v1/cases/{strict}/events",
                  json={"event": "decide_remedy", "data": {"remedy": "exchange"}}),
        http.get(report, params={"from": "2026-11-30", "to": "2026-11-01"}),
        http.get(report, params={"to": "2026-11-01"}),
        http.get(report, params={"month": "2026-11", "last": "7d"}),
        http.get(report, params={"from": "yesterday"}),
        http.get(report, params={"from": "2026-11-01", "to": "soon"}),
        http.get(report, params={"month": "2026-13"}),
        http.get(report, params={"last": "3x"}),
        http.get("/v1/reports/partners", params={"quarter": "2026Q9"}),
        http.delete("/v1/tokens/nope"),
        http.delete(f"/v1/tokens/{token_id}"),
        http.delete("/v1/webhooks/nope"),
        http.post("/v1/outbox/999/retry"),
        http.post("/v1/webhooks/deliveries/999/retry"),
        http.get("/readyz", params={"worker": "1"}),
        http.post(f"/v1/cases/{behind}/events", json={"event": "confirm_needs"}),
    ]  # fmt: skip


def test_no_refusal_names_a_command_or_an_option(api: Served) -> None:
    engine = api.engine
    with api.client(api.token("admin", actor="root")) as http:
        mine = next(t for t in http.get("/v1/tokens").json() if t["actor"] == "root")
        answers = _bad_requests(http, engine, mine["id"])
    for answer in answers:
        assert answer.status_code >= 400, (answer.request.url, answer.text)
        assert CLI_WORDING.search(answer.text) is None, (answer.request.url, answer.text)
    assert len({a.text for a in answers}) == len(answers)  # each its own refusal


def test_the_command_line_adds_its_options_and_commands(db_url: str) -> None:
    """The same refusals on the command line name the options and the command that
    lists what there is."""
    runner = CliRunner()
    backwards = runner.invoke(main, ["--db", db_url, "report", "sla", "--from", "2026-11-30",
                                     "--to", "2026-11-01", "--json"])  # fmt: skip
    assert "--to must be later than --from" in backwards.stderr
    unknown = runner.invoke(main, ["--db", db_url, "show", "nope"])
    assert "no case 'nope'; `casework list` shows the cases there are" in unknown.stderr
    assert (backwards.exit_code, unknown.exit_code) == (2, 2)
