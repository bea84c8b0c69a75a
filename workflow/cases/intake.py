"""The fields of a new case, declared once: the ``open`` command's options, the API's
``OpenCase`` body, the console's intake form and :meth:`Engine.open_case`'s checks are
all made from :data:`INTAKE`.

A field says what it holds (``kind``), whether every case needs it (a machine may need
more: its ``intake`` names them), its limit, where its choices come from (a list of
:class:`~casework.workflow.config.Settings`), its default and its help text; its name
is the keyword of ``open_case``, the JSON field, the form field and the console's
label, and with ``-`` for ``_`` the command's option.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from casework.machines import MachineDefinition
from casework.workflow import validation
from casework.workflow.config import Settings
from casework.workflow.errors import InvalidInput

Kind = Literal["line", "text", "choice", "instant", "machine", "attributes"]
"""``line``: one line of text; ``text``: lines of text up to ``limits.max_text_chars``;
``choice``: one of a configured list; ``instant``: a date and time with its offset;
``machine``: a machine's name; ``attributes``: the machine's declared attributes."""

MACHINE_NAME_CHARS = 64
"""The longest machine name taken."""


@dataclass(frozen=True)
class IntakeField:
    """One field of a new case, as every door takes it."""

    name: str
    kind: Kind
    help: str
    required: bool = False
    """Needed by every machine (one that lists the field in its ``intake`` needs it too)."""
    max_chars: int | None = None
    """A ``line``'s limit."""
    choices: str | None = None
    """A ``choice``'s list: the name of a :class:`Settings` attribute."""
    default: str | None = None
    form_type: str | None = None
    """The console's input type where the kind's would not do (``tel``)."""

    @property
    def option(self) -> str:
        """The ``open`` command's option for it."""
        return "--attr" if self.kind == "attributes" else "--" + self.name.replace("_", "-")

    def choices_in(self, settings: Settings) -> tuple[str, ...]:
        """The values a ``choice`` takes under ``settings`` (none for other kinds)."""
        found: tuple[str, ...] = () if self.choices is None else getattr(settings, self.choices)
        return found

    def needed_by(self, definition: MachineDefinition) -> bool:
        """Whether a case of ``definition`` must be opened with it."""
        return self.required or self.name in definition.intake


INTAKE: tuple[IntakeField, ...] = (
    IntakeField("customer", "line", "Customer reference (not contact details).",
                required=True, max_chars=200),
    IntakeField("channel", "choice", "How it arrived: store, phone, letter, web, ... "
                "(if the machine needs it)", choices="channels"),
    IntakeField("category", "choice", "What it is about: service_delayed, ... "
                "(if the machine needs it)", choices="categories"),
    IntakeField("summary", "text", "The complaint in the customer's words.", required=True),
    IntakeField("contact", "line", "Contact details (stored, never logged).", max_chars=400,
                form_type="tel"),
    IntakeField("branch", "line", "Branch or store that owns the case.", max_chars=200),
    IntakeField("priority", "choice", "normal, high or urgent.", choices="priorities",
                default="normal"),
    IntakeField("received_at", "instant", "When it was received (back-fill)."),
    IntakeField("machine", "machine", "Machine name (default: complaint).",
                max_chars=MACHINE_NAME_CHARS),
    IntakeField("attributes", "attributes", "A declared case attribute."),
)  # fmt: skip
"""Every field a case is opened with, in the order they are checked."""

FIELDS: Mapping[str, IntakeField] = {f.name: f for f in INTAKE}
"""The fields by name."""

CHECKED = tuple(f.name for f in INTAKE if f.kind in ("line", "text", "choice"))
"""The fields :func:`checked` reads (``received_at`` and ``machine`` are read before it,
``attributes`` against the machine's declaration)."""


def checked_value(field: IntakeField, value: object, settings: Settings) -> Any:
    """``value`` for ``field`` as the engine takes it (``None``: the field's default),
    else :class:`InvalidInput` naming the field."""
    if value is None and not field.required:
        return field.default
    if field.kind == "text":
        return validation.text(value, field.name, max_chars=settings.max_text_chars, multiline=True)
    if field.kind == "choice":
        return validation.choice(str(value), field.name, field.choices_in(settings))
    if field.kind in ("line", "machine"):
        return validation.text(value, field.name, max_chars=field.max_chars or 0)
    raise ValueError(f"{field.name} ({field.kind}) has a check of its own")


def checked(
    settings: Settings, definition: MachineDefinition, values: Mapping[str, Any]
) -> dict[str, Any]:
    """The fields of ``values`` named in :data:`CHECKED`, checked for a case of
    ``definition``: first that it has what the machine needs, then each value."""
    missing = [name for name in definition.intake if values.get(name) is None]
    if missing:
        raise InvalidInput(
            f"machine {definition.name} needs {' and '.join(missing)} to open a case",
            field=missing[0],
        )
    return {name: checked_value(FIELDS[name], values.get(name), settings) for name in CHECKED}


def form_names(fields: Sequence[IntakeField] = INTAKE) -> list[str]:
    """The names of ``fields`` a person types on the console's form (not the machine:
    the form opens the default machine's cases)."""
    return [f.name for f in fields if f.kind != "machine"]
