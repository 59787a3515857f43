"""The allowed import edges between the top-level packages, both ways.

The exported version directory is the only contract: training/ and app/ share nothing but the
contract package artifact/, which imports neither side (nor TensorFlow, pandas or a web
framework). cli/ is the one place that reaches into both: it trains and it serves.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

OURS = ("app", "artifact", "cli", "training")
ALLOWED = {
    "artifact": set(),
    "app": {"artifact"},
    "training": {"artifact"},
    "cli": {"app", "artifact", "training"},
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
