"""Persistence: the tables, the event log with its hash chain, and migrations.

Imports nothing of the other casework packages.
"""

from casework.storage.chain import (
    EVENT_FORMAT,
    GENESIS_HASH,
    canonical_event,
    canonical_json,
    chain_hash,
)
from casework.storage.database import (
    make_engine,
    prepare_engine,
    read_transaction,
    write_transaction,
)
from casework.storage.migrate import upgrade
from casework.storage.records import CaseRecord, EventRecord
from casework.storage.timestamps import as_utc, iso

__all__ = [
    "EVENT_FORMAT",
    "GENESIS_HASH",
    "CaseRecord",
    "EventRecord",
    "as_utc",
    "canonical_event",
    "canonical_json",
    "chain_hash",
    "iso",
    "make_engine",
    "prepare_engine",
    "read_transaction",
    "upgrade",
    "write_transaction",
]
