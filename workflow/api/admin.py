"""Administration over HTTP: webhook subscriptions and deliveries, tokens, the mail
outbox, and the machines (read by anyone with a token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from casework.storage.outbox_store import STATUSES
from casework.storage.records import WEBHOOK_KIND, OutboxMail
from casework.workflow.access import scope
from casework.workflow.access.tokens import issue, revoke
from casework.workflow.api import models
from casework.workflow.api.cases import IDEMPOTENT
from casework.workflow.api.endpoints import endpoint
from casework.workflow.api.idempotency import Answer
from casework.workflow.api.refusals import StateConflict, TokenInUse
from casework.workflow.api.responses import Json, once, problems
from casework.workflow.api.security import Auth, Served, allowed
from casework.workflow.catalog import describe
from casework.workflow.engine import Engine
from casework.workflow.errors import InvalidInput, MailNotFound, WebhookNotFound
from casework.workflow.outbox.mail import Outbox
from casework.workflow.webhooks.queue import delivery_json
from casework.workflow.webhooks.subscriptions import add, remove

router = APIRouter(prefix="/v1", tags=["administration"])
Status = Annotated[str | None, Query(description=f"One of {', '.join(STATUSES)}.")]
Limit = Annotated[int | None, Query(ge=1, le=10_000)]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A row id (a 64-bit whole number).")]
"""A mail's or delivery's id: checked as 64-bit before it reaches SQL (422 otherwise)."""


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
    """Subscribe ``url`` to ``events``; the answer carries the signing secret, this once.
    A branch token's subscription hears its branch's cases only."""
    allowed(principal, "admin")
    key = request.headers.get("idempotency-key")

    def run() -> Answer:
        added = add(
            engine.context.store, body.url, body.events, engine.settings.webhooks,
            engine.clock.now(), principal.branch,
        )  # fmt: skip
        return Answer(201, added.to_json(), f"/v1/webhooks/{added.record.id}")

    return once(request, principal, engine, key, lambda: body.model_dump(mode="json"), run)


@router.post(
    "/erasures",
    responses=problems(409, 422),
    summary="Erase a customer's personal data",
    openapi_extra=IDEMPOTENT,
)
@endpoint("long")
def erase_customer(body: models.Erasure, request: Request, principal: Auth, engine: Served) -> Json:
    """What ``casework erase --customer`` does (admins): the values and the customer's
    secret deleted, every copy overwritten, an ``erased`` event on each of their cases,
    the database files rid of them; the answer names cases and fields, not values. A
    branch token erases only a customer whose cases are all in its branch."""
    allowed(principal, "admin")

    def run() -> Answer:
        if principal.branch is not None:
            scope.may_erase(principal, engine.list(customer=body.customer))
        return Answer(200, engine.erase(body.customer, actor=principal.actor,
                                        reason=body.reason, dry_run=body.dry_run))  # fmt: skip

    key = request.headers.get("idempotency-key")
    return once(request, principal, engine, key, lambda: body.model_dump(mode="json"), run)


@router.get(
    "/webhooks", response_model=list[models.Webhook], responses=problems(), summary="Subscriptions"
)
@endpoint("short")
def list_webhooks(principal: Auth, engine: Served, removed: bool = False) -> Json:
    """The subscriptions (with ``removed=true``, the ended ones too); a branch token's,
    those of its branch."""
    allowed(principal, "admin")
    hooks = engine.context.store.webhooks.subscriptions(removed=removed)
    return Json([h.to_json() for h in hooks if scope.sees_webhook(principal, h)])


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
    if webhook_id not in _own_hooks(engine, principal):
        raise WebhookNotFound(webhook_id)
    return Json(remove(engine.context.store, webhook_id, engine.clock.now()).to_json())


@router.get(
    "/webhooks/deliveries",
    response_model=list[models.Delivery],
    responses=problems(422),
    summary="Webhook deliveries",
)
@endpoint("long")
def deliveries(principal: Auth, engine: Served, status: Status = None, limit: Limit = None) -> Json:
    """The deliveries: status, attempts, the receiver's last answer (a branch token's:
    those of its branch's subscriptions)."""
    allowed(principal, "admin")
    if principal.branch is None:
        rows = Outbox(engine.context, kind=WEBHOOK_KIND).list(status=status, limit=limit)
    else:
        own = _own_hooks(engine, principal)
        found = Outbox(engine.context, kind=WEBHOOK_KIND).list(
            status=status, branch=principal.units()
        )
        rows = [r for r in found if r.body.get("webhook") in own][:limit]
    return Json([delivery_json(r) for r in rows])


@router.post(
    "/webhooks/deliveries/{delivery_id}/retry",
    response_model=models.Delivery,
    responses=problems(404, 409, 422),
    summary="Send a dead delivery again",
    openapi_extra=IDEMPOTENT,
)
@endpoint("short")
def retry_delivery(delivery_id: RowId, request: Request, principal: Auth, engine: Served) -> Json:
    """Queue the dead delivery again, due at once, its attempts counted afresh."""
    allowed(principal, "admin")

    def run() -> Answer:
        if principal.branch is not None:
            own = _own_hooks(engine, principal)
            found = _rows_seen(engine, principal, WEBHOOK_KIND, delivery_id)
            if not any(r.body.get("webhook") in own for r in found):
                raise MailNotFound(delivery_id)
        return Answer(
            200, delivery_json(_requeued(Outbox(engine.context, kind=WEBHOOK_KIND), delivery_id))
        )

    key = request.headers.get("idempotency-key")
    return once(request, principal, engine, key, lambda: None, run)


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
    """Make a token; the answer carries it, this once (only a hash is kept). A branch
    token makes tokens of its own branch only, of no role above its own."""
    scope.may_mint(principal, body.role, body.branch)
    key = request.headers.get("idempotency-key")

    def run() -> Answer:
        made = issue(engine.context.store, body.actor, body.role, body.branch, engine.clock.now())
        return Answer(
            201, {**made.record.to_json(), "token": made.token}, f"/v1/tokens/{made.record.id}"
        )

    return once(request, principal, engine, key, lambda: body.model_dump(mode="json"), run)


@router.get("/tokens", response_model=list[models.Token], responses=problems(), summary="Tokens")
@endpoint("short")
def list_tokens(principal: Auth, engine: Served) -> Json:
    """Every token: actor, role, branch, made and revoked when (a branch token's: those
    of its branch)."""
    allowed(principal, "admin")
    return Json(
        [t.to_json() for t in scope.visible_tokens(principal, engine.context.store.access.tokens())]
    )


@router.delete(
    "/tokens/{token_id}",
    response_model=models.Token,
    responses=problems(404, 409, 422),
    summary="Revoke a token",
)
@endpoint("short")
def revoke_token(token_id: str, request: Request, principal: Auth, engine: Served) -> Json:
    """Revoke the token: every request with it to any process is refused from now on
    (within two seconds: a process trusts a token it resolved that long). A branch
    token revokes its branch's tokens only. The token a request is made with may not
    revoke itself (409)."""
    scope.may_revoke(principal, engine.context.store.access.tokens(), token_id)
    if token_id == principal.token_id:
        raise TokenInUse(token_id)
    revoked = revoke(engine.context.store, token_id, engine.clock.now())
    request.app.state.principals.forget(token_id)
    return Json(revoked.to_json())


@router.get("/outbox", response_model=list[models.Mail], responses=problems(422), summary="Mails")
@endpoint("long")
def outbox(principal: Auth, engine: Served, status: Status = None, limit: Limit = None) -> Json:
    """The escalation mails and daily reports: status, attempts, next attempt, last
    error (a branch token's: those of its branch's cases, no report)."""
    allowed(principal, "admin")
    mails = Outbox(engine.context).list(status=status, limit=limit, branch=principal.units())
    return Json([m.as_json() for m in mails])


@router.post(
    "/outbox/{mail_id}/retry",
    response_model=models.Mail,
    responses=problems(404, 409, 422),
    summary="Send a dead mail again",
    openapi_extra=IDEMPOTENT,
)
@endpoint("short")
def retry_mail(mail_id: RowId, request: Request, principal: Auth, engine: Served) -> Json:
    """Queue the dead letter again, due at once, its attempts counted afresh."""
    allowed(principal, "admin")

    def run() -> Answer:
        if principal.branch is not None and not _rows_seen(engine, principal, "mail", mail_id):
            raise MailNotFound(mail_id)
        return Answer(200, _requeued(Outbox(engine.context), mail_id).as_json())

    key = request.headers.get("idempotency-key")
    return once(request, principal, engine, key, lambda: None, run)


@router.get("/machines", responses=problems(), summary="The machines")
@endpoint("short")
def machines(principal: Auth, engine: Served) -> Json:
    """Every registered machine: its states and events."""
    allowed(principal, "read")
    return Json([describe(d) for d in engine.registry])


def _requeued(outbox: Outbox, row_id: int) -> OutboxMail:
    """The dead row queued again; one that is not dead is a conflict (409)."""
    try:
        return outbox.retry(row_id)
    except InvalidInput as err:
        if type(err) is InvalidInput:  # not dead: its state, not the request, is at odds
            raise StateConflict(str(err)) from None
        raise


def _own_hooks(engine: Engine, principal: Auth) -> set[str]:
    """The ids of the subscriptions, ended ones too, the principal may see."""
    hooks = engine.context.store.webhooks.subscriptions(removed=True)
    return {h.id for h in hooks if scope.sees_webhook(principal, h)}


def _rows_seen(engine: Engine, principal: Auth, kind: str, row_id: int) -> list[OutboxMail]:
    """The outbox row ``row_id`` of ``kind``, if it is of the principal's branch (or one
    of its stores)."""
    return engine.context.store.outbox.rows(kind=kind, branch=principal.units(), mail_id=row_id)
