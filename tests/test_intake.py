"""One intake declaration: the ``open`` command's options, the API's ``OpenCase`` body,
the console's intake form and ``Engine.open_case`` take the fields it declares, in its
order, and a field added to it shows up in each."""

from __future__ import annotations

import inspect
from typing import Any

import click
import pytest

from casework.machines import MachineDefinition
from casework.workflow.api import models
from casework.workflow.cases import intake
from casework.workflow.cases.intake import INTAKE, IntakeField, checked
from casework.workflow.catalog import installed_registry
from casework.workflow.cli import cases as cli_cases
from casework.workflow.config import Settings
from casework.workflow.console import case_pages
from casework.workflow.console.texts import TEXTS
from casework.workflow.engine import Engine
from casework.workflow.errors import InvalidInput, UnknownChoice

NAMES = [f.name for f in INTAKE]
EXTRA = IntakeField("order_ref", "line", "The order it is about.", max_chars=40)


def _options(command: click.Command) -> dict[str, list[str]]:
    return {p.name or "": p.opts for p in command.params if p.name in {*NAMES, EXTRA.name}}


def _default(settings: Settings) -> MachineDefinition:
    return installed_registry().get(settings.default_machine)


def _form(settings: Settings) -> list[str]:
    return [i.name for i in case_pages.intake_inputs("en", settings, _default(settings))]


def test_the_command_the_body_the_form_and_the_engine_take_the_declared_fields() -> None:
    assert _options(cli_cases.open_command) == {f.name: [f.option] for f in INTAKE}
    assert list(models.OpenCase.model_fields) == NAMES
    form = _form(Settings())
    plain = [n for n in form if not n.startswith("attr.")]
    assert sorted(plain) == sorted(n for n in NAMES if n not in ("machine", "attributes"))
    assert any(n.startswith("attr.") for n in form)  # the default machine's attributes
    assert plain[-1] == "summary"  # the long text last
    taken = inspect.signature(Engine.open_case).parameters
    assert set(NAMES) <= set(taken)
    for field in INTAKE:
        if field.default is not None:
            assert taken[field.name].default == field.default
    for lang in TEXTS:  # every field the form shows has its label
        assert set(plain) <= set(TEXTS[lang])


def test_a_field_added_to_the_declaration_shows_up_at_every_door(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    more = (*INTAKE, EXTRA)
    for module in (cli_cases, models, case_pages):
        monkeypatch.setattr(module, "INTAKE", more)
    for lang in TEXTS:
        monkeypatch.setitem(TEXTS[lang], EXTRA.name, "Order")

    def probe(**values: Any) -> None:
        del values

    command = click.command("probe")(cli_cases.intake_options(probe))
    assert _options(command)[EXTRA.name] == ["--order-ref"]
    assert list(models.intake_model().model_fields)[-1] == EXTRA.name
    assert EXTRA.name in _form(Settings())


def test_the_engines_checks_are_the_declarations() -> None:
    settings = Settings()
    definition = _default(settings)
    given = {"customer": "C-1", "summary": "没有上门", "channel": "phone",
             "category": "other", "contact": None, "branch": None}  # fmt: skip
    values = checked(settings, definition, given)
    assert values["priority"] == "normal"  # the declared default
    assert list(values) == list(intake.CHECKED)
    with pytest.raises(InvalidInput, match="contact is 401 characters long; the limit is 400"):
        checked(settings, definition, {**given, "contact": "x" * 401})
    with pytest.raises(UnknownChoice):
        checked(settings, definition, {**given, "priority": "whenever"})
    with pytest.raises(InvalidInput, match="needs channel to open a case"):
        checked(settings, definition, {**given, "channel": None})
