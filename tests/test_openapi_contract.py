"""The OpenAPI document a real server serves says what a generated client needs, from the
settings and machines that server runs with: it validates as OpenAPI 3.1, and its
enums, required fields, headers, statuses, answers, links and webhooks are those the
server enforces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from casework.machines import ENGINE_EVENTS
from casework.workflow.config import load_settings
from casework.workflow.engine import Engine
from tests.support.api_server import serving

CONFIG = """
[intake]
channels = ["wechat"]
categories = ["delivery_damage"]
priorities = ["low", "normal", "high"]
"""


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = Path(tmp_path_factory.mktemp("contract"))
    (folder / "casework.toml").write_text(CONFIG)
    settings = load_settings(folder / "casework.toml")
    with (
        Engine.open(f"sqlite:///{folder / 'c.db'}", config=settings) as engine,
        serving(engine) as api,
    ):
        yield httpx.get(f"{api.url}/openapi.json").json()


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_it_validates_as_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_the_enums_are_the_servers_own(document: dict[str, Any]) -> None:
    assert "wechat" in _schema(document, "Channel")["enum"]
    assert "store" in _schema(document, "Channel")["enum"]  # added to the defaults
    assert "delivery_damage" in _schema(document, "Category")["enum"]
    assert _schema(document, "Priority")["enum"] == ["high", "low", "normal"]  # replaced
    assert set(_schema(document, "Role")["enum"]) == {"agent", "supervisor", "auditor", "admin"}
    assert {"return", "exchange", "repair", "paid_repair"} == set(
        _schema(document, "Remedy")["enum"]
    )
    assert set(_schema(document, "AttachmentKind")["enum"]) == {"test_report", "photo", "invoice"}
    assert {"received", "apologised", "resolved"} <= set(_schema(document, "State")["enum"])
    fireable = set(_schema(document, "FireableEvent")["enum"])
    assert {"apologise", "book_visit", "wait", "escalate_now", "reclassify"} <= fireable
    assert not {"open", "sla_warning", "attach", "erased"} & fireable  # the engine's own
    assert ENGINE_EVENTS | {"open"} <= set(_schema(document, "EventName")["enum"])


def test_bodies_require_what_the_server_requires(document: dict[str, Any]) -> None:
    opening = _schema(document, "OpenCase")
    assert set(opening["required"]) == {"customer", "summary", "channel", "category"}
    customer = opening["properties"]["customer"]
    assert (customer["minLength"], customer["maxLength"]) == (1, 200)
    assert opening["properties"]["channel"]["$ref"].endswith("/Channel")
    assert opening["properties"]["attributes"]["anyOf"][0]["additionalProperties"] is False
    received = opening["properties"]["received_at"]["anyOf"][0]
    assert received["format"] == "date-time"
    assert received["pattern"].startswith("^(19|[2-8][0-9])")  # the years 1900 to 8999
    assert _schema(document, "FireEvent")["properties"]["event"]["$ref"].endswith("/FireableEvent")
    assert _schema(document, "NewToken")["properties"]["actor"]["minLength"] == 1


def test_every_operation_declares_its_statuses_headers_and_answers(
    document: dict[str, Any],
) -> None:
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        label = f"{method.upper()} {path}"
        assert "405" in responses, label
        assert "Allow" in responses["405"]["headers"], label
        success = [code for code in responses if code.startswith("2")]
        assert len(success) == 1, label
        assert responses[success[0]].get("content"), label  # a schema for every answer
        for media in responses[success[0]]["content"].values():
            assert media.get("schema"), label
        if path.startswith("/v1/"):
            assert {"401", "403", "422", "503"} <= set(responses), label
            assert "Retry-After" in responses["503"]["headers"], label
            assert "WWW-Authenticate" in responses["401"]["headers"], label
        if method == "post":
            names = [p["name"] for p in operation.get("parameters", [])]
            assert "Idempotency-Key" in names, label
            assert {"409", "413"} <= set(responses), label
            assert "Idempotent-Replayed" in responses[success[0]]["headers"], label
        if "requestBody" in operation:
            assert "415" in responses, label
        if "{" in path and path.startswith("/v1/"):
            assert "404" in responses, label


def test_cases_carry_their_etag_location_links_and_typed_lists(document: dict[str, Any]) -> None:
    paths = document["paths"]
    opened = paths["/v1/cases"]["post"]["responses"]["201"]
    assert {"ETag", "Location", "Idempotent-Replayed"} <= set(opened["headers"])
    links = opened["links"]
    assert {links[n]["operationId"] for n in links} >= {"get_case", "apply_event", "history"}
    assert links["ApplyEvent"]["parameters"]["header.If-Match"] == "$response.header.ETag"
    fire = paths["/v1/cases/{case_id}/events"]["post"]
    assert "412" in fire["responses"]
    assert "ETag" in fire["responses"]["200"]["headers"]
    assert "If-Match" in [p["name"] for p in fire["parameters"]]
    items = _schema(document, "CasePage")["properties"]["items"]["items"]
    assert items["$ref"].endswith("/CaseRecord")
    listed = paths["/v1/cases"]["get"]["responses"]["200"]["links"]["NextPage"]
    assert listed["parameters"]["cursor"] == "$response.body#/next_cursor"
    upload = paths["/v1/cases/{case_id}/attachments"]["post"]["requestBody"]["content"]
    assert upload["application/octet-stream"]["schema"]["format"] == "binary"
    exported = paths["/v1/export"]["get"]["responses"]["200"]["content"]["application/x-ndjson"]
    assert exported["schema"]["x-item-schema"]["$ref"].endswith("/ExportLine")
    assert "503" in paths["/readyz"]["get"]["responses"]


def test_webhooks_carry_each_event_types_payload(document: dict[str, Any]) -> None:
    hooks = document["webhooks"]
    assert {"case.open", "case.apologise", "case.sla_warning", "case.escalate"} <= set(hooks)
    post = hooks["case.resolve"]["post"]
    payload = post["requestBody"]["content"]["application/json"]["schema"]
    assert payload["properties"]["type"]["const"] == "case.resolve"
    assert payload["properties"]["case"]["$ref"].endswith("/CaseRecord")
    signed = {p["name"] for p in post["parameters"]}
    assert signed == {"webhook-id", "webhook-timestamp", "webhook-signature"}
