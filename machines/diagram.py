"""Machine diagrams as Mermaid text (pure; rendering to SVG/PNG happens elsewhere)."""

from __future__ import annotations

from casework.machines.definition import MachineDefinition


def mermaid(definition: MachineDefinition) -> str:
    """A Mermaid ``stateDiagram-v2`` of the definition; guards are shown in brackets."""
    lines = ["stateDiagram-v2", f"    [*] --> {definition.initial_state}"]
    for rules in definition.rules.values():
        for rule in rules:
            label = rule.event
            if rule.conditions:
                label += " [" + ", ".join(c.name for c in rule.conditions) + "]"
            lines.append(f"    {rule.source} --> {rule.target}: {label}")
    lines.extend(f"    {state} --> [*]" for state in sorted(definition.final_states))
    return "\n".join(lines) + "\n"


def dot(definition: MachineDefinition) -> str:
    """The same diagram in Graphviz DOT, for ``dot -Tsvg``."""
    lines = [f'digraph "{definition.name}_v{definition.version}" {{', "    rankdir=LR;"]
    lines.append('    node [shape=box, style=rounded, fontname="Helvetica"];')
    for state in definition.states:
        shape = ", peripheries=2" if state in definition.final_states else ""
        lines.append(f'    "{state}" [label="{state}"{shape}];')
    for rules in definition.rules.values():
        for rule in rules:
            guard = "".join(f"\\n[{c.name}]" for c in rule.conditions)
            lines.append(f'    "{rule.source}" -> "{rule.target}" [label="{rule.event}{guard}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
