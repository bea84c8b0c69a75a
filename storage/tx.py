"""The handle of a write transaction, which every role method that writes inside one
takes instead of an untyped cursor."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPICursor


class Tx:
    """A write transaction in progress: :meth:`casework.storage.port.Store.transaction`
    hands it out, and every role method that writes inside the transaction takes it. It
    is valid only inside the ``with``; each store hands out its own kind (the SQL
    stores': :class:`SqlTx`), and a store takes only its own."""

    __slots__ = ()


class SqlTx(Tx):
    """The SQL stores' transaction handle: the driver cursor the transaction runs on and,
    on a pipelined transaction (PostgreSQL), a second cursor for a statement sent ahead
    of the call that reads its rows (``sent``: that statement, until it is read)."""

    __slots__ = ("ahead", "cursor", "sent")

    def __init__(self, cursor: DBAPICursor, ahead: DBAPICursor | None = None) -> None:
        self.cursor = cursor
        self.ahead = ahead
        self.sent: str | None = None


def cursor_of(tx: Tx) -> DBAPICursor:
    """The driver cursor of a SQL store's transaction."""
    return cast("SqlTx", tx).cursor
