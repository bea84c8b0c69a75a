"""The documentation's examples run as written."""

from __future__ import annotations

import doctest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_examples_run() -> None:
    """Every ``>>>`` example in README.md gives the output it shows."""
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False)
    assert result.attempted > 5
    assert result.failed == 0


def test_readme_starts_with_the_two_setup_commands() -> None:
    """The README's first code block is the install-and-run and the install-and-test lines."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert block == [
        "python3 -m pip install '.[demo]' && casework demo",
        TEST_COMMAND,
    ]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert TEST_COMMAND.replace("-m pip install -e", "-m pip install -q -e") in ci


TEST_COMMAND = "python3 -m pip install -e '.[test]' -c requirements/test.txt && python3 -m pytest"
"""The README's test command; ``.ci/run`` runs the same (quietly)."""


def test_the_readme_configuration_loads(tmp_path: Path) -> None:
    """The README's TOML examples, together, are a configuration that loads."""
    from casework.workflow.config import load_settings

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [part.split("```", 1)[0] for part in text.split("```toml\n")[1:]]
    assert len(blocks) == 3
    config = tmp_path / "casework.toml"
    config.write_text("\n".join(blocks), encoding="utf-8")
    settings = load_settings(config)
    assert settings.mail.quiet_calendar(1) == "office"
    assert settings.mail.agent_address("li.na") == "li.na@example.com"
    assert settings.partners.basic_repair_fee == 120
