"""Notifications to customers in the outbox: their kind, and the counts reports read.

A notification is an outbox row of kind :data:`NOTIFY_KIND`; the mail and webhook
senders never take one. This module imports no table definitions until a count is
asked for, so the write path that queues notifications loads nothing more.
"""

from __future__ import annotations

NOTIFY_KIND = "notify"
"""The outbox kind of a message to a customer (``[notify]``): sent apart from mail, by
its own sender, and never counted among mails."""
