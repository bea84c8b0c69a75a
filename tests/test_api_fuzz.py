"""Bad input never yields a 5xx: schemathesis generates requests from the OpenAPI document
(valid and invalid) against the real server on loopback, with an admin token, and checks
every answer against what the document declares.

Each operation's examples are drawn by hypothesis from ``operation.as_strategy()`` inside
one plain test, so the run depends on no pytest plugin of schemathesis (whose hooks into
pytest's internals break across pytest releases)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from casework.workflow.clock import FixedClock
from casework.workflow.engine import Engine
from tests.support import START, open_sample
from tests.support.api_server import Served, serving

EXAMPLES = 30
"""Examples per operation: enough to reach every validation branch, bounded for CI."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "casework.db"
    engine = Engine.open(f"sqlite:///{path}", clock=FixedClock(START))
    open_sample(engine)
    engine.heartbeat("fuzz", START)  # the clock stands still: /readyz stays ready
    with serving(engine) as api:
        yield api
    engine.close()


def _operations(served: Served) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.slow  # thirty examples an operation: the full suite runs it, not the fast lane
def test_no_request_makes_the_server_fail(served: Served) -> None:
    token = served.token("admin")
    operations = _operations(served)
    assert len(operations) > 20, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def one(case: Any) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

        try:
            one()
        except Exception as failure:  # name the operation the failing example belongs to
            raise AssertionError(f"{operation.label}: {failure}") from failure
