"""The import rules of docs/architecture.md, checked on the source (AST): a change that breaks them fails here.

Each package may import only what its layer allows; the core reads no environment
variables; routers hold no pipeline logic (they import no library code) and no SQL exists
outside app.storage.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names) | {"__future__"}

#: Third-party packages by role.
NUMERIC = {"numpy", "scipy", "pymetis", "threadpoolctl"}
GIS = {"osmnx", "networkx", "shapely", "pyproj", "geopandas", "pandas", "gpxpy", "osmium"}
WEB = {"fastapi", "starlette", "uvicorn", "pydantic", "pydantic_settings", "multipart", "httpx"}
PLOTS = {"matplotlib", "tqdm"}


@dataclass(frozen=True)
class Rule:
    """Modules under ``package`` (a dotted prefix; ``exclude`` prefixes left out) may import only ``allowed``,
    and never ``forbidden`` (prefixes inside an allowed one)."""

    package: str
    allowed: frozenset[str]
    exclude: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    #: forbidden modules a function may still import (lazily: only when that function runs)
    lazy: tuple[str, ...] = ()

    def permits(self, imported: str, top_level: bool = True) -> bool:
        if any(imported == f or imported.startswith(f + ".") for f in self.forbidden):
            return not top_level and any(imported == f or imported.startswith(f + ".") for f in self.lazy)
        parts = imported.split(".")
        return any(".".join(parts[:i]) in self.allowed for i in range(1, len(parts) + 1))

    def covers(self, module: str) -> bool:
        inside = module == self.package or module.startswith(self.package + ".")
        return inside and not any(module == e or module.startswith(e + ".") for e in self.exclude)


def _allow(*names: str | set[str]) -> frozenset[str]:
    out: set[str] = set(STDLIB)
    for n in names:
        out |= n if isinstance(n, set) else {n}
    return frozenset(out)


RULES = [
    # the core: configuration-free math; Dask only in its optional distributed module
    # (the learner imports the distributed module inside fit, only when it is given a cluster)
    Rule("maxent_irl", _allow(NUMERIC, "maxent_irl"), exclude=("maxent_irl.roads", "maxent_irl.distributed"),
         forbidden=("maxent_irl.roads", "maxent_irl.distributed"), lazy=("maxent_irl.distributed",)),
    Rule("maxent_irl.distributed", _allow(NUMERIC, "maxent_irl", "dask", "distributed")),
    # the GIS adapter: the core and GIS libraries, nothing of the research code or the service
    Rule("maxent_irl.roads", _allow(NUMERIC, GIS, "maxent_irl", "tqdm")),
    # the paper's evaluation: the libraries, plots, and the service's storage API (read-only) only
    Rule("evaluation", _allow(NUMERIC, GIS, PLOTS, "maxent_irl", "evaluation", "app.storage")),
    # the GIS adapter sits below the research code
    Rule("maxent_irl.roads", _allow(NUMERIC, GIS, "maxent_irl", "tqdm"), forbidden=("evaluation", "app")),
    # the service never imports the research package
    Rule("app", _allow(NUMERIC, GIS, WEB, "maxent_irl", "app")),
    # storage: SQLite and the standard library
    Rule("app.storage", _allow("app.storage")),
    # services: no HTTP framework (pydantic schemas are fine), no routers
    Rule("app.services", _allow(NUMERIC, GIS, "pydantic", "pydantic_settings", "maxent_irl", "app.services",
                                "app.storage", "app.schemas", "app.settings", "app.runtime")),
    # routers parse and answer: no library code, no storage access but through the runtime they are given
    Rule("app.api.routes", _allow(WEB, "app.api", "app.schemas", "app.services", "app.runtime", "app"),
         forbidden=("app.storage", "app.jobs")),
]


def _modules() -> list[tuple[str, Path]]:
    out = []
    for top in ("maxent_irl", "app", "evaluation"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.append((".".join(parts), path))
    return out


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """``(line, imported module)`` of every import, relative ones resolved."""
    return [(line, name) for line, name, _ in _imports_where(path, module)]


def _imports_where(path: Path, module: str) -> list[tuple[int, str, bool]]:
    """``(line, imported module, at top level)`` of every import (not top level: inside a function)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    in_function = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                   for n in ast.walk(f) if n is not f}
    found = []
    for node in ast.walk(tree):
        top = id(node) not in in_function
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(node.lineno, f"{base}.{a.name}" if base else a.name, top) for a in node.names]
    return found


MODULES = _modules()


def test_the_modules_are_found() -> None:
    names = {m for m, _ in MODULES}
    assert {"maxent_irl.learning", "maxent_irl.roads.network", "app.api.routes.trajectories", "app.storage.trips",
            "evaluation.run"} <= names


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.package)
def test_imports_follow_the_layers(rule: Rule) -> None:
    bad = []
    for module, path in MODULES:
        if not rule.covers(module):
            continue
        for line, imported, top_level in _imports_where(path, module):
            if not rule.permits(imported, top_level):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    assert not bad, f"{rule.package} may not import these (docs/architecture.md):\n" + "\n".join(bad)


def test_the_rules_catch_a_violation(tmp_path: Path) -> None:
    """The checker itself: a core module importing the roads layer or reading the environment is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom maxent_irl.roads import RoadNetwork\nfrom . import sibling\nX = os.environ['A']\n")
    imports = _imports(bad, "maxent_irl.bad")
    assert [i for _, i in imports] == ["os", "maxent_irl.roads.RoadNetwork", "maxent_irl.sibling"]
    core = RULES[0]
    assert core.covers("maxent_irl.bad") and not core.covers("maxent_irl.roads.network")
    assert not core.permits("maxent_irl.roads.RoadNetwork") and not core.permits("osmnx")
    assert core.permits("maxent_irl.sibling") and core.permits("scipy.sparse")
    lazy = tmp_path / "lazy.py"
    lazy.write_text("from maxent_irl.distributed import A\ndef f():\n    from maxent_irl.distributed import B\n")
    assert [(i, top) for _, i, top in _imports_where(lazy, "maxent_irl.lazy")] == [
        ("maxent_irl.distributed.A", True), ("maxent_irl.distributed.B", False)]
    assert not core.permits("maxent_irl.distributed.A", True) and core.permits("maxent_irl.distributed.B", False)
    assert not core.permits("maxent_irl.roads.RoadNetwork", False)
    assert _environment_reads(bad) == [4]
    assert _SQL.match("SELECT id FROM trips WHERE network = ?") and _SQL.match("INSERT INTO jobs (kind) VALUES (?)")
    assert not _SQL.match("Drop a first segment") and not _SQL.match("DELETE") and not _SQL.match("select a few")


def _environment_reads(path: Path) -> list[int]:
    """Lines that read ``os.environ`` / ``os.getenv`` / ``os.environb``."""
    names = {"environ", "getenv", "environb"}
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        attribute = isinstance(node, ast.Attribute) and node.attr in names
        imported = isinstance(node, ast.ImportFrom) and node.module == "os" and any(a.name in names for a in node.names)
        if attribute or imported:
            lines.append(node.lineno)
    return lines


def test_the_libraries_read_no_environment_variables() -> None:
    """The core and the roads adapter are configured by arguments only (thread policy: maxent_irl.parallel)."""
    bad = [f"{p.relative_to(ROOT)}:{line}" for m, p in MODULES if m.startswith("maxent_irl")
           for line in _environment_reads(p)]
    assert not bad, bad


_SQL = re.compile(r"^\s*(SELECT\s.*\sFROM\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|CREATE\s+(TABLE|INDEX)"
                  r"|DROP\s+(TABLE|INDEX)|ALTER\s+TABLE|PRAGMA\s|BEGIN(\s+IMMEDIATE)?\s*$)", re.S)


def test_no_sql_outside_storage() -> None:
    bad = []
    for module, path in MODULES:
        if module.startswith("app.storage"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _SQL.match(node.value):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:40]!r}")
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if "sqlite3" in names:
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports sqlite3")
    assert not bad, bad
