"""The suite runner on a tiny suite: resume skips finished cells, a lost cell reruns bit-identically,
and the report is built from the run folders."""

import json
import shutil
import time

import pytest

from genunlearn.bench import tasks
from genunlearn.bench.report import build_report
from genunlearn.bench.runner import run_suite
from genunlearn.errors import GenUnlearnError


@pytest.fixture
def tiny_suite(monkeypatch):
    configs = {"finetune": {"steps": 40, "batch": 64}, "ft-short": {"method": "finetune", "steps": 40, "batch": 16}}
    task = tasks.Task("ring8-tiny", "ring8", "flow", "classes=0,1", ("finetune", "ft-short"), method_config=configs, n_per_prompt=4)
    monkeypatch.setitem(tasks.SUITES, "tiny", {"scale": 0.03, "tasks": (task,)})
    return "tiny"


def test_resume_rerun_and_report(tiny_suite, tmp_path):
    logs = []
    rows = run_suite(tiny_suite, tmp_path, progress=False, log=logs.append)
    assert [r["cell"] for r in rows] == ["base", "retrain", "finetune", "ft-short"]
    short = json.loads((tmp_path / "ring8-tiny" / "ft-short" / "metrics.json").read_text())
    assert short["key"] != rows[2]["key"] and short["mmd_retain"] != rows[2]["mmd_retain"]  # a cell naming its method
    cell = tmp_path / "ring8-tiny" / "finetune"
    for name in ("metrics.json", "samples.npz", "log.jsonl", "model/config.json"):
        assert (cell / name).is_file()
    first = (cell / "metrics.json").read_text()

    logs.clear()
    run_suite(tiny_suite, tmp_path, progress=False, log=logs.append)
    assert len(logs) == 4 and all("skipped" in line for line in logs)

    # an interrupted cell: its folder never appeared, a temp folder was left behind
    shutil.rmtree(cell)
    (tmp_path / "ring8-tiny" / ".finetune.tmp-dead").mkdir()
    logs.clear()
    run_suite(tiny_suite, tmp_path, progress=False, log=logs.append)
    assert sum("skipped" in line for line in logs) == 3
    assert not (tmp_path / "ring8-tiny" / ".finetune.tmp-dead").exists()
    again = json.loads((cell / "metrics.json").read_text())
    before = json.loads(first)
    for k in ("forget_mass", "off_support", "mmd_retain", "component_mass"):
        assert again[k] == before[k]  # seeded: bit-for-bit on CPU

    t = time.perf_counter()
    report = build_report(tmp_path)
    assert time.perf_counter() - t < 10
    text = report.read_text()
    assert "## ring8-tiny" in text and "| finetune |" in text and "| retrain |" in text
    assert (tmp_path / "ring8-tiny-samples.png").stat().st_size > 1000
    assert (tmp_path / "ring8-tiny-tradeoff.png").is_file()
    retrain = json.loads((tmp_path / "ring8-tiny" / "retrain" / "metrics.json").read_text())
    assert f"{retrain['mmd_retain']:.4f}" in text  # numbers come from metrics.json
    page = (tmp_path / "report.html").read_text()
    assert "<table>" in page and "<td>finetune</td>" in page and 'src="ring8-tiny-samples.png"' in page


def test_unknown_suite():
    with pytest.raises(GenUnlearnError, match="unknown suite"):
        run_suite("huge", "/tmp/never", progress=False)


def test_classifier_family_cells_and_avg_gap(monkeypatch, tmp_path):
    task = tasks.Task("digits-cls-tiny", "digits", "classifier", "classes=3", ("salun", "ft"), method_config={"salun": {"lr": 0.05, "epochs": 1}, "ft": {"method": "finetune", "epochs": 1}})
    monkeypatch.setitem(tasks.SUITES, "tiny-cls", {"scale": 0.04, "tasks": (task,)})
    rows = {r["cell"]: r for r in run_suite("tiny-cls", tmp_path, progress=False, log=lambda _: None)}
    assert set(rows) == {"base", "retrain", "salun", "ft"}
    assert rows["retrain"]["UA"] == 100.0  # retrain never saw class 3
    assert rows["salun"]["UA"] > rows["base"]["UA"] + 50  # random labelling forgets class 3
    assert (tmp_path / "digits-cls-tiny" / "salun" / "model" / "config.json").is_file()
    text = build_report(tmp_path).read_text()
    salun_gap = sum(abs(rows["salun"][k] - rows["retrain"][k]) for k in ("UA", "RA", "TA", "MIA")) / 4
    assert f"| digits-cls-tiny | `classes=3` | salun | {salun_gap:.2f} |" in text  # summary: closest to retrain
    assert f"| salun | {rows['salun']['UA']:.2f} |" in text and text.count(f"| {salun_gap:.2f} |") >= 1  # Avg. Gap


def test_unknown_family(monkeypatch, tmp_path):
    task = tasks.Task("bad", "digits", "gan", "classes=3", ())
    monkeypatch.setitem(tasks.SUITES, "bad", {"scale": 0.1, "tasks": (task,)})
    with pytest.raises(GenUnlearnError, match="unknown model family 'gan'"):
        run_suite("bad", tmp_path, progress=False)


def test_i2i_family_cells(monkeypatch, tmp_path):
    task = tasks.Task("digits-i2i-tiny", "digits", "i2i", "classes=0,1,2,3,4", ("i2i",), method_config={"i2i": {"steps": 200}})
    monkeypatch.setitem(tasks.SUITES, "tiny-i2i", {"scale": 0.02, "tasks": (task,)})
    rows = {r["cell"]: r for r in run_suite("tiny-i2i", tmp_path, progress=False, log=lambda _: None)}
    assert set(rows) == {"base", "retrain", "i2i"}
    for mask in ("inpaint", "outpaint"):
        for key in ("forget_similarity", "retain_similarity", "forget_accuracy", "retain_accuracy", "forget_fd", "s_noise"):
            assert 0 <= rows["i2i"][f"{mask}_{key}"] < 1e4
    assert rows["i2i"]["inpaint_s_noise"] == rows["base"]["inpaint_s_noise"]  # the original is the noise reference
    text = build_report(tmp_path).read_text()
    assert "inpaint forget sim" in text and f"{rows['i2i']['inpaint_forget_similarity']:.3f}" in text
    assert (tmp_path / "digits-i2i-tiny-samples.png").is_file()
