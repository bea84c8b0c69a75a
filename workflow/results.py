"""Immutable results of replay and verification (cases and events are storage records)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from casework.storage import CaseRecord, EventRecord, iso

Case = CaseRecord
"""A case as the API returns it."""

Event = EventRecord
"""An event of a case's history as the API returns it."""


@dataclass(frozen=True)
class Replay:
    """A case's state rebuilt from its events alone, as it stood at ``at``."""

    case_id: str
    machine: str
    machine_version: int
    state: str
    version: int
    owner: str
    escalation_level: int
    facts: Mapping[str, Any]
    at: datetime
    sla: Mapping[str, Any] = field(default_factory=dict)
    """The SLA clocks as they stood at ``at`` (:func:`casework.workflow.sla.views.standing`)."""

    def to_json(self) -> dict[str, Any]:
        """The replay's JSON shape (the CLI contract)."""
        return {
            "case_id": self.case_id,
            "machine": self.machine,
            "machine_version": self.machine_version,
            "state": self.state,
            "version": self.version,
            "owner": self.owner,
            "escalation_level": self.escalation_level,
            "facts": dict(self.facts),
            "at": iso(self.at),
            "sla": dict(self.sla),
        }


POLICIES = "(sla_policies)"
"""The ``case_id`` of a problem with the stored SLA policies (one fails its digest)."""
EXPORT_FILE = "(export)"
"""The ``case_id`` of a problem with an export file as a whole."""
CHECKPOINT = "(checkpoint)"
"""The ``case_id`` of a problem with a checkpoint."""


@dataclass(frozen=True)
class Problem:
    """One place where a history does not hold: the case, the event and why."""

    case_id: str
    seq: int | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The problem's JSON shape."""
        return {"case_id": self.case_id, "seq": self.seq, "reason": self.reason}


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of verifying hash chains and case rows against their replay."""

    cases: int
    events: int
    problems: tuple[Problem, ...] = field(default=())
    checkpoint: Mapping[str, Any] | None = None
    """With ``verify --checkpoint``: what was checked of the checkpoint (its key id, the
    instant it states, the signed counts and root, and whether they still hold)."""
    signature: Mapping[str, Any] | None = None
    """With ``verify --export --keyring``: the key that signed the export, checked."""

    @property
    def ok(self) -> bool:
        """Whether nothing was found wrong."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The report's JSON shape (the CLI contract)."""
        document: dict[str, Any] = {
            "ok": self.ok,
            "cases": self.cases,
            "events": self.events,
            "problems": [p.to_json() for p in self.problems],
        }
        if self.checkpoint is not None:
            document["checkpoint"] = dict(self.checkpoint)
        if self.signature is not None:
            document["signature"] = dict(self.signature)
        return document
