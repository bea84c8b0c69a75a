"""Starting the application under uvicorn: one engine per worker process, from the
environment ``casework serve`` sets (:func:`casework.workflow.bootstrap.environment`)."""

from __future__ import annotations

import gc
import os
from typing import Any

from casework.workflow.bootstrap import engine_from, startup

HEARTBEAT_ENV = "CASEWORK_HEARTBEAT_S"


def app_from_environment() -> Any:
    """The application of one worker process (uvicorn's ``factory``): its engine, and
    one on the standby where one is named, from the environment."""
    from casework.workflow.api.app import create_app

    environ = dict(os.environ)
    engine = engine_from({}, environ, migrate=False)  # serve migrated before starting us
    reader = engine_from({}, environ, reads=True) if startup({}, environ).read_db else None
    app = create_app(
        engine, heartbeat_s=float(os.environ.get(HEARTBEAT_ENV, "60")), read_engine=reader
    )
    gc.freeze()  # what start-up made lives as long as the process: never scan it again
    return app
