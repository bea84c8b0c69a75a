"""Administration over HTTP: webhook subscriptions and deliveries, tokens, the mail
outbox, and the machines (read by anyone with a token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from casework.storage.outbox_store import STATUSES
from casework.storage.records import WEBHOOK_KIND
from casework.workflow.access.tokens import issue, revoke
from casework.workflow.api import models
from casework.workflow.api.cases import IDEMPOTENT
from casework.workflow.api.endpoints import endpoint
from casework.workflow.api.idempotency import Answer
from casework.workflow.api.responses import Json, once, problems
from casework.workflow.api.security import Auth, Served, allowed
from casework.workflow.cases.catalog import describe
from casework.workflow.mail.outbox import Outbox
from casework.workflow.webhooks.queue import delivery_json
from casework.workflow.webhooks.subscriptions import add, remove

router = APIRouter(prefix="/v1", tags=["administration"])
Status = Annotated[str | None, Query(description=f"One of {', '.join(STATUSES)}.")]
Limit = Annotated[int | None, Query(ge=1, le=10_000)]


@router.post(
    "/webhooks",
    status_code=201,
    response_model=models.Webhook,
    responses=problems(409, 422),
    summary="Subscribe a URL",
    openapi_extra=IDEMPOTENT,
)
@endpoint("short")
def add_webhook(
    body: models.NewWebhook,
    request: Request,
    principal: Auth,
    engine: Served,
) -> Json:
    """Subscribe ``url`` to ``events``; the answer carries the signing secret, this once."""
    allowed(principal, "admin")
    key = request.headers.get("idempotency-key")

    def run() -> Answer:
        added = add(
            engine.store, body.url, body.events, engine.settings.webhooks, engine.clock.now()
        )
        return Answer(201, added.to_json(), f"/v1/webhooks/{added.record.id}")

    return once(request, principal, engine, key, lambda: body.model_dump(mode="json"), run)


@router.post("/erasures", responses=problems(422), summary="Erase a customer's personal data")
@endpoint("long")
def erase_customer(body: models.Erasure, principal: Auth, engine: Served) -> Json:
    """What ``casework erase --customer`` does (admins): the values and the customer's
    secret deleted, every copy overwritten, an ``erased`` event on each of their cases,
    the database files rid of them; the answer names cases and fields, not values."""
    allowed(principal, "admin")
    return Json(engine.erase(body.customer, actor=principal.actor, reason=body.reason,
                             dry_run=body.dry_run))  # fmt: skip


@router.get(
    "/webhooks", response_model=list[models.Webhook], responses=problems(), summary="Subscriptions"
)
@endpoint("short")
def list_webhooks(principal: Auth, engine: Served, removed: bool = False) -> Json:
    """The subscriptions (with ``removed=true``, the ended ones too)."""
    allowed(principal, "admin")
    return Json([h.to_json() for h in engine.store.webhooks(removed=removed)])


@router.delete(
    "/webhooks/{webhook_id}",
    response_model=models.Webhook,
    responses=problems(404, 422),
    summary="End a subscription",
)
@endpoint("short")
def remove_webhook(webhook_id: str, principal: Auth, engine: Served) -> Json:
    """End the subscription: nothing more is queued or sent to it."""
    allowed(principal, "admin")
    return Json(remove(engine.store, webhook_id, engine.clock.now()).to_json())


@router.get(
    "/webhooks/deliveries",
    response_model=list[models.Delivery],
    responses=problems(422),
    summary="Webhook deliveries",
)
@endpoint("long")
def deliveries(principal: Auth, engine: Served, status: Status = None, limit: Limit = None) -> Json:
    """The deliveries: status, attempts, the receiver's last answer."""
    allowed(principal, "admin")
    rows = Outbox(engine, kind=WEBHOOK_KIND).list(status=status, limit=limit)
    return Json([delivery_json(r) for r in rows])


@router.post(
    "/webhooks/deliveries/{delivery_id}/retry",
    response_model=models.Delivery,
    responses=problems(404, 422),
    summary="Send a dead delivery again",
)
@endpoint("short")
def retry_delivery(delivery_id: int, principal: Auth, engine: Served) -> Json:
    """Queue the dead delivery again, due at once, its attempts counted afresh."""
    allowed(principal, "admin")
    return Json(delivery_json(Outbox(engine, kind=WEBHOOK_KIND).retry(delivery_id)))


@router.post(
    "/tokens",
    status_code=201,
    response_model=models.Token,
    responses=problems(409, 422),
    summary="Make a token",
    openapi_extra=IDEMPOTENT,
)
@endpoint("short")
def create_token(
    body: models.NewToken,
    request: Request,
    principal: Auth,
    engine: Served,
) -> Json:
    """Make a token; the answer carries it, this once (only a hash is kept)."""
    allowed(principal, "admin")
    key = request.headers.get("idempotency-key")

    def run() -> Answer:
        made = issue(engine.store, body.actor, body.role, body.branch, engine.clock.now())
        return Answer(
            201, {**made.record.to_json(), "token": made.token}, f"/v1/tokens/{made.record.id}"
        )

    return once(request, principal, engine, key, lambda: body.model_dump(mode="json"), run)


@router.get("/tokens", response_model=list[models.Token], responses=problems(), summary="Tokens")
@endpoint("short")
def list_tokens(principal: Auth, engine: Served) -> Json:
    """Every token: actor, role, branch, made and revoked when."""
    allowed(principal, "admin")
    return Json([t.to_json() for t in engine.store.tokens()])


@router.delete(
    "/tokens/{token_id}",
    response_model=models.Token,
    responses=problems(404, 422),
    summary="Revoke a token",
)
@endpoint("short")
def revoke_token(token_id: str, request: Request, principal: Auth, engine: Served) -> Json:
    """Revoke the token: every request with it to any process is refused from now on
    (within two seconds: a process trusts a token it resolved that long)."""
    allowed(principal, "admin")
    revoked = revoke(engine.store, token_id, engine.clock.now())
    request.app.state.principals.forget(token_id)
    return Json(revoked.to_json())


@router.get("/outbox", response_model=list[models.Mail], responses=problems(422), summary="Mails")
@endpoint("long")
def outbox(principal: Auth, engine: Served, status: Status = None, limit: Limit = None) -> Json:
    """The escalation mails: status, attempts, next attempt, last error."""
    allowed(principal, "admin")
    return Json([m.as_json() for m in Outbox(engine).list(status=status, limit=limit)])


@router.post(
    "/outbox/{mail_id}/retry",
    response_model=models.Mail,
    responses=problems(404, 422),
    summary="Send a dead mail again",
)
@endpoint("short")
def retry_mail(mail_id: int, principal: Auth, engine: Served) -> Json:
    """Queue the dead letter again, due at once, its attempts counted afresh."""
    allowed(principal, "admin")
    return Json(Outbox(engine).retry(mail_id).as_json())


@router.get("/machines", responses=problems(), summary="The machines")
@endpoint("short")
def machines(principal: Auth, engine: Served) -> Json:
    """Every registered machine: its states and events."""
    allowed(principal, "read")
    return Json([describe(d) for d in engine.registry])
