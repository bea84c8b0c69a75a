"""One case at a time: opening, firing, reading and relating cases, attachments, remedies,
and rebuilding a case from its events."""
