"""Where storage errors become casework errors: the boundary of every public call.

A driver or SQLAlchemy error never leaves the engine as it is: a database that refuses
every write is :class:`ReadOnlyDatabase`, any other failure :class:`StorageFailure`,
each with the driver's first line.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from casework.storage.database import driver_errors, refuses_writes
from casework.storage.errors import SchemaConflict, StorageBusy, StorageError, UnusableName
from casework.workflow.errors import CaseworkError, InvalidInput, ReadOnlyDatabase, StorageFailure

F = TypeVar("F", bound=Callable[..., Any])


def first_line(err: BaseException) -> str:
    """The driver's message of a storage error, on one line."""
    text = str(getattr(err, "orig", None) or err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def storage_error_types() -> tuple[type[Exception], ...]:
    """Every error that storage or a loaded driver raises (an ``except`` clause asks only
    when something was raised)."""
    return (StorageError, SQLAlchemyError, *driver_errors())


def translated(err: BaseException) -> CaseworkError:
    """The casework error for a storage error."""
    if isinstance(err, UnusableName):  # a schema or table prefix, not the URL
        return InvalidInput(first_line(err), field="db")
    if isinstance(err, ArgumentError):
        return InvalidInput(f"not a usable database URL: {first_line(err)}", field="db")
    if isinstance(err, SchemaConflict):  # another application's tables: nothing to retry
        return InvalidInput(str(err), field="db")
    read_only = err.read_only if isinstance(err, StorageError) else refuses_writes(err)
    if read_only:
        return ReadOnlyDatabase(first_line(err))
    if isinstance(err, PoolTimeout | StorageBusy):  # every connection in use for the whole wait
        return StorageFailure(f"database busy: {first_line(err).split(' (Background', 1)[0]}")
    return StorageFailure(f"database error: {first_line(err)}")


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn storage errors raised inside into casework errors."""
    try:
        yield
    except storage_error_types() as err:
        raise translated(err) from err


def at_storage_boundary(func: F) -> F:
    """Decorate a public method: storage errors leave it as casework errors."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with storage_errors():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
