"""Webhooks: subscriptions, the deliveries queued with each event, and their signatures."""
