"""One setting's value checked against its bounds; a bad one is a :class:`ConfigError`
naming the key (``where``). Every table of the settings reads its numbers with these."""

from __future__ import annotations

from typing import Any

from casework.workflow.errors import ConfigError


def positive_number(value: Any, where: str, most: float) -> float:
    """``value`` as a float if above 0 and at most ``most``, else a ConfigError naming
    ``where``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= most:
        raise ConfigError(f"{where} must be a number above 0 and at most {most:g}, got {value!r}")
    return float(value)


def positive_whole(value: Any, where: str, most: int = 2**31 - 1) -> int:
    """``value`` if it is a whole number from 1 to ``most``, else a ConfigError naming
    ``where`` (bounds keep every later computation with it in range)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= most:
        raise ConfigError(f"{where} must be a whole number from 1 to {most:,}, got {value!r}")
    return value
