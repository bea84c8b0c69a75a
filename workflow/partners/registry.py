"""The partner registry: installers, repairers and manufacturers, by the id events use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from casework.storage.records import PartnerRecord
from casework.workflow import validation
from casework.workflow.errors import InvalidInput

if TYPE_CHECKING:
    from casework.workflow.context import Context

PARTNER_KINDS = ("installer", "repairer", "manufacturer")


def add_partner(
    context: Context, partner_id: str, *, name: str, kind: str, branch: str | None
) -> PartnerRecord:
    """Register a partner; an id already taken or an unknown kind is refused."""
    partner_id = validation.text(partner_id, "id", max_chars=100)
    name = validation.text(name, "name", max_chars=200)
    if kind not in PARTNER_KINDS:
        raise InvalidInput(f"kind {kind!r} is none of {', '.join(PARTNER_KINDS)}", field="kind")
    shown_branch = None if branch is None else validation.text(branch, "branch", max_chars=200)
    record = PartnerRecord(partner_id, name, kind, shown_branch, context.clock.now())
    if not context.store.partners.add(record):
        raise InvalidInput(f"a partner {partner_id!r} is registered already", field="id")
    return record
