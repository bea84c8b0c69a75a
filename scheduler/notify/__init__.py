"""Sending the customers' notifications: by mail over SMTP, by text message through an
SMS provider adapter (:mod:`.sms`), on the worker's own thread (:mod:`.delivery`)."""
