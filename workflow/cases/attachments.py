"""Files attached to a case as evidence: kept by their SHA-256 digest and named by an
``attach`` event, so that verification can later prove each is still the one attached."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from casework.machines.definition import ATTACH_EVENT, EVIDENCE_KINDS
from casework.storage import CaseRecord
from casework.storage.database import HostConnection
from casework.workflow import validation
from casework.workflow.cases.firing import record
from casework.workflow.cases.reading import get
from casework.workflow.errors import InvalidInput

if TYPE_CHECKING:
    from casework.workflow.context import Context


def attach(
    context: Context,
    case_id: str,
    content: bytes,
    *,
    kind: str,
    name: str,
    actor: str,
    connection: HostConnection | None = None,
) -> CaseRecord:
    """Keep ``content`` and record the ``attach`` event naming it (see
    :meth:`~casework.workflow.engine.Engine.attach`)."""
    if kind not in EVIDENCE_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(EVIDENCE_KINDS)}", field="kind")
    limit = context.settings.max_attachment_bytes
    if len(content) > limit:
        raise InvalidInput(
            f"the file has {len(content):,} bytes; the limit is {limit:,} "
            "(limits.max_attachment_bytes)",
            field="file",
        )
    if not content:
        raise InvalidInput("the file is empty", field="file")
    case_id = validation.case_ref(case_id)
    actor = validation.agent_id(actor, "actor")
    shown = validation.text(name, "name", max_chars=200)
    context.joinable(connection)
    get(context, case_id)
    digest = hashlib.sha256(content).hexdigest()
    data = {"digest": digest, "kind": kind, "name": shown, "size": len(content)}
    case = record(context, case_id, ATTACH_EVENT, actor=actor, data=data, connection=connection)
    # Kept only once the event is accepted: a refused attach leaves no file behind.
    context.store.attachments.put(digest, content, context.clock.now(), connection)
    return case
