"""The context the services below the engine work with.

Erasure (and, as they move out of the engine, the other services) take a
:class:`Context` instead of the :class:`~casework.workflow.engine.Engine`: what they
need is the store, the clock, the settings, the machines and policies, how a case's
rules are found, and the log, not the engine's methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from casework.machines import CaseRules, MachineRegistry
from casework.storage import CaseRecord
from casework.storage.port import Store
from casework.workflow.clock import Clock
from casework.workflow.config import Settings
from casework.workflow.sla.policies import PolicyBook


@dataclass(frozen=True)
class Context:
    """One engine's parts, shared with the services it delegates to."""

    store: Store
    clock: Clock
    settings: Settings
    registry: MachineRegistry
    policies: PolicyBook
    rules: Callable[[CaseRecord], CaseRules]
    """The machine, policies and profile that decide a case's fold."""
    log: Any
