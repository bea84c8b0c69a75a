"""Starting the application under uvicorn: one engine per worker process, from the
environment ``casework serve`` sets (``CASEWORK_DATABASE_URL``, ``CASEWORK_CONFIG``,
``CASEWORK_DB_SCHEMA``, ``CASEWORK_DB_TABLE_PREFIX``)."""

from __future__ import annotations

import gc
import os
from typing import Any

from casework.workflow.config import load_settings
from casework.workflow.engine import Engine

HEARTBEAT_ENV = "CASEWORK_HEARTBEAT_S"


def app_from_environment() -> Any:
    """The application of one worker process (uvicorn's ``factory``)."""
    from casework.workflow.api.app import create_app

    url = os.environ.get("CASEWORK_DATABASE_URL", "sqlite:///casework.db")
    settings = load_settings(os.environ.get("CASEWORK_CONFIG"))
    schema = os.environ.get("CASEWORK_DB_SCHEMA") or None
    prefix = os.environ.get("CASEWORK_DB_TABLE_PREFIX") or None
    engine = Engine.open(url, config=settings, migrate=False, schema=schema, table_prefix=prefix)
    standby = os.environ.get("CASEWORK_READ_DATABASE_URL")
    reader = (
        Engine.open(standby, config=settings, read_only=True, schema=schema, table_prefix=prefix)
        if standby
        else None
    )
    app = create_app(
        engine, heartbeat_s=float(os.environ.get(HEARTBEAT_ENV, "60")), read_engine=reader
    )
    gc.freeze()  # what start-up made lives as long as the process: never scan it again
    return app
