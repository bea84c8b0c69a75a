"""The console's pages: sign-in, an agent's queue, search and case pages, opening a
complaint, the overdue board, reports, tokens, erasure and the auditors' page, each in
a module of its own on one router. Roles decide as in the API; a branch token sees
only its branch. Every value reaches the page escaped."""

from __future__ import annotations

from casework.workflow.console import (  # noqa: F401 - each registers its pages
    audit_pages,
    boards,
    case_pages,
    erasing,
    finding,
    report_pages,
    signin,
    token_pages,
)
from casework.workflow.console.frame import CSP, PAGE_HEADERS, router, viewer_zone

__all__ = ["CSP", "PAGE_HEADERS", "router", "viewer_zone"]
