"""The exceptions of casework, one tree rooted in :class:`CaseworkError`.

::

    CaseworkError                    HTTP 422, exit status 2 unless said otherwise
    ├── InvalidInput                 a value is malformed or out of range
    │   ├── NaiveDatetime            a datetime without a time zone
    │   ├── TimeOutOfOrder           before the case's previous event, or in the future
    │   ├── UnknownChoice            a channel, category, priority or state not configured
    │   ├── OutsideBranch            a branch token opening a case of another branch
    │   ├── UnknownEvent             an event the case's machine does not have
    │   ├── UnknownMachine           no machine of that name and version
    │   ├── RemedyRefused            the warranty rules do not give that remedy (now)
    │   └── ConfigError              a configuration file that cannot be used
    ├── NotFound                     no such thing, or not one the caller may see (HTTP 404)
    │   ├── CaseNotFound             no case with that id
    │   ├── AttachmentNotFound       no file kept under that digest
    │   ├── MailNotFound             no outbox mail with that id
    │   ├── TokenNotFound            no API token with that id
    │   └── WebhookNotFound          no webhook subscription with that id
    ├── Conflict                     the thing's state forbids it now (HTTP 409)
    │   └── ConcurrentUpdate         the case changed since it was read
    ├── NotAuthenticated             no token, or a revoked or unknown one (HTTP 401)
    ├── NotPermitted                 the token's role or branch may not do it (HTTP 403)
    │   └── BeyondAuthority          above the role's authority ([authority])
    ├── EventNotAllowed              the event has no transition from the case's state
    │   └── GuardFailed              it has one, but a condition of it failed
    ├── StorageFailure               the database failed or refused (HTTP 503, exit status 1)
    │   ├── ReadOnlyDatabase         it refuses every write: a hot standby, a read-only file
    │   └── ClockAhead               this host's clock runs ahead of the database server's
    ├── MailFailure                  the mail server refused or could not be reached (1)
    │   └── SmtpFailure              one sending's answer (scheduler.mail.smtp_transport)
    └── WriteFailed                  a file could not be written whole: disk full, say (1)

Each error class says how it is answered, as class attributes: ``exit_status`` is what
the command line exits with (2 for what the caller can correct, 1 for a failure of the
database, the mail server or the disk), ``http_status`` the status of the API's problem
answer. Catch :class:`NotFound` or :class:`Conflict` for every kind of either.

The messages name no command and no option: the API answers with them too (only an
engine refusing to open a schema that is not current, which no answer reports, names the
operator's `casework migrate` beside ``migrate=True``). A message
names a parameter of the call in backquotes (```to` must be later than `from```); the
command line shows it as its option (``--to``) and adds the command that helps.

The lower layers raise their own errors, which never import this module; the engine
turns them into these at its boundary (:mod:`casework.workflow.storage_boundary`): a
driver, SQLAlchemy or ``casework.storage.errors.StorageError`` becomes
:class:`StorageFailure` (or :class:`ReadOnlyDatabase`),
``casework.storage.errors.WriteConflict`` :class:`ConcurrentUpdate` (or a taken case id,
:class:`InvalidInput`), ``casework.machines.sla.PolicyError`` :class:`ConfigError` naming
the file and key, ``casework.machines.UnknownMachineError`` :class:`UnknownMachine`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

__all__ = [
    "AttachmentNotFound",
    "BeyondAuthority",
    "CaseNotFound",
    "CaseworkError",
    "ClockAhead",
    "ConcurrentUpdate",
    "ConfigError",
    "Conflict",
    "EventNotAllowed",
    "GuardFailed",
    "InvalidInput",
    "MailFailure",
    "MailNotFound",
    "NaiveDatetime",
    "NotAuthenticated",
    "NotFound",
    "NotPermitted",
    "OutsideBranch",
    "ReadOnlyDatabase",
    "RemedyRefused",
    "StorageFailure",
    "TimeOutOfOrder",
    "TokenNotFound",
    "UnknownChoice",
    "UnknownEvent",
    "UnknownMachine",
    "WebhookNotFound",
    "WriteFailed",
]


class CaseworkError(Exception):
    """Base of every error casework raises on purpose."""

    exit_status = 2
    """The command line's exit status for it: 2, bad input the caller can correct."""
    http_status = 422
    """The HTTP status of the API's answer to it: 422, a request it cannot carry out."""


class InvalidInput(CaseworkError):
    """A value given to casework is malformed or out of range; ``field`` names it (the
    bare name, without a parameter's backquotes or an option's dashes)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = None if field is None else field.strip("`-")


class NaiveDatetime(InvalidInput):
    """A datetime without a time zone was given; casework only takes aware instants."""


class TimeOutOfOrder(InvalidInput):
    """A time lies before the case's previous event or too far in the future."""


class UnknownChoice(InvalidInput):
    """A value is not one of the configured choices; ``choices`` lists those that are."""

    def __init__(self, field: str, value: str, choices: Sequence[str]) -> None:
        super().__init__(
            f"unknown {field} {value!r}; valid {field} values: {', '.join(choices)}",
            field=field,
        )
        self.value = value
        self.choices = tuple(choices)


class OutsideBranch(InvalidInput):
    """A token of ``branch`` asked to open a case of a branch outside it (not its own,
    nor one of its stores)."""

    def __init__(self, branch: str) -> None:
        super().__init__(
            f"a token of branch {branch} opens cases of that branch (and its stores) only",
            field="branch",
        )
        self.branch = branch


class UnknownEvent(InvalidInput):
    """The case's machine has no event of this name; ``suggestion`` is the nearest one."""

    def __init__(
        self, case_id: str, event: str, machine: str, known: Sequence[str], suggestion: str | None
    ) -> None:
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        super().__init__(
            f"case {case_id}: {machine} has no event {event!r}{hint} "
            f"(its events: {', '.join(known)})",
            field="event",
        )
        self.case_id = case_id
        self.event = event
        self.suggestion = suggestion
        self.choices = tuple(known)


class UnknownMachine(InvalidInput):
    """No machine of that name (and version) is registered."""


class RemedyRefused(InvalidInput):
    """The warranty rules do not give this remedy: the message names the rule, its
    version and when the window closed."""


class ConfigError(InvalidInput):
    """A configuration file is unreadable or holds a bad value; names the file and key."""


class NotFound(CaseworkError):
    """The thing asked for does not exist, or is not one the caller may see."""

    http_status = 404


class CaseNotFound(NotFound):
    """There is no case with that id."""

    def __init__(self, case_id: str) -> None:
        super().__init__(f"no case {case_id!r}")
        self.case_id = case_id


class AttachmentNotFound(NotFound):
    """No file is kept under that digest."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"no attachment {digest}")
        self.digest = digest


class MailNotFound(NotFound):
    """There is no outbox mail with that id."""

    def __init__(self, mail_id: int) -> None:
        super().__init__(f"no outbox mail {mail_id}")
        self.mail_id = mail_id


class TokenNotFound(NotFound):
    """No API token has this id."""

    def __init__(self, token_id: str) -> None:
        super().__init__(f"no API token {token_id!r}")
        self.token_id = token_id


class WebhookNotFound(NotFound):
    """No webhook subscription has this id."""

    def __init__(self, hook_id: str) -> None:
        super().__init__(f"no webhook {hook_id!r}")
        self.webhook_id = hook_id


class NotAuthenticated(CaseworkError):
    """A request came without a token, or with one that is unknown or revoked."""

    http_status = 401


class NotPermitted(CaseworkError):
    """The token's role may not do this, or its branch does not hold the case."""

    http_status = 403


class BeyondAuthority(NotPermitted):
    """The decision is above the role's authority (``[authority]``): the message names
    the role and the escalation level that may decide it (``escalate_now`` takes the
    case there)."""

    def __init__(self, message: str, *, role: str, needed: str | None, level: int | None) -> None:
        super().__init__(message)
        self.role = role
        self.needed = needed
        self.level = level


class EventNotAllowed(CaseworkError):
    """The event has no transition from the case's current state."""

    def __init__(
        self, case_id: str, event: str, state: str, allowed: Sequence[str], message: str = ""
    ) -> None:
        self.case_id = case_id
        self.event = event
        self.state = state
        self.allowed = tuple(allowed)
        super().__init__(
            message
            or f"case {case_id}: {event!r} is not allowed in state {state!r}; "
            f"allowed: {', '.join(allowed) or 'none (the case is closed)'}"
        )


class GuardFailed(EventNotAllowed):
    """The event has a transition from this state, but its ``condition`` did not hold."""

    def __init__(
        self,
        case_id: str,
        event: str,
        state: str,
        allowed: Sequence[str],
        condition: str,
        requirement: str,
    ) -> None:
        self.condition = condition
        self.requirement = requirement
        super().__init__(
            case_id,
            event,
            state,
            allowed,
            f"case {case_id}: {event!r} refused in state {state!r}: "
            f"condition {condition} failed ({requirement})",
        )


class Conflict(CaseworkError):
    """What is there now forbids the request: it changed since it was read, or its state
    does not allow it."""

    http_status = 409


class ConcurrentUpdate(Conflict):
    """The case is no longer at the version the caller read; read it again and retry."""

    def __init__(self, case_id: str, expected_version: int, actual_version: int | None) -> None:
        self.case_id = case_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        now = "" if actual_version is None else f", it is now at version {actual_version}"
        super().__init__(
            f"case {case_id} changed: expected version {expected_version}{now}; "
            "read the case again and retry"
        )


class StorageFailure(CaseworkError):
    """The database failed or refused a statement (the driver's message follows)."""

    exit_status = 1
    http_status = 503


class ReadOnlyDatabase(StorageFailure):
    """The database refuses every write: a hot standby, a read-only file or session."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            "the database is read-only (a hot standby, a read-only file or a read-only "
            f"session) and this writes; use the primary or a writable file ({detail})"
        )


class ClockAhead(StorageFailure):
    """This host's clock runs ahead of the database server's by more than ``[limits]
    max_clock_skew_s``: nothing it would stamp is recorded (HTTP 503, exit status 1)."""

    def __init__(self, ahead: timedelta, allowed: timedelta) -> None:
        self.ahead = ahead
        self.allowed = allowed
        super().__init__(
            f"this host's clock is {_span(ahead)} ahead of the database server's (at most "
            f"{_span(allowed)} is allowed, [limits] max_clock_skew_s): nothing was recorded; "
            "set this host's clock right (NTP) and try again"
        )


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds >= 2 * 86_400:
        return f"{seconds // 86_400} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} hours"
    return f"{seconds} s"


class MailFailure(CaseworkError):
    """Sending mail failed: the server's (or the network's) answer."""

    exit_status = 1


class WriteFailed(CaseworkError):
    """A file casework writes could not be written whole (nothing of it is left)."""

    exit_status = 1
