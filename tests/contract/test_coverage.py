"""Every method of the storage port has a contract test: a new method without one fails
here (each test names what it covers with ``@pytest.mark.covers``, and the store
fixture checks that it called them)."""

from __future__ import annotations

import importlib
import pkgutil

import tests.contract
from tests.contract.conftest import port_methods


def _covered() -> set[str]:
    covered: set[str] = set()
    for module_info in pkgutil.iter_modules(tests.contract.__path__):
        if not module_info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"tests.contract.{module_info.name}")
        for value in vars(module).values():
            for mark in getattr(value, "pytestmark", []):
                if mark.name == "covers":
                    covered.update(mark.args)
    return covered


def test_the_contract_covers_every_method_of_the_port() -> None:
    covered = _covered()
    assert sorted(port_methods() - covered) == [], "port methods without a contract test"
    assert sorted(covered - port_methods()) == [], "covered names that are no port method"
