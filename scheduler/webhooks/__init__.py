"""Sending webhook deliveries from the outbox."""
