"""The OpenAPI document against the real server, on SQLite and PostgreSQL: schemathesis
generates requests from it (valid and invalid), with an admin token, and runs every
check it has on each answer: no server error, statuses, headers and bodies as
declared, valid data accepted and invalid data refused, an undeclared method 405
with ``Allow``, authentication not ignored. Then its stateful run chains operations
through the document's ``links`` (open a case, then read, fire on and attach to it).
No worker runs: ``/readyz?worker=1`` answers the 503 the document declares, and the
run expects it there (and nowhere else). The server's clock stands at the end of the
years the engine takes, so every instant the document allows lies in its past; each
request carries a key of its own where the generated ``Idempotency-Key`` is a valid one
(a key reused with another body is refused, as it should be).

Examples are drawn by hypothesis from ``operation.as_strategy()`` (and the state
machine runs through hypothesis) inside plain tests, so the run depends on no pytest
plugin of schemathesis (whose hooks into pytest's internals break across pytest
releases)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.config import SchemathesisConfig

from casework.workflow.api.contract import KEY
from casework.workflow.api.idempotency import MAX_KEY_CHARS
from casework.workflow.clock import FixedClock
from casework.workflow.engine import Engine
from tests.support import open_sample
from tests.support.api_server import Served, serving

EXAMPLES = 30
"""Examples per operation: enough to reach every validation branch, bounded for CI."""
SCENARIOS = 40
"""Stateful scenarios (each a chain of up to :data:`STEPS` linked calls)."""
STEPS = 8
RUNS = 3
"""Stateful runs at most, each of :data:`SCENARIOS` scenarios unless cut short."""
NOW = datetime(8999, 12, 31, 23, 0, tzinfo=UTC)
"""The server's clock: later than any instant the document lets a request carry."""
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429"]
"""What schemathesis takes as "valid data accepted" (its default, less 5xx)."""
BEYOND_THE_DOCUMENT = {
    "open_case": "a purchase_date after the day the case was received",
    "apply_event": "an event the case's state does not take, a guard "
    "its facts fail, an instant before its last event",
    "list_cases": "a cursor no list returned",
    "export": "until not later than since",
    "sla_report": "from/to, month and last given together, or to alone",
    "complaints_report": "from/to, month and last given together, or to alone",
    "add_webhook": "a host that resolves to an internal address, or not at all",
    "erase_customer": "a customer no case names",
    "replay": "an instant before the case was received",
}
"""Operations whose valid requests may still be refused (422) by a rule no schema can
state: it depends on the server's data or on several parameters at once."""
STATE_DEPENDENT = {"apply_event": ("412",)}
"""An If-Match a case is no longer at is refused, however well formed."""


def config(token: str) -> SchemathesisConfig:
    """The run's settings: the token as the document's bearer scheme (so schemathesis
    knows which header is the credential it leaves out on purpose); ``/readyz``
    answers 503 while no worker beats, as its document says; the operations of
    :data:`BEYOND_THE_DOCUMENT` may refuse valid data with 422."""
    return SchemathesisConfig.from_dict(
        {"request-timeout": 60,  # an erasure on PostgreSQL waits out older transactions
         "auth": {"openapi": {"token": {"bearer": token}}},
         "operations": [
            {"include-path": "/readyz",
             "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}}},
            *({"include-operation-id": name,
               "checks": {"positive_data_acceptance": {"expected-statuses": [
                   *ACCEPTED, "422", *STATE_DEPENDENT.get(name, ())]}}}
              for name in BEYOND_THE_DOCUMENT),
        ]}
    )  # fmt: skip


SETTINGS = settings(
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


@pytest.fixture
def served(db_url: str) -> Iterator[Served]:
    with Engine.open(db_url, clock=FixedClock(NOW)) as engine:
        open_sample(engine)
        with serving(engine) as api:
            yield api


def _schema(served: Served, token: str) -> Any:
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json", config=config(token))


def _headers(case: Any) -> dict[str, str]:
    """A key of the request's own in place of a valid generated one."""
    headers = {}
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and len(key) <= MAX_KEY_CHARS and re.fullmatch(KEY, key):
        headers["Idempotency-Key"] = uuid.uuid4().hex
    return headers


@pytest.mark.slow  # thirty examples an operation: the full suite runs it, not the fast lane
def test_no_request_makes_the_server_fail(served: Served) -> None:
    token = served.token("admin", actor="fuzz")
    operations = [result.ok() for result in _schema(served, token).get_all_operations()]
    assert len(operations) > 30, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(SETTINGS, max_examples=EXAMPLES)
        def one(case: Any) -> None:
            case.call_and_validate(headers=_headers(case))

        try:
            one()
        except Exception as failure:  # name the operation the failing example belongs to
            raise AssertionError(f"{operation.label}: {failure}") from failure


@pytest.mark.slow  # chains of linked calls on both databases
def test_linked_calls_find_nothing(served: Served) -> None:
    token = served.token("admin", actor="fuzz")
    machine = _schema(served, token).as_state_machine()

    class Linked(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": _headers(case)}

    # the server's data grows from one scenario to the next, so a scenario is not drawn
    # again to shrink it; when hypothesis still finds a link's values changed under a
    # choice it recorded (the server moved on, not a failure), the run starts again, as
    # schemathesis' own runner does; a failure is raised whenever it is found
    chains = settings(SETTINGS, max_examples=SCENARIOS, stateful_step_count=STEPS,
                      phases=[Phase.generate], derandomize=False)  # fmt: skip
    for _ in range(RUNS):
        try:
            Linked.run(settings=chains)
            return
        except FlakyStrategyDefinition:
            continue
    pytest.fail(f"each of {RUNS} stateful runs was cut short by a link's changed values")
