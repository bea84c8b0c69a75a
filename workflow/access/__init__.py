"""Who may do what over HTTP: bearer tokens (stored as hashes), roles and branches."""
