"""What storage raises: its own errors, never a driver's, on every path, read or write."""

from __future__ import annotations

from sqlalchemy.exc import ArgumentError


class StorageError(Exception):
    """The database refused or failed a statement; the message is the driver's.

    ``read_only`` says the database refuses every write (a hot standby, a read-only
    file or session)."""

    def __init__(self, message: str, *, read_only: bool = False) -> None:
        super().__init__(message)
        self.read_only = read_only


class WriteConflict(StorageError):
    """Another writer stored the same event first (a unique key was taken)."""


class MalformedRow(StorageError):
    """A stored row holds a value of the wrong type (text where bytes or a number
    belong, a size that is not its content's): tampering, or a broken copy."""


class SchemaConflict(StorageError):
    """The database holds another application's tables or Alembic history where
    casework's belong."""


class StorageBusy(StorageError):
    """Every connection of the pool stayed in use for the pool's whole wait."""


class UnusableName(ArgumentError):
    """A schema or table prefix casework cannot use; the URL itself may be fine."""
