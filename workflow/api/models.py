"""The shapes of the HTTP API: request bodies (checked, unknown fields refused) and the
answers, documented in the OpenAPI document. Answers are the CLI's ``--json`` shapes;
fields may be added, never renamed. A case and an event are documented from their
records (:class:`casework.storage.records.CaseRecord`,
:class:`~casework.storage.records.EventRecord`)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from casework.storage.records import CaseRecord, EventRecord
from casework.workflow.cases.intake import INTAKE

Case = CaseRecord
Event = EventRecord


_ISO_INSTANT = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d")


def _iso_instant(value: object) -> object:
    """An instant only as ISO 8601 text (or a datetime): a number is no instant, so
    ``until=0.5`` is refused rather than read as a moment of 1970."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_INSTANT.match(value.strip()):
        raise ValueError("an instant is ISO 8601 text with its offset, e.g. 2026-11-23T09:00+08:00")
    return value


Instant = Annotated[datetime, BeforeValidator(_iso_instant)]
"""A date and time with its offset, as ISO 8601 text (never a number of seconds)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- request bodies -------------------------------------------------------------------


def intake_model() -> type[_Body]:
    """The body that opens a case, one field for each of
    :data:`~casework.workflow.cases.intake.INTAKE` (its limits and choices are the
    settings', documented by :mod:`casework.workflow.api.contract`)."""
    fields: dict[str, Any] = {}
    for field in INTAKE:
        kind: Any = {"instant": Instant, "attributes": dict[str, Any]}.get(field.kind, str)
        if field.required:
            fields[field.name] = (kind, Field(description=field.help))
        elif field.default is not None:
            fields[field.name] = (kind, Field(field.default, description=field.help))
        else:
            fields[field.name] = (kind | None, Field(None, description=field.help))
    doc = "A complaint to open; its first receiver (owner) is the token's actor."
    return create_model("OpenCase", __base__=_Body, __doc__=doc, **fields)


if TYPE_CHECKING:
    OpenCase = _Body
else:
    OpenCase = intake_model()


class FireEvent(_Body):
    """An event to apply; its actor is the token's."""

    event: str = Field(description="apologise, confirm_needs, resolve, follow_up, note...")
    data: dict[str, Any] | None = Field(None, description="Event data, e.g. {'to': 'wang.wei'}.")
    note: str | None = Field(None, description="Free text kept with the event.")
    at: Instant | None = Field(None, description="When it happened (back-fill).")


class NewWebhook(_Body):
    """A subscription to make."""

    url: str = Field(description="Where to POST: http:// or https://.")
    events: list[str] = Field(["*"], description="Event names, or ['*'] for every event.")


class Erasure(_Body):
    """A customer to forget; the erasing actor is the token's."""

    customer: str = Field(description="The customer, as their cases name them.")
    reason: str = Field(description="Why: the request, its date, its reference.")
    dry_run: bool = Field(False, description="Only say which cases would be erased.")


class NewToken(_Body):
    """A token to make."""

    actor: str = Field(description="Who the token speaks for (an agent id).")
    role: Literal["agent", "supervisor", "auditor", "admin"]
    branch: str | None = Field(None, description="Only this branch's cases.")


# -- answers ---------------------------------------------------------------------------


class CasePage(_Answer):
    """A page of cases; ``next_cursor`` continues it (``null`` on the last page)."""

    items: list[dict[str, Any]] = Field(
        description="Cases, or with overdue=true the late clocks (`list --overdue --json`)."
    )
    next_cursor: str | None


class Replay(_Answer):
    """The state rebuilt from history alone (``casework replay --json``)."""

    case_id: str
    state: str
    version: int
    at: datetime


class VerifyProblem(_Answer):
    """Where a chain or a replay breaks."""

    case_id: str
    seq: int | None
    reason: str


class VerifyReport(_Answer):
    """``casework verify --json``."""

    ok: bool
    cases: int
    events: int
    problems: list[VerifyProblem]


class SlaExplain(_Answer):
    """``casework sla explain --json``: each clock and how its next deadline was computed."""

    case_id: str
    policy: str | None
    clocks: list[dict[str, Any]]


class Webhook(_Answer):
    """A webhook subscription (its secret only in the answer that made it)."""

    id: str
    url: str
    events: list[str]
    created_at: datetime
    removed_at: datetime | None
    branch: str | None = None
    secret: str | None = None


class Delivery(_Answer):
    """A webhook delivery in the outbox."""

    id: int
    status: str
    attempts: int
    webhook: str | None
    webhook_id: str | None
    type: str | None
    case_id: str


class Token(_Answer):
    """An API token (its secret only in the answer that made it)."""

    id: str
    actor: str
    role: str
    branch: str | None
    created_at: datetime
    revoked_at: datetime | None
    token: str | None = None


class Mail(_Answer):
    """An outbox mail (``casework outbox --json``); a daily report has no case."""

    id: int
    status: str
    kind: str
    case_id: str | None
    attempts: int


class Problem(_Answer):
    """An RFC 9457 problem; the error's context (``case_id``, ``event``, ``state``,
    ``allowed``, ``condition``, ``field``...) beside the standard members."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    case_id: str | None = None
    event: str | None = None
    state: str | None = None
    allowed: list[str] | None = None
    condition: str | None = None
    field: str | None = None
    errors: list[dict[str, Any]] | None = None


class Health(_Answer):
    """``/healthz`` and ``/readyz``."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, Any] = {}


class NewPartner(_Body):
    """A partner to register."""

    id: str = Field(description="The id events name it with (book_visit partner=...).")
    name: str
    kind: Literal["installer", "repairer", "manufacturer"]
    branch: str | None = Field(None, description="The branch it works for.")


class NewJobs(_Body):
    """Dispatched jobs to record."""

    kind: Literal["installation", "repair"]
    branch: str = Field(description="The branch; a branch token's own.")
    category: str | None = Field(None, description="The complaint category of the job.")
    partner: str | None = Field(None, description="The partner who did it.")
    done_at: Instant = Field(description="When, with its offset.")
    jobs: int = Field(1, ge=1, le=1_000_000, description="How many jobs.")
