"""The exception tree: every error casework raises on purpose is in it, drawn and exported."""

from __future__ import annotations

import inspect

import casework.workflow as workflow
from casework.scheduler.mail.smtp_transport import SmtpFailure
from casework.workflow import errors


def _tree() -> list[type[errors.CaseworkError]]:
    return [
        value
        for value in vars(errors).values()
        if inspect.isclass(value) and issubclass(value, errors.CaseworkError)
    ]


def test_every_error_is_exported_and_drawn() -> None:
    """Each class of workflow.errors is in its __all__, in workflow's, and in the drawing
    of the tree in the module's docstring; __all__ names nothing else."""
    names = {cls.__name__ for cls in _tree()}
    assert set(errors.__all__) == names
    assert names <= set(workflow.__all__)
    drawing = errors.__doc__ or ""
    for name in (*names, SmtpFailure.__name__):
        assert f"── {name} " in drawing or name == "CaseworkError", name


def test_every_error_says_its_exit_status() -> None:
    """Bad input is 2; failures of the database, the mail server and the disk are 1."""
    failures = {errors.StorageFailure, errors.ReadOnlyDatabase, errors.ClockAhead,
                errors.MailFailure, errors.WriteFailed, SmtpFailure}  # fmt: skip
    for cls in [*_tree(), SmtpFailure]:
        assert cls.exit_status == (1 if cls in failures else 2), cls
    assert issubclass(SmtpFailure, errors.MailFailure)


def test_every_error_says_its_http_status() -> None:
    """The API answers each error with its class's ``http_status``: what is not there
    404, a conflict with what is there 409 (a stale If-Match 412), the database 503."""
    from casework.workflow.api.idempotency import RequestInProgress
    from casework.workflow.api.refusals import PreconditionFailed, StateConflict, TokenInUse
    from casework.workflow.survey.token import LinkInvalid

    most_specific_first = [(PreconditionFailed, 412), (errors.NotAuthenticated, 401),
                           (errors.NotPermitted, 403), (errors.NotFound, 404),
                           (errors.Conflict, 409), (errors.StorageFailure, 503)]  # fmt: skip
    for cls in [*_tree(), SmtpFailure, RequestInProgress, StateConflict, TokenInUse, LinkInvalid]:
        status = next((code for base, code in most_specific_first if issubclass(cls, base)), 422)
        assert cls.http_status == status, cls
    for cls in (errors.CaseNotFound, errors.AttachmentNotFound, errors.MailNotFound,
                errors.TokenNotFound, errors.WebhookNotFound):  # fmt: skip
        assert issubclass(cls, errors.NotFound), cls
    for cls in (errors.ConcurrentUpdate, StateConflict, RequestInProgress, TokenInUse):
        assert issubclass(cls, errors.Conflict), cls
