"""The allowed import edges between the top-level packages, both ways.

The exported version directory is the only contract: training/ and app/ share nothing but the
contract package artifact/, which imports neither side (nor TensorFlow, pandas or a web
framework). cli/ reaches into both (it trains and it serves), and so does loop/, the retrain
loop, which trains a candidate and judges it through the service's own code.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

OURS = ("app", "artifact", "cli", "loop", "training")
ALLOWED = {
    "artifact": set(),
    "app": {"artifact"},
    "training": {"artifact"},
    "loop": {"app", "artifact", "training"},  # the retrain loop: trains, and judges as served
    "cli": {"app", "artifact", "loop", "training"},
}
# Libraries the contract must not pull into whichever side imports it.
NOT_IN_ARTIFACT = {"tensorflow", "keras", "pandas", "fastapi", "starlette", "uvicorn"}


def imported_modules(source: Path) -> set[str]:
    tree = ast.parse(source.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def edges(package: str) -> dict[str, set[str]]:
    """module path -> the top-level packages it imports (its own package left out)."""
    return {
        str(path.relative_to(ROOT)): {m.split(".")[0] for m in imported_modules(path)}
        for path in (ROOT / package).rglob("*.py")
    }


def test_each_package_imports_only_what_it_may():
    offenders = {
        module: sorted((tops & set(OURS)) - ALLOWED[package] - {package})
        for package in OURS
        for module, tops in edges(package).items()
    }
    assert {m: bad for m, bad in offenders.items() if bad} == {}


def test_the_contract_carries_no_framework():
    offenders = {
        module: sorted(tops & NOT_IN_ARTIFACT) for module, tops in edges("artifact").items()
    }
    assert {m: bad for m, bad in offenders.items() if bad} == {}


def test_the_check_sees_imports():
    # Guard against the scan silently finding nothing (a wrong path, say).
    assert "artifact" in edges("app")[str(Path("app", "serving", "loader.py"))]
    assert "artifact" in edges("training")[str(Path("training", "export.py"))]
    assert {"app", "training"} <= edges("cli")[str(Path("cli", "serve.py"))] | edges("cli")[
        str(Path("cli", "train.py"))
    ]


# --- inside app/: layers without circles --------------------------------------------------------

MAX_MODULE_LINES = 400


def app_node(module: str) -> str | None:
    """The unit of app/ a module belongs to: its subpackage (app.events, app.ranking, ...), or
    the top-level module itself (app.settings, app.state, ...); None outside app/."""
    parts = module.split(".")
    if parts[0] != "app" or len(parts) < 2:
        return None
    return ".".join(parts[:2])


def app_imports(runtime_only: bool) -> dict[str, set[str]]:
    """module -> the app modules it imports (`from app.x import y` counts as app.x); with
    `runtime_only`, imports under `if TYPE_CHECKING:` are left out."""
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "app").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        skipped: set[int] = set()
        if runtime_only:
            for node in ast.walk(tree):
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    skipped |= {id(n) for child in node.body for n in ast.walk(child)}
        found = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("app.")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "app":
                    found |= {f"app.{a.name}" for a in node.names}
                elif node.module.startswith("app."):
                    found.add(node.module)
        graph[module] = found
    return graph


def circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` (as the nodes along it), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_of_ours_passes_the_line_bound():
    long = {
        str(path.relative_to(ROOT)): n
        for package in OURS
        for path in (ROOT / package).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_one_module_selects_top_n_with_argpartition():
    using = sorted(
        str(path.relative_to(ROOT))
        for package in ("app", "artifact")
        for path in (ROOT / package).rglob("*.py")
        if "argpartition(" in path.read_text()
    )
    assert using == ["artifact/topn.py"]


def test_no_import_circle_between_the_parts_of_app():
    modules = app_imports(runtime_only=False)
    parts: dict[str, set[str]] = {}
    for module, imported in modules.items():
        node = app_node(module)
        if node is None:  # app/__init__.py
            continue
        parts.setdefault(node, set()).update(
            target for m in imported if (target := app_node(m)) not in (None, node)
        )
    assert circle(parts) is None


def test_no_module_of_app_imports_itself_round_at_run_time():
    assert circle(app_imports(runtime_only=True)) is None


def test_serving_and_events_never_import_the_http_layer():
    up = {
        module: sorted(m for m in imported if app_node(m) in ("app.http", "app.routes"))
        for module, imported in app_imports(runtime_only=False).items()
        if app_node(module) in ("app.serving", "app.events")
    }
    assert {m: bad for m, bad in up.items() if bad} == {}


def test_the_circle_check_finds_a_circle():
    assert circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert circle({"a": {"b"}, "b": set()}) is None
