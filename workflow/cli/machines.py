"""``casework machines``: the registered machines, their states and events, and diagrams."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click

from casework.machines import MachineDefinition
from casework.machines.diagram import dot, mermaid
from casework.workflow.catalog import describe, installed_registry
from casework.workflow.cli.support import CaseworkCommand, emit_json, fail, json_option


def write_diagrams(definition: MachineDefinition, directory: Path) -> list[Path]:
    """Write Mermaid and DOT text, and SVG/PNG where Graphviz's ``dot`` is installed."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"{definition.name}-v{definition.version}"
    written = [stem.with_suffix(".mmd"), stem.with_suffix(".dot")]
    written[0].write_text(mermaid(definition), encoding="utf-8")
    written[1].write_text(dot(definition), encoding="utf-8")
    dot_program = shutil.which("dot")
    if dot_program is not None:
        for fmt in ("svg", "png"):
            target = stem.with_suffix(f".{fmt}")
            subprocess.run(  # noqa: S603 - fixed arguments, our own files
                [dot_program, f"-T{fmt}", str(written[1]), "-o", str(target)],
                check=True,
                capture_output=True,
            )
            written.append(target)
    return written


@click.command("machines", cls=CaseworkCommand)
@click.option(
    "--diagram",
    "diagram_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write a diagram of each machine into this folder (Mermaid, DOT; SVG/PNG with Graphviz).",
)
@json_option
def machines_command(diagram_dir: Path | None, as_json: bool) -> None:
    """List the registered machines with their states and events."""
    registry = installed_registry()
    written: list[Path] = []
    if diagram_dir is not None:
        try:
            for definition in registry:
                written += write_diagrams(definition, diagram_dir)
        except OSError as err:
            fail(f"cannot write diagrams to {diagram_dir}: {err.strerror}")
    if as_json:
        emit_json([describe(d) for d in registry])
        return
    for definition in registry:
        click.echo(f"{definition.name} v{definition.version}: {definition.title}")
        finals = ", ".join(sorted(definition.final_states)) or "none"
        click.echo(f"  states: {', '.join(definition.states)} (final: {finals})")
        click.echo(f"  events: {', '.join(definition.events)}")
    if written:
        click.echo("wrote " + ", ".join(str(p) for p in written))
        if not shutil.which("dot"):
            click.echo("(install Graphviz for SVG and PNG diagrams)")
