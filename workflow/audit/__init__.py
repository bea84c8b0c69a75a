"""Auditors' proof: exports and their check, signed checkpoints, verification in two
processes, and the private files they are written to."""
