"""Sending the outbox: delivery over SMTP, its transport, and a local SMTP sink for the
demo (the ``demo`` extra)."""
