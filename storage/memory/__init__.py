"""The storage port in plain Python: the reference store, and a store for a host's tests.

Every table is a dict (or a list) of records, and what each port method does is written
out here as simply as it can be, so this room reads as the contract itself: the same
ordering, conflicts, claims and leases as the SQL store, every time timezone-aware UTC.
It passes the same contract suite (``tests/contract/``) as SQLite and PostgreSQL.

A transaction works on a deep copy of the rows and, when it ends without an error, puts
the copy in their place; a read takes the rows as they stand (one consistent moment,
since committed rows are never changed in place). One writer at a time, as on SQLite.
Nothing outlives the process, and no host's database transaction can be joined.
"""

from casework.storage.memory.store import MemoryStore

__all__ = ["MemoryStore"]
