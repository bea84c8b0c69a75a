"""The README's FastAPI host application runs as written, on SQLite and PostgreSQL: its
refund row and casework's event commit together, or neither is kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from sqlalchemy import select

from tests.support import open_sample
from tests.support.api_server import serving_app

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- host example -->"
"""The line right before the README's host example."""
EXAMPLE_URL = "sqlite:///backoffice.db"
"""The database the example names, replaced by the test's own."""


def host_example() -> str:
    """The Python code block right after :data:`MARKER` in the README."""
    after = README.read_text(encoding="utf-8").split(f"\n{MARKER}\n", 1)[1]
    assert after.startswith("```python\n")
    return after.removeprefix("```python\n").split("\n```\n", 1)[0]


@pytest.fixture
def host(db_url: str) -> Iterator[ModuleType]:
    """The README's host application as a module, on the test's database."""
    source = host_example()
    assert source.count(EXAMPLE_URL) == 1
    url = db_url.replace("postgresql://", "postgresql+psycopg://")
    module = ModuleType("readme_host")
    code = compile(source.replace(EXAMPLE_URL, url), f"{README} (host example)", "exec")
    exec(code, module.__dict__)  # noqa: S102 -- the README's own example, as a reader runs it
    yield module
    module.cases.close()
    module.host.dispose()


@pytest.fixture
def client(host: ModuleType) -> Iterator[httpx.Client]:
    """An HTTP client of the host's FastAPI application, served on loopback."""
    with serving_app(host.app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def refunds(host: ModuleType) -> list[tuple[str, int]]:
    """The host's refund rows, as (case id, amount)."""
    table = host.refunds
    with host.host.connect() as conn:
        return [tuple(row) for row in conn.execute(select(table.c.case_id, table.c.amount))]


def test_a_refund_keeps_its_row_and_the_event(host: ModuleType, client: httpx.Client) -> None:
    case_id = open_sample(host.cases)
    host.cases.fire(case_id, "apologise", actor="li.na")
    host.cases.fire(case_id, "confirm_needs", actor="li.na")

    answer = client.post(f"/complaints/{case_id}/refund", json={"amount": 120})

    assert answer.status_code == 201, answer.text
    assert answer.json() == {"case": case_id, "state": "resolved"}
    assert refunds(host) == [(case_id, 120)]
    last = host.cases.history(case_id)[-1]
    assert (last.event, last.data) == ("resolve", {"solution": "refund of 120"})
    assert host.cases.verify().ok


def test_a_refused_refund_leaves_neither_row_nor_event(
    host: ModuleType, client: httpx.Client
) -> None:
    case_id = open_sample(host.cases)  # received: not resolvable yet

    refused = client.post(f"/complaints/{case_id}/refund", json={"amount": 120})
    unknown = client.post("/complaints/no-such-case/refund", json={"amount": 120})

    assert refused.status_code == 409, refused.text
    assert "resolve" in refused.json()["detail"]
    assert unknown.status_code == 404, unknown.text
    assert refunds(host) == []
    assert [event.event for event in host.cases.history(case_id)] == ["open"]
    assert host.cases.get(case_id).version == 1


def test_a_second_refund_is_refused_and_leaves_the_first(
    host: ModuleType, client: httpx.Client
) -> None:
    case_id = open_sample(host.cases)
    host.cases.fire(case_id, "apologise", actor="li.na")
    host.cases.fire(case_id, "confirm_needs", actor="li.na")
    assert client.post(f"/complaints/{case_id}/refund", json={"amount": 120}).status_code == 201

    again = client.post(f"/complaints/{case_id}/refund", json={"amount": 80})

    assert again.status_code == 409, again.text
    assert refunds(host) == [(case_id, 120)]
    assert host.cases.get(case_id).version == 4
