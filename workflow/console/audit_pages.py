"""Verification, checkpoints and the export, for auditors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from casework.workflow.access.scope import visible_case, whole_database
from casework.workflow.console.frame import (
    engine_of,
    lang_of,
    reader_of,
    render,
    router,
    signed_in,
)
from casework.workflow.console.sessions import (
    Session,
)
from casework.workflow.errors import (
    CaseworkError,
    InvalidInput,
)
from casework.workflow.labels import refusal


def _refused(request: Request, session: Session, err: CaseworkError) -> Response:
    """The audit page again, the refusal above it in the page's language."""
    flash = refusal(lang_of(request), err)
    return render(request, "audit.html", "audit", session, flash=flash, report=None)


@router.get("/audit")
@signed_in("audit")
def audit(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Verification and export, for auditors."""
    return render(request, "audit.html", "audit", session, report=None)


@router.post("/audit")
@signed_in("audit")
def verify(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Verify one case (its id or a unique prefix), or every case."""
    engine = reader_of(request)
    try:
        if form.get("all"):
            whole_database(session.principal, "verify")
            report = engine.verify()
        else:
            asked = engine.resolve(form.get("case", "").strip(), session.principal.branch)
            report = engine.verify(visible_case(engine, session.principal, asked).id)
    except CaseworkError as err:
        return _refused(request, session, err)
    return render(request, "audit.html", "audit", session, report=report.to_json())


@router.post("/audit/checkpoint")
@signed_in("audit")
def verify_checkpoint(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Check a pasted checkpoint against a pasted keyring, and the history it signed."""
    engine = engine_of(request)
    try:
        whole_database(session.principal, "verify")
        from casework.workflow.audit.checkpoints import (
            Checkpoint,
            check_checkpoint,
            keyring_from_text,
        )

        try:
            document = json.loads(form.get("checkpoint", ""))
        except ValueError:
            raise InvalidInput("the checkpoint is not JSON", field="checkpoint") from None
        checkpoint = Checkpoint.from_json(document, "the checkpoint")
        keys = keyring_from_text(form.get("keyring", ""), "the keyring")
        report = check_checkpoint(engine.context, checkpoint, keys)
    except CaseworkError as err:
        return _refused(request, session, err)
    except ImportError:
        flash = "checkpoints need the signing extra: pip install 'casework[signing]'"
        return render(request, "audit.html", "audit", session, flash=flash, report=None)
    return render(request, "audit.html", "audit", session, report=report.to_json())


@router.get("/audit/export")
@signed_in("audit")
def export(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """The whole export as a download."""
    from casework.workflow.audit.export_stream import export_stream

    whole_database(session.principal, "export")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")  # noqa: DTZ005 - a file name, local on purpose
    return StreamingResponse(
        export_stream(reader_of(request).context, None, None), media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="casework-{stamp}.jsonl"'},
    )  # fmt: skip
