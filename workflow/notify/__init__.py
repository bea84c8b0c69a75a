"""Telling customers of their cases: notifications queued with the event that causes
them, in the customer's language, by mail or text message (:mod:`.queue`, :mod:`.messages`)."""
