"""What a delivery run reports: its figures and the first of its errors, as JSON."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

ERRORS_SHOWN = 20
"""How many of a run's errors its JSON carries."""


@dataclass
class RunReport:
    """Base of a run's report (a dataclass with an ``errors`` list among its fields)."""

    def as_json(self) -> dict[str, Any]:
        """JSON-ready figures, every field in order, the first 20 errors."""
        figures = {f.name: getattr(self, f.name) for f in fields(self)}
        figures["errors"] = list(figures["errors"][:ERRORS_SHOWN])
        return figures
