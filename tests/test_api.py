"""The Python API (`import genunlearn as gu`): the docs/python.md example runs, names load lazily,
the result records what was done, bad input is one line."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import genunlearn as gu

DOC = Path(__file__).parents[1] / "docs" / "python.md"
TINY = {"steps=200": "steps=3, pool=256, batch=64", "n_per_prompt=50": "n_per_prompt=5"}


def test_import_is_light_and_names_are_lazy():
    code = "import genunlearn as gu, sys; assert 'torch' not in sys.modules; gu.request; assert 'torch' not in sys.modules; gu.unlearn; print(sorted(set(gu.__all__) - set(dir(gu))))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gu.nope


def test_public_objects_have_docstrings():
    for name in (
        "pretrained",
        "load",
        "request",
        "unlearn",
        "evaluate",
        "save",
        "list_methods",
        "describe_data",
        "run_demo",
    ):
        assert (getattr(gu, name).__doc__ or "").strip(), name


def test_docs_example_runs(tmp_path, monkeypatch, capfd):
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    for real, tiny in TINY.items():
        assert real in block
        block = block.replace(real, tiny)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(block, str(DOC), "exec"), scope)
    result, metrics = scope["result"], scope["metrics"]
    err = capfd.readouterr().err  # one line per stage, saying what runs and why
    assert (
        "continualflow: forgetting classes=3 in 3 steps (ContinualFlow:" in err
        and "evaluating the unlearned model (5 samples per prompt" in err
    )
    assert (
        scope["model"].info["role"] == "base" and scope["model"].info["steps"] == 4000
    )  # the released, fully trained model
    assert result.info["method"] == "continualflow" and result.info["forget"] == "classes=3"
    assert 0 <= metrics["forgotten_class_still_drawn"] <= 1 and metrics["fd_retain"] > 0
    saved = json.loads((tmp_path / "runs/python-demo/continualflow/config.json").read_text())
    assert saved["info"]["forget"] == "classes=3"
    assert gu.load(tmp_path / "runs/python-demo/continualflow").info["method"] == "continualflow"


def test_bad_input_is_one_line(tmp_path):
    with pytest.raises(gu.GenUnlearnError, match="not found"):
        gu.pretrained("no-such-task", "flow")
    with pytest.raises(gu.GenUnlearnError, match="unknown model family"):
        gu.pretrained("digits", "gan")
    with pytest.raises(gu.GenUnlearnError):
        gu.request("classes=")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    with pytest.raises(gu.GenUnlearnError, match="not a genunlearn model"):
        gu.save(object(), tmp_path / "notes")


def test_every_catalogue_row_is_a_method_named_by_it():
    from genunlearn.methods import Method, registry

    assert all(issubclass(cls, Method) and (cls.family, cls.name) == key for key, cls in registry().items())
    assert all(m.summary for m in gu.list_methods())
