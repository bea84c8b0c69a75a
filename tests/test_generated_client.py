"""A client generated from ``/openapi.json`` by openapi-python-client, at test time into a
temporary folder, walks a case through its life against the real server using nothing
but the generated code: open, fire with ``If-Match`` and ``Idempotency-Key`` (a
replay, a stale version's 412), list with cursors, history, an attachment and the
export, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from casework.workflow.engine import Engine
from tests.support.api_server import Served, serving

CONFIG = """\
package_name_override: casework_client
project_name_override: casework-client
content_type_overrides:
  application/x-ndjson: application/octet-stream
"""
"""The generator's settings: the export (NDJSON lines) read as bytes, split by the caller."""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package generated from the document of a server like the tested ones."""
    folder = tmp_path_factory.mktemp("client")
    with Engine.open(f"sqlite:///{folder / 'doc.db'}") as engine, serving(engine) as api:
        document = httpx.get(f"{api.url}/openapi.json").text
    (folder / "openapi.json").write_text(document)
    (folder / "config.yml").write_text(CONFIG)
    made = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", "openapi.json",
         "--config", "config.yml", "--meta", "none", "--output-path", "casework_client"],
        cwd=folder, check=False, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Warning" not in made.stdout, made.stdout  # every operation generated whole
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("casework_client")
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m.split(".")[0] == "casework_client"]:
            del sys.modules[name]


@pytest.fixture
def api(db_url: str) -> Iterator[Served]:
    with Engine.open(db_url) as engine, serving(engine) as served:
        yield served


def _module(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


@pytest.mark.slow  # generates a client package (a few seconds)
def test_a_generated_client_walks_a_case_through(generated: ModuleType, api: Served) -> None:
    models = _module(generated, "models")
    types = _module(generated, "types")
    with generated.AuthenticatedClient(base_url=api.url, token=api.token("admin")) as client:
        _walk(client, models, types, generated)


def _walk(client: Any, models: Any, types: Any, generated: ModuleType) -> None:
    open_case = _module(generated, "api.cases.open_case")
    apply_event = _module(generated, "api.cases.apply_event")
    get_case = _module(generated, "api.cases.get_case")
    list_cases = _module(generated, "api.cases.list_cases")
    history = _module(generated, "api.cases.history")
    attach_file = _module(generated, "api.evidence.attach_file")
    export = _module(generated, "api.audit.export")

    opened = []
    for n in range(3):
        answer = open_case.sync_detailed(
            client=client,
            body=models.OpenCase(
                customer=f"CUST-{n}", summary="师傅没有按约上门", channel=models.Channel.PHONE,
                category=models.Category.MISSED_APPOINTMENT, priority=models.Priority.HIGH,
            ),
            idempotency_key=f"crm-{n}",
        )  # fmt: skip
        assert answer.status_code == 201
        assert answer.headers["location"] == f"/v1/cases/{answer.parsed.id}"
        opened.append(answer)
    case = opened[0].parsed
    assert isinstance(case, models.CaseRecord)
    assert case.state == models.State.RECEIVED
    assert case.version == 1
    etag = opened[0].headers["etag"]

    fire = models.FireEvent(event=models.FireableEvent.APOLOGISE, note="我们很抱歉")
    first = apply_event.sync_detailed(
        case.id, client=client, body=fire, if_match=etag, idempotency_key="apology-1"
    )
    assert first.status_code == 200
    assert first.parsed.state == models.State.APOLOGISED
    again = apply_event.sync_detailed(
        case.id, client=client, body=fire, if_match=etag, idempotency_key="apology-1"
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert again.parsed.version == first.parsed.version == 2
    stale = apply_event.sync_detailed(
        case.id, client=client, body=models.FireEvent(event=models.FireableEvent.NOTE, note="x"),
        if_match=etag,
    )  # fmt: skip
    assert stale.status_code == 412
    assert isinstance(stale.parsed, models.Problem)
    assert stale.parsed.type_ == "urn:casework:problem:precondition-failed"
    assert get_case.sync(case.id, client=client).version == 2

    seen: list[str] = []
    cursor: Any = types.UNSET
    while True:
        page = list_cases.sync(client=client, limit=1, cursor=cursor)
        assert isinstance(page, models.CasePage)
        seen += [item.id for item in page.items]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == [a.parsed.id for a in opened]

    attached = attach_file.sync(
        case.id, client=client, body=types.File(payload=io.BytesIO(b"\xff\xd8 a photo")),
        kind=models.AttachmentKind.PHOTO, name="上门记录.jpg", idempotency_key="photo-1",
    )  # fmt: skip
    assert isinstance(attached, models.EventRecord)
    assert attached.event == models.EventName.ATTACH
    events = history.sync(case.id, client=client)
    assert [e.event for e in events] == [
        models.EventName.OPEN, models.EventName.APOLOGISE, models.EventName.ATTACH,
    ]  # fmt: skip

    dump = export.sync_detailed(client=client)
    assert dump.status_code == 200
    lines = [json.loads(line) for line in dump.content.splitlines()]
    assert [lines[0]["record"], lines[-1]["record"]] == ["header", "end"]
    assert sum(line["record"] == "event" for line in lines) == 5
