"""The documentation's examples run as written."""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import re
import tempfile
from pathlib import Path
from typing import Any

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


# The README's enumerations, each kept equal to the code it describes.

PACKAGES = ("workflow", "machines", "storage", "scheduler")
"""The four package folders (installed as ``casework.<name>``)."""


def readme() -> str:
    """The README's text."""
    return (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The README's section under the heading ``## title``, up to the next ``## ``."""
    return readme().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def table(text: str, header: str) -> list[str]:
    """The first cells of the rows of the Markdown table whose header row starts with
    ``header``."""
    rows = text.split(header, 1)[1].split("\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [row.removeprefix("| ").split(" | ", 1)[0] for row in rows if row[:4] != "|---"]


def layout_entries() -> set[str]:
    """Every folder and module the Layout section's tree names, as a path (``storage/
    migrations/versions/``): names open an entry line, a folder alone on its line holds
    the deeper-indented lines below it, and description lines name nothing."""
    block = section("Layout").split("```\n", 1)[1].split("```", 1)[0]
    found: set[str] = set()
    parents: list[tuple[int, str]] = []
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        names: list[str] = []
        for word in line.split():
            if not word.endswith(("/", ".py")):
                break
            names.append(word)
        if not names or indent > 8:
            continue  # a description carried over
        while parents and parents[-1][0] >= indent:
            parents.pop()
        parent = parents[-1][1] if parents else ""
        found.update(parent + name for name in names)
        if len(names) == 1 and names[0].endswith("/"):
            parents.append((indent, parent + names[0]))
    return found


def test_the_layout_names_every_room_and_module() -> None:
    """Every sub-package of the four packages and every module at the top of each is in
    the Layout section's tree, and everything the tree names exists."""
    wanted = {f"{package}/" for package in PACKAGES}
    for package in PACKAGES:
        folder = ROOT / package
        wanted |= {
            f"{init.parent.relative_to(ROOT).as_posix()}/"
            for init in folder.rglob("__init__.py")
            if init.parent != folder
        }
        wanted |= {f"{package}/{module.name}" for module in folder.glob("*.py")}
        wanted.discard(f"{package}/__init__.py")
    named = layout_entries()
    assert sorted(wanted - named) == [], "missing from the README's Layout"
    assert sorted(p for p in named if not (ROOT / p).exists()) == [], "named but not there"


def test_the_engine_methods_are_the_ones_the_readme_lists() -> None:
    """The Python API section names every public method of :class:`Engine` and no other."""
    from casework.workflow.engine import Engine

    text = section("The Python API").split("The engine's methods:", 1)[1]
    listed = set(re.findall(r"`([a-z_]+)`", text.split("It is a context manager", 1)[0]))
    public = {name for name, _ in inspect.getmembers(Engine, inspect.isfunction)}
    assert listed == {name for name in public if not name.startswith("_")}
    assert inspect.ismethod(Engine.open)  # the constructor, described apart


def error_tree_in_the_code() -> set[tuple[str, str]]:
    """(error, its base) for every subclass of ``CaseworkError`` anywhere in the four
    packages, read from their source (no module imported, no extra needed)."""
    bases: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    named = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                             for b in node.bases}  # fmt: skip
                    bases.setdefault(node.name, set()).update(named)
    tree: set[tuple[str, str]] = set()
    known = {"CaseworkError"}
    while True:
        found = {(name, base) for name, of in bases.items() for base in of & known}
        if found == tree:
            return tree
        tree = found
        known |= {name for name, _ in found}


def test_the_readme_draws_the_whole_error_tree() -> None:
    """The README's drawing of the exception tree is the tree the code defines."""
    block = section("The Python API").split("```\nCaseworkError\n", 1)[1].split("```", 1)[0]
    drawn: set[tuple[str, str]] = set()
    parents = ["CaseworkError"]
    for line in block.splitlines():
        prefix = re.match(r"^((?:│   |    )*)[├└]── (\w+)", line)
        assert prefix is not None, line
        depth = len(prefix.group(1)) // 4
        del parents[depth + 1 :]
        drawn.add((prefix.group(2), parents[depth]))
        parents.append(prefix.group(2))
    assert drawn == error_tree_in_the_code()


def routes() -> list[tuple[str, str, bool]]:
    """(method, path, in the OpenAPI document) for every route of the application
    ``casework serve`` runs, ``HEAD`` and the static files aside."""
    from casework.workflow.api.app import create_app
    from casework.workflow.engine import Engine

    def flat(found: list[Any]) -> list[Any]:
        # FastAPI 0.16x keeps an included router whole (``original_router``) where
        # earlier versions copied its routes in
        inner = [flat(r.original_router.routes) if hasattr(r, "original_router") else [r]
                 for r in found]  # fmt: skip
        return [route for routes in inner for route in routes]

    with tempfile.TemporaryDirectory() as folder:
        engine = Engine.open(f"sqlite:///{folder}/casework.db")
        try:
            app = create_app(engine)
            while not hasattr(app, "routes"):  # the measuring and hot-path wrappers
                app = app.app
            return [
                (method, route.path, bool(getattr(route, "include_in_schema", False)))
                for route in flat(list(app.routes))
                for method in sorted(getattr(route, "methods", None) or ())
                if method != "HEAD"
            ]
        finally:
            engine.close()


def listed_routes(cells: list[str]) -> set[tuple[str, str]]:
    """Every ``METHOD /path`` a table's first cells name, query strings left out and
    path parameters written ``{}``."""
    path = r"/(?:[\w/.-]|\{[^}]*\})*"  # a parameter may be named in words: {id or prefix}
    found = re.findall(rf"`(GET|POST|PUT|PATCH|DELETE) ({path})", "\n".join(cells))
    return {(method, re.sub(r"\{[^}]*\}", "{}", path)) for method, path in found}


def test_the_http_tables_list_every_route_and_no_other() -> None:
    """The HTTP API's table lists every route of the OpenAPI document (``/openapi.json``
    itself aside), the console's table every page; both ways."""
    served = routes()
    api = {(m, re.sub(r"\{[^}]*\}", "{}", p)) for m, p, documented in served if documented}
    pages = {
        (m, re.sub(r"\{[^}]*\}", "{}", p))
        for m, p, documented in served
        if not documented and p != "/openapi.json"
    }
    assert listed_routes(table(section("The HTTP API"), "| method and path |")) == api
    assert listed_routes(table(section("The web console"), "| console page (method")) == pages


def test_the_command_table_lists_every_command_and_option() -> None:
    """Every command and sub-command is in the command line's table with each of its
    options (those every command takes are described above the table), and the table
    names nothing else."""
    import click

    from casework.workflow.cli import main

    commands: dict[tuple[str, ...], click.Command] = {}

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if not isinstance(command, click.Group) or (path and command.invoke_without_command):
            commands[path] = command
        if isinstance(command, click.Group):
            context = click.Context(command)
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                assert sub is not None
                walk(sub, (*path, name))

    walk(main, ())
    documented: dict[tuple[str, ...], set[str]] = {}
    for cell in table(section("The command line"), "| command | does |"):
        for usage in re.findall(r"`([^`]+)`", cell):
            paths: list[tuple[str, ...]] = [()]
            for word in usage.split():
                alternatives = [(*paths[0], name) for name in word.split("\\|")]
                if not all(any(c[: len(a)] == a for c in commands) for a in alternatives):
                    break
                paths = alternatives
            for path in paths:
                documented.setdefault(path, set()).update(re.findall(r"--[a-z][a-z-]*", usage))
    assert sorted(set(commands) - set(documented)) == [], "commands missing from the table"
    assert sorted(set(documented) - set(commands)) == [], "no such command"

    def long_options(command: click.Command) -> set[str]:
        return {
            name
            for param in command.params
            if isinstance(param, click.Option)
            for name in (*param.opts, *param.secondary_opts)
            if name.startswith("--")
        }

    common = long_options(main) - {"--version"}  # every command takes them too
    opening = section("The command line").split("\n\n", 1)[0]
    assert sorted(common - set(re.findall(r"`(--[a-z-]+)", opening))) == [], "not described"
    for path, command in commands.items():
        options = long_options(command)
        assert sorted(options - common - documented[path]) == [], path
        assert sorted(documented[path] - options) == [], path


def test_the_metrics_the_readme_lists_are_the_ones_served(tmp_path: Path) -> None:
    """The README names every metric family ``/metrics`` serves, and no other."""
    from prometheus_client import generate_latest

    from casework.workflow.api.metrics import Metrics
    from casework.workflow.engine import Engine

    engine = Engine.open(f"sqlite:///{tmp_path}/casework.db")
    try:
        text = generate_latest(Metrics(engine).registry).decode()
    finally:
        engine.close()
    served = set(re.findall(r"^# TYPE (\w+) ", text, re.MULTILINE))
    paragraph = section("The HTTP API").split("Metrics (`/metrics`):", 1)[1].split("\n\n")[0]
    assert set(re.findall(r"`(casework_\w+)", paragraph)) == served


def test_the_package_count_is_what_pip_installs() -> None:
    """``pip install casework`` brings the number of other packages the README says: the
    closure of casework's requirements without extras, as installed here."""
    from importlib.metadata import distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    needed: set[str] = set()
    todo = [("casework", frozenset[str]())]
    while todo:
        name, extras = todo.pop()
        for line in distribution(name).requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is not None and not any(
                marker.evaluate({"extra": extra}) for extra in extras or {""}
            ):
                continue
            key = canonicalize_name(requirement.name)
            if key not in needed:
                needed.add(key)
                todo.append((requirement.name, frozenset(requirement.extras)))
    said = re.search(r"casework and (\d+) other packages", section("Install and extras"))
    assert said is not None
    assert int(said.group(1)) == len(needed), sorted(needed)


def test_every_test_file_and_module_the_readme_names_exists() -> None:
    """Each test the README cites is defined in tests/, each path it names is there, and
    each ``casework.*`` name it gives imports."""
    text = readme()
    defined = {
        match
        for path in (ROOT / "tests").rglob("*.py")
        for match in re.findall(r"def (test_\w+)", path.read_text(encoding="utf-8"))
    }
    assert sorted(set(re.findall(r"`(test_\w+)`", text)) - defined) == []
    roots = "tests|bench|workflow|storage|machines|scheduler|requirements|\\.ci"
    for path in re.findall(rf"`((?:{roots})/[\w/.{{}},-]*)`", text):
        head, _, rest = path.partition("{")
        choices = rest.split("}", 1)[0].split(",") if rest else [""]
        tail = rest.split("}", 1)[1] if rest else ""
        for choice in choices:
            assert (ROOT / f"{head}{choice}{tail}").exists(), path
    for dotted in set(
        re.findall(r"`(casework\.(?:workflow|machines|storage|scheduler)[\w.]*)", text)
    ):
        assert resolves(dotted), dotted
    imports = re.findall(r"^(?:>>> )?from (casework\.[\w.]+) import ([\w, ]+)", text, re.M)
    for module, names in imports:
        for name in names.split(","):
            assert resolves(f"{module}.{name.strip()}"), f"from {module} import {name}"


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` names a module, or an attribute reached from one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 1, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                found = getattr(found, name)
        except AttributeError:
            return False
        return True
    return False


def test_module_paths_read_as_installed() -> None:
    """Imports and module paths in the README and SECURITY.md name ``casework.*``; the
    old top-level names appear only as folders (``workflow/``) or TOML tables."""
    old = re.compile(r"(?<![\w./\[-])(?:workflow|machines|storage|scheduler)\.(?!NAME\b)\w")
    for name in ("README.md", "SECURITY.md"):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert [line for line in text.splitlines() if old.search(line)] == [], name


def test_the_extras_table_is_pyproject_s() -> None:
    """The extras table has a row for every extra of pyproject.toml and no other, and
    each row names every package its extra adds."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras: dict[str, list[str]] = project["project"]["optional-dependencies"]
    text = section("Install and extras")
    rows = text.split("| extra | adds | for |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    cells = {row.split(" | ")[0].removeprefix("| `").rstrip("`"): row for row in rows}
    assert sorted(cells) == sorted(extras)
    for extra, requirements in extras.items():
        for line in requirements:
            name = Requirement(line).name
            if name != "casework":
                assert name.lower() in cells[extra].lower(), (extra, name)


def test_engine_open_takes_what_the_readme_says() -> None:
    """The README's ``Engine.open(...)`` names its keyword arguments and their defaults."""
    from casework.workflow.engine import Engine

    said = section("The Python API").split("`Engine.open(", 1)[1].split(")`", 1)[0]
    keywords = dict(re.findall(r"(\w+)=(\w+)", said))
    signature = inspect.signature(Engine.open)
    actual = {
        name: repr(parameter.default)
        for name, parameter in signature.parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert keywords == actual


def test_the_counts_of_refused_inputs_are_the_tables_lengths() -> None:
    """The reliability table's counts of bad inputs and hostile command lines are the
    lengths of the tables those tests run through."""
    from tests.test_engine import BAD_INPUT
    from tests.test_hostile import CLI_CASES

    text = section("Reliability: what is proven, and by which test")
    bad = re.search(r"changes no row \((\d+) cases\)", text)
    hostile = re.search(r"\| (\d+) hostile command lines", text)
    assert bad is not None
    assert hostile is not None
    assert (int(bad.group(1)), int(hostile.group(1))) == (len(BAD_INPUT), len(CLI_CASES))


def known_keys(section_name: str) -> set[str]:
    """The keys the configuration accepts in ``[section_name]``, as its refusal of an
    unknown key lists them."""
    from casework.workflow.config import settings_from_mapping
    from casework.workflow.errors import ConfigError

    try:
        settings_from_mapping({section_name: {"no_such_key": 1}}, "casework.toml")
    except ConfigError as err:
        return set(str(err).split("known: ", 1)[1].split(", "))
    raise AssertionError(f"[{section_name}] took an unknown key")


def known_sections() -> set[str]:
    """The tables a configuration file may hold, as the refusal of another lists them."""
    from casework.workflow.config import settings_from_mapping
    from casework.workflow.errors import ConfigError

    try:
        settings_from_mapping({"no_such_table": {}}, "casework.toml")
    except ConfigError as err:
        return set(str(err).split("known: ", 1)[1].split(", "))
    raise AssertionError("an unknown table was taken")


def test_the_configuration_example_has_every_plain_key() -> None:
    """The README's configuration examples set every key of ``[intake]``, ``[display]``,
    ``[privacy]``, ``[limits]``, ``[mail]`` and ``[partners]``; the ``[webhooks]``
    sentence names each of its keys with its default."""
    import tomllib

    from casework.workflow.webhooks.settings import WebhookSettings

    text = readme()
    example: dict[str, set[str]] = {}
    for block in (part.split("```", 1)[0] for part in text.split("```toml\n")[1:]):
        for name, table in tomllib.loads(block).items():
            example.setdefault(name, set()).update(table)
        table_name = ""
        for line in block.splitlines():  # a key shown commented out counts as shown
            header = re.match(r"\[+(\w+)", line)
            table_name = header.group(1) if header else table_name
            commented = re.match(r"# (\w+) = ", line)
            if commented:
                example.setdefault(table_name, set()).add(commented.group(1))
    for name in ("intake", "display", "privacy", "limits", "mail", "partners"):
        assert sorted(known_keys(name) - example[name]) == [], name
    assert sorted(s for s in known_sections() if f"[{s}" not in text) == [], "not in README"
    sentence = section("Webhooks").split("`[webhooks]` in the configuration", 1)[1]
    sentence = sentence.split("\n\n", 1)[0]
    said = dict(re.findall(r"`(\w+)` \(([^)]*)\)", sentence))
    assert set(said) == known_keys("webhooks")
    defaults = WebhookSettings()
    for key, value in said.items():
        default = getattr(defaults, key)
        if isinstance(default, float):
            assert float(value) == default, key
