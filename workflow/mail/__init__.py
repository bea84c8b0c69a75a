"""Escalation mail: its settings, the outbox row a fired deadline queues, rendering from
templates, and the outbox's bookkeeping for the delivery side (which sends it:
:mod:`casework.scheduler.mail`)."""
