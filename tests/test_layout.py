"""The house rules, checked: imports point one way with no cycle, SQL stays in storage,
the core install pulls no optional package, and a command loads only what it uses."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("workflow", "machines", "storage", "scheduler")
"""The folders; each installs as ``casework.<folder>``."""
MAY_IMPORT = {
    "machines": {"machines"},
    "storage": {"storage"},
    "workflow": {"workflow", "machines", "storage"},
    "scheduler": {"scheduler", "workflow", "machines"},
}
"""``scheduler -> workflow -> (machines, storage)``; the scheduler reads storage only through
``workflow`` (its outbox's rows); the CLI (``workflow.cli``) may import all."""
OPTIONAL = ("matplotlib", "numpy", "PIL", "aiosmtpd", "cryptography", "psycopg", "fastapi",
            "uvicorn", "prometheus_client", "httpx")  # fmt: skip


def _modules(*, migrations: bool = False) -> dict[str, Path]:
    """Every module of the four packages by its installed name (``casework.workflow.x``)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts and not migrations:
                continue
            name = ".".join(("casework", *path.relative_to(ROOT).with_suffix("").parts))
            found[name.removesuffix(".__init__")] = path
    return found


def _top(name: str) -> str:
    """``casework.workflow.cli.x`` -> ``workflow``."""
    return name.split(".")[1]


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Every module's imports of our modules: in functions too, and under ``TYPE_CHECKING``
    too (an import for types is still a dependency a reader must follow)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [f"{base}.{alias.name}" for alias in node.names]
                targets = [t if t in modules else base for t in targets]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def test_imports_point_one_way_and_only_the_cli_imports_everything() -> None:
    graph = _imports(_modules())
    against = [
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if not source.startswith("casework.workflow.cli")
        and _top(target) not in MAY_IMPORT[_top(source)]
    ]
    assert against == []


def test_the_packages_are_imported_only_by_their_installed_names() -> None:
    """``from workflow import ...`` would load a second copy of a module (or PyPI's
    ``workflow``): every import of ours, in the packages, tests and benches, says
    ``casework.``."""
    bare = []
    for path in [*ROOT.glob("*/**/*.py")]:
        if path.parts[len(ROOT.parts)] in (".git", ".ci", "build"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                else [a.name for a in node.names] if isinstance(node, ast.Import) else []
            )  # fmt: skip
            bare += [f"{path.relative_to(ROOT)}:{node.lineno} {n}"
                     for n in names if n.split(".")[0] in PACKAGES]  # fmt: skip
    assert bare == []


def test_the_installed_package_list_names_every_package_folder() -> None:
    """``pyproject.toml`` lists the packages under their installed names (setuptools'
    package-dir mapping cannot find them itself): a new room must be listed."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    listed = set(tool["setuptools"]["packages"])
    folders = {
        ".".join(("casework", *path.parent.relative_to(ROOT).parts))
        for package in PACKAGES
        for path in (ROOT / package).rglob("__init__.py")
    }
    assert listed == folders
    assert tool["setuptools"]["package-dir"] == {f"casework.{p}": p for p in PACKAGES}


def test_no_module_imports_itself_through_others() -> None:
    graph = _imports(_modules())
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def _room(module: str) -> str:
    """The room a module lives in: its sub-package (``casework.workflow.api``), or the
    module itself if it lies directly in one of the four packages (``casework.workflow.config``)."""
    return ".".join(module.split(".")[:3])


def _room_graph(imports: dict[str, set[str]]) -> dict[str, dict[str, list[str]]]:
    """Each room's imports of other rooms, with the module imports behind each (in
    functions and under ``TYPE_CHECKING`` too)."""
    rooms: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for source, targets in imports.items():
        for target in sorted(targets):
            if _room(source) != _room(target):
                rooms[_room(source)].setdefault(_room(target), []).append(f"{source} -> {target}")
    return rooms


def _tangles(graph: dict[str, dict[str, list[str]]]) -> list[frozenset[str]]:
    """The sets of rooms that import one another round a cycle (Tarjan's strongly
    connected components of more than one room)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(room: str) -> None:
        index[room] = low[room] = len(index)
        stack.append(room)
        for other in graph.get(room, {}):
            if other not in index:
                visit(other)
                low[room] = min(low[room], low[other])
            elif other in stack:
                low[room] = min(low[room], index[other])
        if low[room] == index[room]:
            members = {stack.pop()}
            while room not in members:
                members.add(stack.pop())
            if len(members) > 1:
                found.append(frozenset(members))

    for room in sorted(graph):
        if room not in index:
            visit(room)
    return found


def test_no_room_imports_another_in_a_cycle() -> None:
    """Rooms (sub-packages, and the modules directly in a package) import one another
    in no cycle either: ``api`` and ``console``, ``mail`` and ``webhooks``, ``reports`` and
    ``sla``, ``cases`` and ``config`` once did; the settings tables ``config`` composes lie
    below the services that read them back through the ``Context``."""
    graph = _room_graph(_imports(_modules()))
    tangles = {
        ", ".join(sorted(tangle)): sorted(
            why for room in tangle for other in tangle for why in graph[room].get(other, [])
        )
        for tangle in _tangles(graph)
    }
    assert tangles == {}


def test_the_room_cycle_check_sees_imports_in_functions_and_for_types(tmp_path: Path) -> None:
    """The check above is not blind: a room importing another inside a function, and
    that one importing it back under ``TYPE_CHECKING``, are one tangle."""
    (tmp_path / "x.py").write_text("def f():\n    from casework.workflow.b.y import g\n")
    (tmp_path / "y.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from casework.workflow.a.x import f\n"
    )
    planted = {
        "casework.workflow.a.x": tmp_path / "x.py",
        "casework.workflow.b.y": tmp_path / "y.py",
    }
    graph = _room_graph(_imports(planted))
    assert _tangles(graph) == [frozenset({"casework.workflow.a", "casework.workflow.b"})]


UNDERSCORE_API = frozenset({"_replace", "_fields", "_asdict", "_make", "_mapping"})
"""Names that start with ``_`` yet are public: named tuples' methods, SQLAlchemy's row mapping."""


def _private_reaches(name: str, tree: ast.Module) -> list[str]:
    """Each ``x._name`` where ``x`` is not ``self`` or ``cls`` and no line of the module
    sets ``_name`` or defines it: a reach into another module's private parts."""
    own = {node.name for node in ast.walk(tree)
           if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}  # fmt: skip
    own |= {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)}  # fmt: skip
    return [
        f"{name}:{node.lineno} {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.endswith("__")
        and node.attr not in UNDERSCORE_API | own
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]


def test_no_module_reaches_into_another_objects_private_names() -> None:
    """``chart._events``, ``engine._rules``: a private name read off an object from
    elsewhere ties the reader to what its owner may change at will; each has a public twin."""
    reaches = []
    for name, path in _modules().items():
        reaches += _private_reaches(name, ast.parse(path.read_text(encoding="utf-8")))
    assert reaches == []


def test_the_private_reach_check_sees_one() -> None:
    """The check above is not blind: ``engine._rules`` in a function is named, ``self._x``
    and a module's own ``_y`` set on an object are not."""
    planted = ast.parse(
        "def rules(engine, other):\n"
        "    other._y = 1\n"
        "    return engine._rules, other._y, engine.config._replace(a=1)\n"
    )
    assert _private_reaches("casework.workflow.planted", planted) == [
        "casework.workflow.planted:3 engine._rules"
    ]


DRIVERS = ("sqlalchemy", "sqlmodel", "psycopg", "psycopg2", "sqlite3", "asyncpg", "pg8000")
SQL = re.compile(
    r"\b(SELECT\s+[\w*(]|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+"
    r"(TABLE|INDEX|DATABASE|SCHEMA)|ALTER\s+TABLE|DROP\s+TABLE|VACUUM\b|PRAGMA\s+\w|"
    r"TRUNCATE\s+\w|LISTEN\s+\w|NOTIFY\s+\w)"
)
"""Statements as this code base writes them (upper case keywords)."""


def _sql_outside_storage(name: str, tree: ast.Module) -> list[str]:
    """A driver or query-builder import (``import x`` or ``from x import``, anywhere in
    the module) or a string that reads as an SQL statement."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            if node.module == "sqlalchemy.exc" or [a.name for a in node.names] == ["Engine"]:
                continue  # error classes and the engine type cross the boundary
            modules = [node.module or ""]
        else:
            modules = []
        found += [f"{name}:{node.lineno} imports {m}" for m in modules
                  if m.split(".")[0] in DRIVERS]  # fmt: skip
        text = node.value if isinstance(node, ast.Constant) else None
        if isinstance(text, str) and SQL.search(text) and not _is_docstring(tree, node):
            found.append(f"{name}:{node.lineno} SQL {node.value[:40]!r}")
    return found


def _is_docstring(tree: ast.Module, constant: ast.Constant) -> bool:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and first.value is constant:
            return True
    return False


COMPOSITION = ("casework.workflow.cli", "casework.workflow.api", "casework.workflow.console",
               "casework.workflow.testing", "casework.workflow.bootstrap")  # fmt: skip
"""Who may import ``Engine``: the composition layer. The rooms below take its
``Context``; the scheduler runs it through the part of its API it needs (a Protocol)."""
ENGINE_HOMES = ("casework.workflow", "casework.workflow.engine")
ENGINE_STORE = re.compile(r"(?:\bengine\w*|_of\(request\))\s*\.\s*_?store\b|\._store\b")
"""An engine's store reached from outside (``engine.store``, ``reader_of(request).store``,
anything's ``._store``): callers use Engine's methods or ``engine.context``."""


def test_only_the_composition_layer_imports_the_engine() -> None:
    importers = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in ENGINE_HOMES:
                importers += [name for alias in node.names if alias.name == "Engine"]
    assert [n for n in importers if n not in ENGINE_HOMES and not n.startswith(COMPOSITION)] == []


def test_no_module_reaches_the_store_of_an_engine() -> None:
    paths = [*_modules().values(), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    engine_py = ROOT / "workflow" / "engine.py"
    reaching = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in paths
        if path not in (engine_py, Path(__file__))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ENGINE_STORE.search(line)
    ]
    assert reaching == []


def test_sql_is_written_only_in_storage() -> None:
    """No module outside ``storage`` imports a driver or SQLAlchemy's query builders, or
    holds a string that reads as an SQL statement, at module level or in a function."""
    writers = []
    for name, path in _modules().items():
        if _top(name) == "storage":
            continue
        writers += _sql_outside_storage(name, ast.parse(path.read_text(encoding="utf-8")))
    assert writers == []


def test_the_sql_check_sees_a_driver_and_a_statement_in_a_function() -> None:
    """The check above is not blind: a module that imports ``sqlite3`` inside a function
    and runs ``SELECT ... FROM events`` is named twice."""
    planted = ast.parse(
        "def count(path):\n"
        "    import sqlite3\n"
        "    return sqlite3.connect(path).execute('SELECT count(*) FROM events').fetchone()\n"
    )
    assert len(_sql_outside_storage("casework.workflow.planted", planted)) == 2


def test_the_core_install_pulls_no_optional_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = " ".join(project["dependencies"]).lower()
    assert [name for name in ("matplotlib", "numpy", "pillow", "aiosmtpd", "cryptography")
            if name in core] == []  # fmt: skip
    extras = project["optional-dependencies"]
    assert {"postgres", "reports", "signing", "demo", "server", "test", "bench", "all"} <= set(
        extras
    )


def _loaded_by(code: str) -> list[str]:
    """The top-level packages a fresh interpreter has loaded after running ``code``."""
    report = (
        "print(json.dumps(sorted({m.split('.')[1] if m.startswith('casework.') "
        "else m.split('.')[0] for m in sys.modules})))"
    )
    probe = f"{code}\nimport sys, json\n{report}"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    loaded: list[str] = json.loads(out.splitlines()[-1])
    return loaded


@pytest.mark.slow
def test_help_fire_and_show_load_nothing_they_do_not_use(tmp_path: Path) -> None:
    """``casework --help`` loads no engine; ``fire``, ``show`` and ``verify`` on SQLite
    load no optional package, no table classes (nor the ORM and pydantic under them) and no
    Alembic (a current schema costs one query)."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    setup = (
        "from casework.workflow import Engine\n"
        f"with Engine.open({url!r}) as e:\n"
        "    print(e.open_case(customer='C', channel='phone', category='other', summary='s').id)"
    )
    case_id = subprocess.run(
        [sys.executable, "-c", setup], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    run = (
        "import sys\nfrom casework.workflow.cli import main\nsys.argv = {!r}\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    helped = _loaded_by(run.format(["casework", "--help"]))
    assert "workflow" in helped
    assert [
        m for m in ("sqlmodel", "alembic", "machines", "jinja2", *OPTIONAL) if m in helped
    ] == []
    fired = _loaded_by(
        run.format(["casework", "--db", url, "fire", case_id, "note", "--actor", "li.na"])
    )
    unused = ("sqlmodel", "pydantic", "alembic", "jinja2", "apscheduler", *OPTIONAL)
    assert [m for m in unused if m in fired] == []
    shown = _loaded_by(run.format(["casework", "--db", url, "show", case_id]))
    assert [m for m in unused if m in shown] == []
    verified = _loaded_by(run.format(["casework", "--db", url, "verify", "--workers", "1"]))
    assert [m for m in unused if m in verified] == []


def test_a_command_runs_with_the_collector_on_and_leaves_a_callers_alone(tmp_path: Path) -> None:
    """The process's own command line starts with the cyclic garbage collector off and
    turns it on again, start-up frozen, once the engine is open; a command run in a
    caller's process (arguments given) leaves the caller's collector as it was."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    probe = (
        "import gc, json, sys\nfrom casework.workflow.cli import main\n{run}\n"
        "print(json.dumps([gc.isenabled(), gc.get_freeze_count() > 0]))"
    )
    whole = f"sys.argv = ['casework', '--db', {url!r}, 'list']\ntry:\n    main()\n"
    whole += "except SystemExit:\n    pass"
    called = f"try:\n    main(['--db', {url!r}, 'list'])\nexcept SystemExit:\n    pass"
    results = []
    for run in (whole, called):
        out = subprocess.run(
            [sys.executable, "-c", probe.format(run=run)],
            check=True, capture_output=True, text=True, cwd=ROOT,
        ).stdout  # fmt: skip
        results.append(json.loads(out.splitlines()[-1]))
    assert results == [[True, True], [True, False]]


BLOCK = """
import sys
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Missing())
from casework.workflow.cli import main
sys.argv = ["casework", *{args!r}]
main()
"""


def _without(blocked: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``casework --db ... ARGS`` in a process where ``blocked`` cannot be imported."""
    code = BLOCK.format(blocked=blocked, args=["--db", f"sqlite:///{tmp_path}/c.db", *args])
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False,
    )  # fmt: skip


REPORT = ["report", "sla", "--from", "2026-11-01T00:00Z", "--to", "2026-12-01T00:00Z"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("blocked", "args", "extra"),
    [
        ("matplotlib", REPORT, "reports"),
        ("cryptography", ["keys", "generate", "--key", "k.key", "--keyring", "k.ring"], "signing"),
        ("aiosmtpd", ["demo"], "demo"),
        ("fastapi", ["serve"], "server"),
        ("uvicorn", ["serve"], "server"),
        ("prometheus_client", ["serve"], "server"),
    ],
)
def test_a_command_whose_extra_is_missing_names_it(
    tmp_path: Path, blocked: str, args: list[str], extra: str
) -> None:
    """Without its optional package a command exits 2 with one line naming the extra,
    and commands of the core install still run."""
    run = _without(blocked, tmp_path, *args)
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [
        f"casework: error: {args[0]} needs {blocked}, which comes with the {extra} extra: "
        f"pip install 'casework[{extra}]'"
    ]
    for core in ("migrate", "verify"):
        ran = _without(blocked, tmp_path, core)
        assert ran.returncode == 0, ran.stderr
