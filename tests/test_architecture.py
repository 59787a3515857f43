"""The service never imports the training package: the version directory is the only contract."""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"


def imported_modules(source: Path) -> set[str]:
    tree = ast.parse(source.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_app_never_imports_training():
    offenders = {
        str(path.relative_to(APP.parent)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] == "training"
        )
        for path in APP.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_sees_imports():
    # Guard against the scan silently finding nothing (e.g. a wrong path).
    assert "app.serving.loader" in imported_modules(APP / "ranking" / "recommend.py")
