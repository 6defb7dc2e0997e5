"""The layout rules the import contracts cannot express: sizes, and one reader of os.environ."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "reconciler"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def outside_fakekube() -> list[Path]:
    return [p for p in modules() if "fakekube" not in p.parts]


def test_no_module_is_longer_than_500_lines() -> None:
    """Every module of reconciler/ (fakekube included) stays under 500 lines."""
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_no_function_outside_fakekube_is_longer_than_60_lines() -> None:
    """Functions in reconciler/ outside fakekube read at once: 60 lines at most."""
    long = {}
    for path in outside_fakekube():
        for function in _functions(ast.parse(path.read_text())):
            length = (function.end_lineno or function.lineno) - function.lineno + 1
            if length > MAX_FUNCTION_LINES:
                long[f"{path.relative_to(PACKAGE)}:{function.name}"] = length
    assert long == {}


def _reads_environment(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "getenv", "environb")
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(alias.name in ("environ", "getenv") for alias in node.names)
        ):
            return True
    return False


@pytest.mark.parametrize("allowed", ["settings.py"])
def test_only_settings_reads_the_environment(allowed: str) -> None:
    """Only settings.py reads os.environ (the testing helpers build environments for
    subprocesses, which is not reading settings)."""
    readers = [
        str(p.relative_to(PACKAGE))
        for p in modules()
        if _reads_environment(ast.parse(p.read_text())) and "testing" not in p.parts
    ]
    assert readers == [allowed]


def test_every_subpackage_ships_in_the_wheel() -> None:
    """pyproject.toml lists every package under reconciler/, so an installed copy (the Docker
    image) has them all."""
    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(PACKAGE.parent).parts)
        for p in PACKAGE.rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found - listed == set()
