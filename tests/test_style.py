"""The code passes the linter and is formatted (ruff, configured in pyproject.toml), and its functions are short."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff(command):
    r = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


MAX_FUNCTION_LINES = 60  # a function one reads in one screen


def test_no_function_in_the_library_is_longer_than_a_screen():
    import ast

    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted((ROOT / "src" / "genunlearn").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, "\n".join(long)


MAX_METHOD_FILE_LINES = 120  # a method one reads in one sitting


def test_every_method_file_reads_in_one_sitting():
    """Each registered method's module, and every module of a method package (``methods/fdiv/``), is
    at most ``MAX_METHOD_FILE_LINES`` lines."""
    import importlib.util

    from genunlearn.catalogue import CATALOGUE

    files = set()
    for entry in CATALOGUE:
        path = Path(importlib.util.find_spec(entry.target.split(":")[0]).origin)
        in_package = path.parent.parent.name == "methods"  # genunlearn/methods/<method>/method.py
        files |= set(path.parent.glob("*.py")) if in_package else {path}
    long = [
        f"{p.relative_to(ROOT)} ({n} lines)"
        for p in sorted(files)
        if (n := len(p.read_text().splitlines())) > MAX_METHOD_FILE_LINES
    ]
    assert len(files) > 12 and not long, "\n".join(long)
