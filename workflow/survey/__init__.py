"""The customer's own page: a signed link to one case's status and its survey
(:mod:`.token`, :mod:`.service`, :mod:`.pages`)."""
