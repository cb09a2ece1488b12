"""Every third-party import is declared in pyproject.toml, and a missing extra is one line."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised (PEP 503)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]).lower()


def declared(*extras: str) -> set[str]:
    """The distributions a plain install brings, plus those of ``extras`` (self-references expanded)."""
    names, todo = {_name(r) for r in PROJECT["dependencies"]}, list(extras)
    while todo:
        for requirement in PROJECT["optional-dependencies"][todo.pop()]:
            if _name(requirement) == PROJECT["name"]:
                todo += re.search(r"\[(.*)\]", requirement).group(1).split(",")
            else:
                names.add(_name(requirement))
    return names


def third_party_imports(folder: Path) -> dict[str, str]:
    """Top-level module → the first file importing it, for every import outside the stdlib and genunlearn."""
    found = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                local = (folder / f"{top}.py").is_file() or (
                    folder / top
                ).is_dir()  # a module of the folder itself (tests importing tests)
                if top not in sys.stdlib_module_names and top not in ("genunlearn", "__future__") and not local:
                    found.setdefault(top, str(path.relative_to(folder)))
    return found


def undeclared(folder: Path, allowed: set[str]) -> list[str]:
    owners = packages_distributions()
    return [
        f"{module} (imported in {where}; from {', '.join(owners.get(module, ['no installed distribution']))})"
        for module, where in third_party_imports(folder).items()
        if not {_name(d) for d in owners.get(module, [])} & allowed
    ]


def test_every_source_import_is_declared():
    assert undeclared(ROOT / "src", declared(*PROJECT["optional-dependencies"])) == []


def test_every_test_import_comes_with_the_test_extra():
    assert undeclared(ROOT / "tests", declared("test")) == []


def test_the_checker_sees_an_undeclared_import(tmp_path):
    (tmp_path / "m.py").write_text("import yaml\nfrom sklearn import svm\nimport os, json\n")
    assert third_party_imports(tmp_path) == {"yaml": "m.py", "sklearn": "m.py"}
    assert [u.split()[0] for u in undeclared(tmp_path, {"pyyaml"})] == ["sklearn"]


def test_the_extras_guard_names_every_package_of_its_extra():
    from genunlearn.extras import EXTRA_OF

    for extra, requirements in PROJECT["optional-dependencies"].items():
        if extra != "test":
            assert {_name(r) for r in requirements} == {m for m, e in EXTRA_OF.items() if e == extra}


@pytest.mark.parametrize("module", ["transformers", "tokenizers"])
def test_sd_without_its_extra_is_one_line(module, monkeypatch, tmp_path, capsys):
    from genunlearn.cli import main

    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--task", "shapes", "--model", "sd", "--out", str(tmp_path / "m")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: a Stable-Diffusion-layout pipeline (--model sd) needs the package {module!r}: install the 'sd' extra (pip install 'genunlearn[sd]')"
    ]
    assert not (tmp_path / "m").exists()
