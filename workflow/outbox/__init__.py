"""The outbox as the delivery side sees it: claims under a lease, each sending's outcome,
retries with backoff and dead letters, for mails and webhook deliveries (:mod:`.mail`)
and the customers' notifications (:mod:`.notify`)."""
