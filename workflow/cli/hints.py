"""What the command line adds to the library's messages, which name no command and no
option (the API answers with them too): each parameter a message names in backquotes
(```to```) becomes the option it is given as (``--to``), and an error of something not
found ends with the command that lists what there is."""

from __future__ import annotations

import re

from casework.workflow.errors import (
    CaseNotFound,
    CaseworkError,
    MailNotFound,
    TokenNotFound,
    WebhookNotFound,
)

_PARAMETER = re.compile(r"`([a-z][a-z_]*)`")
_LISTS: tuple[tuple[type[CaseworkError], str], ...] = (
    (CaseNotFound, "`casework list` shows the cases there are"),
    (MailNotFound, "`casework outbox` lists the mails there are"),
    (TokenNotFound, "`casework tokens list` shows them"),
    (WebhookNotFound, "`casework webhooks list` shows them"),
)


def as_options(text: str) -> str:
    """``text`` with each backquoted parameter written as its option: `last` -> --last."""
    return _PARAMETER.sub(lambda found: "--" + found.group(1).replace("_", "-"), text)


def worded(error: CaseworkError) -> str:
    """The error's message as the command line says it."""
    text = as_options(str(error))
    hint = next((hint for kind, hint in _LISTS if isinstance(error, kind)), None)
    return text if hint is None else f"{text}; {hint}"
