"""What the command line adds to the library's messages, which name no command and no
option (the API answers with them too): each parameter a message names in backquotes
(```to```) becomes the option it is given as (``--to``), a neutral phrase of a refusal
becomes the command or option that helps, and an error of something not found ends with
the command that lists what there is."""

from __future__ import annotations

import re

from casework.workflow.errors import (
    CaseNotFound,
    CaseworkError,
    GuardFailed,
    InvalidInput,
    MailNotFound,
    RemedyRefused,
    TokenNotFound,
    WebhookNotFound,
)

_PARAMETER = re.compile(r"`([a-z][a-z_]*)`")
_OPTIONS = {"schema": "--db-schema", "table_prefix": "--db-table-prefix"}
"""The parameters whose option is not named after them (the database's options)."""
_SAID: tuple[tuple[type[CaseworkError], str, str], ...] = (
    (InvalidInput, "finishing the erasure completes it", "`casework erase --finish` completes it"),
    (RemedyRefused, "with the attribute purchase_date=", "with --attr purchase_date="),
    (
        RemedyRefused,
        "(an attachment of kind test_report)",
        "(casework attach CASE FILE --kind test_report)",
    ),
    (
        InvalidInput,
        "a replan records new ones",
        "a replan records new ones; see `casework tick` and `casework replan`",
    ),
    (
        InvalidInput,
        "not fired as an event",
        "not fired as an event: `casework attach CASE FILE --kind K`",
    ),
    (GuardFailed, "data note=<non-empty text>", "--note TEXT (data note=<non-empty text>)"),
)
"""Each neutral phrase of a refusal, as the command line says it."""
_LISTS: tuple[tuple[type[CaseworkError], str], ...] = (
    (CaseNotFound, "`casework list` shows the cases there are"),
    (MailNotFound, "`casework outbox` lists the mails there are"),
    (TokenNotFound, "`casework tokens list` shows them"),
    (WebhookNotFound, "`casework webhooks list` shows them"),
)


def as_options(text: str) -> str:
    """``text`` with each backquoted parameter written as its option: `last` -> --last,
    `schema` -> --db-schema."""
    return _PARAMETER.sub(
        lambda found: _OPTIONS.get(found.group(1)) or "--" + found.group(1).replace("_", "-"),
        text,
    )


def worded(error: CaseworkError) -> str:
    """The error's message as the command line says it."""
    text = as_options(str(error))
    for kind, neutral, here in _SAID:
        if isinstance(error, kind):
            text = text.replace(neutral, here)
    hint = next((hint for kind, hint in _LISTS if isinstance(error, kind)), None)
    return text if hint is None else f"{text}; {hint}"
