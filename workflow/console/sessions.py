"""Console sessions: a token exchanged for an HttpOnly, SameSite=Strict cookie, and the
CSRF token every form of the session carries. The sign-in form itself carries a
pre-session CSRF token (the same value in a cookie of its own) and is refused when it
comes from another site (login CSRF).

Only a hash of the cookie is stored; each request looks the session and its token up
again, so a revoked token ends its sessions at once.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from casework.storage.port import Store
from casework.workflow.access.organisation import Organisation
from casework.workflow.access.tokens import Principal, authenticate, principal_of, secret_hash
from casework.workflow.errors import NotAuthenticated, NotPermitted

COOKIE = "casework_session"
LOGIN_COOKIE = "casework_login"
"""The sign-in form's own CSRF token (double submit: the form's field must equal it)."""
LASTS = timedelta(hours=12)
"""How long a session lasts: a working day."""


@dataclass(frozen=True)
class Session:
    """Who a browser is signed in as, and the CSRF token of its forms."""

    principal: Principal
    csrf: str


def sign_in(
    store: Store, token: str, now: datetime, organisation: Organisation | None = None
) -> tuple[str, Session]:
    """Start a session for a valid token: (the cookie's value, the session)."""
    principal = authenticate(store, token.strip(), organisation)
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    store.access.add_session(secret_hash(cookie), principal.token_id, csrf, now, now + LASTS)
    return cookie, Session(principal, csrf)


def session_of(
    store: Store, cookie: str | None, now: datetime, organisation: Organisation | None = None
) -> Session:
    """The live session of a cookie (its token's branch covering its stores under
    ``organisation``); :class:`NotAuthenticated` for none, an ended one or one whose
    token was revoked."""
    found = None if not cookie else store.access.session(secret_hash(cookie))
    if found is None or found.expires_at <= now:
        raise NotAuthenticated("sign in with a token")
    if found.token.revoked_at is not None:
        raise NotAuthenticated(f"token {found.token.id} was revoked")
    token = found.token
    return Session(principal_of(token, organisation), found.csrf)


def check_csrf(session: Session, given: str | None) -> None:
    """Refuse a form whose CSRF token is not the session's."""
    if not given or not hmac.compare_digest(given, session.csrf):
        raise NotAuthenticated("the form has expired: load the page again")


def login_csrf() -> str:
    """A fresh pre-session CSRF token for the sign-in form and its cookie."""
    return secrets.token_urlsafe(24)


def check_login(
    cookie: str | None,
    given: str | None,
    origin: str | None,
    fetch_site: str | None,
    own: Collection[str | None],
) -> None:
    """Refuse a sign-in whose form token does not match its cookie, or that another
    site sent: the browser's ``Sec-Fetch-Site`` other than same-origin, or (from a
    browser that sends none) an ``Origin`` whose host is none of ``own`` (the request's
    ``Host`` and ``X-Forwarded-Host``). A page elsewhere must not sign a browser in as
    someone else."""
    if fetch_site is not None:
        if fetch_site not in ("same-origin", "none"):
            raise NotPermitted("sign-in from another site")
    elif origin is not None and urlsplit(origin).netloc not in own:
        raise NotPermitted("sign-in from another site")
    if not cookie or not given or not hmac.compare_digest(given, cookie):
        raise NotPermitted("the sign-in form has expired: load the page again")


def sign_out(store: Store, cookie: str | None, now: datetime) -> None:
    """End the session of a cookie."""
    if cookie:
        store.access.drop_session(secret_hash(cookie), now)
