"""From (arguments, environment) to an engine: the one resolution the command line and
the API's server processes share.

Each setting is the argument given, else its environment variable, else the default:
the database (``CASEWORK_DATABASE_URL``, else :data:`DEFAULT_DB`), a hot standby for
reads (``CASEWORK_READ_DATABASE_URL``), the settings file (``CASEWORK_CONFIG``, else
the built-in defaults), PostgreSQL's schema (``CASEWORK_DB_SCHEMA``, else ``public``)
and the prefix of casework's tables (``CASEWORK_DB_TABLE_PREFIX``, else none).
``casework serve`` resolves them once and hands them to its worker processes as that
environment (:func:`environment`), from which each opens its own engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from casework.workflow.engine import Engine

DEFAULT_DB = "sqlite:///casework.db"
"""The database when neither an argument nor the environment names one."""

VARIABLES = {
    "db_url": "CASEWORK_DATABASE_URL",
    "read_db": "CASEWORK_READ_DATABASE_URL",
    "config_path": "CASEWORK_CONFIG",
    "db_schema": "CASEWORK_DB_SCHEMA",
    "db_table_prefix": "CASEWORK_DB_TABLE_PREFIX",
}
"""The environment variable of each setting (keyed by the argument's name)."""


@dataclass(frozen=True)
class Startup:
    """Where an engine comes from."""

    db_url: str
    read_db: str | None = None
    """A hot standby that commands and requests which only read go to."""
    config_path: str | None = None
    db_schema: str | None = None
    db_table_prefix: str | None = None
    """The prefix of casework's table names (none: the plain names)."""

    def opening(self, read_only: bool = False, reads: bool = False) -> tuple[str, bool]:
        """The database to open and whether read-only: the standby, read-only, for one
        that only ``reads`` (or is ``read_only``) where a standby is named."""
        if self.read_db and (read_only or reads):
            return self.read_db, True
        return self.db_url, read_only


def startup(arguments: Mapping[str, str | None], environ: Mapping[str, str]) -> Startup:
    """The settings ``arguments`` give (by the keys of :data:`VARIABLES`; ``None`` or
    empty: not given), else ``environ``'s variables, else the defaults."""
    found = {
        name: arguments.get(name) or environ.get(variable) or None
        for name, variable in VARIABLES.items()
    }
    return Startup(
        db_url=found["db_url"] or DEFAULT_DB,
        read_db=found["read_db"],
        config_path=found["config_path"],
        db_schema=found["db_schema"],
        db_table_prefix=found["db_table_prefix"],
    )


def environment(start: Startup) -> dict[str, str]:
    """The environment that names ``start`` to another process (the settings file by
    its absolute path)."""
    values = {
        "db_url": start.db_url,
        "read_db": start.read_db,
        "config_path": None if start.config_path is None else os.path.abspath(start.config_path),
        "db_schema": start.db_schema,
        "db_table_prefix": start.db_table_prefix,
    }
    return {VARIABLES[name]: value for name, value in values.items() if value}


def engine_from(
    arguments: Mapping[str, str | None],
    environ: Mapping[str, str],
    *,
    read_only: bool = False,
    reads: bool = False,
    **options: Any,
) -> Engine:
    """The engine ``arguments`` and ``environ`` name (see :func:`startup`), its settings
    loaded and checked. One that only ``reads`` (or is ``read_only``) opens the standby
    where one is named, read-only. ``options`` go to :meth:`Engine.open` (``logger``,
    ``migrate``...)."""
    from casework.workflow.config import load_settings
    from casework.workflow.engine import Engine  # here: a command that opens none loads none

    start = startup(arguments, environ)
    url, read_only = start.opening(read_only, reads)
    settings = load_settings(start.config_path)
    return Engine.open(
        url, config=settings, read_only=read_only, schema=start.db_schema,
        table_prefix=start.db_table_prefix, **options,
    )  # fmt: skip
