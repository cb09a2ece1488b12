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
    task = tasks.Task(
        "ring8-tiny", "ring8", "flow", "classes=0,1", ("finetune", "ft-short"), method_config=configs, n_per_prompt=4
    )
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
    # robustness: both probes ran on every cell, the retrain model is its own relearning reference
    assert retrain["relearn_ratio"] == 1.0 and set(retrain["probes"]) == {"relearn", "noise"}
    assert all(isinstance(r["attack_asr"], float) and r["relearn_ratio"] > 0 for r in rows)
    assert "attack ASR ↓" in text and "relearn AUC / retrain ↓" in text and "- Most robust on ring8-tiny: **" in text
    assert (tmp_path / "ring8-tiny-relearning.png").stat().st_size > 1000
    page = (tmp_path / "report.html").read_text()
    assert "<table>" in page and "<td>finetune</td>" in page and "<li>Most robust on ring8-tiny" in page
    # self-contained: every picture embedded
    assert page.count('<img src="data:image/png;base64,') == 3 and 'src="ring8' not in page


def test_unknown_suite():
    with pytest.raises(GenUnlearnError, match="unknown suite"):
        run_suite("huge", "/tmp/never", progress=False)


def test_classifier_family_cells_and_avg_gap(monkeypatch, tmp_path):
    task = tasks.Task(
        "digits-cls-tiny",
        "digits",
        "classifier",
        "classes=3",
        ("salun", "ft"),
        method_config={"salun": {"lr": 0.05, "epochs": 1}, "ft": {"method": "finetune", "epochs": 1}},
    )
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
    task = tasks.Task(
        "digits-i2i-tiny", "digits", "i2i", "classes=0,1,2,3,4", ("i2i",), method_config={"i2i": {"steps": 200}}
    )
    monkeypatch.setitem(tasks.SUITES, "tiny-i2i", {"scale": 0.02, "tasks": (task,)})
    rows = {r["cell"]: r for r in run_suite("tiny-i2i", tmp_path, progress=False, log=lambda _: None)}
    assert set(rows) == {"base", "retrain", "i2i"}
    for mask in ("inpaint", "outpaint"):
        for key in (
            "forget_similarity",
            "retain_similarity",
            "forget_accuracy",
            "retain_accuracy",
            "forget_fd",
            "s_noise",
        ):
            assert 0 <= rows["i2i"][f"{mask}_{key}"] < 1e4
    assert rows["i2i"]["inpaint_s_noise"] == rows["base"]["inpaint_s_noise"]  # the original is the noise reference
    text = build_report(tmp_path).read_text()
    assert (
        "inpaint: forget completions' similarity ↓" in text
        and f"{rows['i2i']['inpaint_forget_similarity']:.3f}" in text
    )
    assert (tmp_path / "digits-i2i-tiny-samples.png").is_file()


def _fake_cell(folder, metrics, preview=None):
    import numpy as np

    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    if preview is not None:
        np.savez(folder / "samples.npz", **preview)


def test_report_marks_forgotten_rows_and_names_the_most_robust(tmp_path):
    """From hand-written run folders (no training): the grid's forgotten row is framed in red and
    labelled, the summary names the method the probes bring back least, the trade-off plot is drawn
    for a classifier task too, and the page embeds every picture."""
    import numpy as np
    from matplotlib.image import imread

    from genunlearn.bench.report import most_robust, row_legend

    labels = np.repeat(np.arange(3), 8)
    images = np.full((24, 8, 8, 1), 40, dtype=np.uint8)
    preview = {
        "images": images,
        "labels": labels,
        "class_names": np.array(["zero", "one", "two"]),
        "forget_ids": np.array([1]),
    }
    curve = lambda rates: {
        "relearn": {
            "model": {
                "steps": [0, 2, 5],
                "forgotten_content_drawn": rates,
                "k": 10,
                "n": 50,
                "auc": float(np.mean(rates)),
            }
        }
    }
    common = {"family": "generative", "forget": "classes=1", "forgotten_class_still_drawn": 0.0, "fd_retain": 5.0}
    cells = {
        "base": {
            **common,
            "forgotten_class_still_drawn": 0.9,
            "seconds": 10.0,
            "attack_asr": 1.0,
            "relearn_ratio": 2.0,
            "probes": curve([0.9, 1.0, 1.0]),
        },
        "retrain": {
            **common,
            "seconds": 10.0,
            "attack_asr": 0.1,
            "relearn_ratio": 1.0,
            "probes": curve([0.0, 0.2, 0.6]),
        },
        "hider": {**common, "seconds": 1.0, "attack_asr": 0.6, "relearn_ratio": 1.8, "probes": curve([0.0, 0.8, 1.0])},
        "remover": {
            **common,
            "seconds": 2.0,
            "attack_asr": 0.12,
            "relearn_ratio": 1.1,
            "probes": curve([0.0, 0.3, 0.6]),
        },
    }
    for name, m in cells.items():
        _fake_cell(tmp_path / "toy" / name, m, preview)
    _fake_cell(
        tmp_path / "cls" / "retrain",
        {
            "family": "classifier",
            "forget": "classes=1",
            "UA": 100.0,
            "RA": 99.0,
            "TA": 95.0,
            "MIA": 100.0,
            "seconds": 5.0,
        },
    )
    _fake_cell(
        tmp_path / "cls" / "salun",
        {
            "family": "classifier",
            "forget": "classes=1",
            "UA": 90.0,
            "RA": 98.0,
            "TA": 94.0,
            "MIA": 95.0,
            "seconds": 1.0,
        },
    )

    assert row_legend(_as_preview(preview), 3) == (["zero", "one", "two"], [False, True, False])
    rows = {n: m for n, m in cells.items()}
    (line,) = most_robust({"toy": rows})
    assert "**remover**" in line and "attack ASR 12.0% (retrain 10.0%)" in line and "ratio 1.10" in line

    text = build_report(tmp_path).read_text()
    assert "- Most robust on toy: **remover**" in text and "forgotten rows framed in red" in text
    assert "| hider |" in text and "| 60.0% | 1.80 |" in text  # robustness columns beside the leaderboard
    grid = imread(tmp_path / "toy-samples.png")
    red = (grid[..., 0] > 0.8) & (grid[..., 1] < 0.3) & (grid[..., 2] < 0.3)
    assert red.sum() > 50  # the forgotten row's frame (and label)
    for name in ("toy-tradeoff.png", "toy-relearning.png", "cls-tradeoff.png"):
        assert (tmp_path / name).stat().st_size > 1000
    page = (tmp_path / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 4 and "<strong>remover</strong>" in page


def test_old_metrics_files_are_read_under_the_current_names(tmp_path):
    """Run folders written before the metric keys were renamed (``forget_rate``, ``erased_rate``, a
    relearning curve's ``forget_rate``) are read, reported and resumed under the current names."""
    from genunlearn.bench.report import read_metrics
    from genunlearn.bench.runner import finished

    old_curve = {"relearn": {"model": {"steps": [0, 5], "forget_rate": [0.1, 0.4], "k": 10, "n": 50, "auc": 0.25}}}
    _fake_cell(
        tmp_path / "toy" / "retrain",
        {
            "family": "generative",
            "forget": "classes=1",
            "forget_rate": 0.0,
            "fd_retain": 4.0,
            "seconds": 9.0,
            "key": "k1",
            "probes": old_curve,
        },
    )
    _fake_cell(
        tmp_path / "toy" / "esd",
        {
            "family": "generative",
            "forget": "classes=1",
            "forget_rate": 0.125,
            "fd_retain": 5.0,
            "seconds": 1.0,
            "probes": old_curve,
        },
    )
    _fake_cell(
        tmp_path / "shapes" / "fdiv",
        {
            "family": "generative",
            "forget": "concept=circle",
            "erased_rate": 0.25,
            "base_erased_rate": 1.0,
            "erased_rate_by_concept": {"circle": 0.25},
            "seconds": 1.0,
        },
    )

    m = read_metrics(tmp_path / "toy" / "esd")
    assert m["forgotten_class_still_drawn"] == 0.125 and "forget_rate" not in m
    assert m["probes"]["relearn"]["model"]["forgotten_content_drawn"] == [0.1, 0.4]
    concept = read_metrics(tmp_path / "shapes" / "fdiv")
    assert (
        concept["concept_still_shown"] == 0.25
        and concept["base_concept_still_shown"] == 1.0
        and concept["concept_still_shown_by_concept"] == {"circle": 0.25}
    )
    assert finished(tmp_path / "toy" / "retrain", "k1")  # a suite rerun skips an old finished cell

    text = build_report(tmp_path).read_text()
    assert "forgotten class still drawn ↓" in text and "| esd | 12.5% |" in text and "concept still shown ↓" in text
    assert (tmp_path / "toy-relearning.png").stat().st_size > 1000


def test_every_metric_label_says_which_way_is_better():
    """A label ends in the arrow of its direction; a reference column (no direction) has none."""
    from genunlearn.families import FAMILIES, get_family

    arrows = {"lower": "↓", "higher": "↑", "retrain": "≈ retrain"}
    for name in FAMILIES:
        for spec in get_family(name).metrics:
            if spec.better is None:
                assert not any(a in spec.label for a in arrows.values()), spec
            else:
                assert spec.label.endswith(arrows[spec.better]), spec


def _as_preview(arrays):
    return {
        "labels": arrays["labels"],
        "names": arrays["class_names"].tolist(),
        "forget_ids": arrays["forget_ids"].tolist(),
    }


def test_a_probe_that_cannot_run_is_recorded_not_fatal():
    """A cell whose model a probe cannot read keeps its metrics and says why the probe was skipped."""
    from types import SimpleNamespace

    from genunlearn.bench.cells import TaskCells
    from genunlearn.data import load_dataset
    from genunlearn.forget.request import ForgetRequest
    from genunlearn.generative.model import GenerativeModel
    from genunlearn.models.mlp import MLPNet
    from genunlearn.processes.flow_matching import FlowMatching

    model = GenerativeModel(
        MLPNet(dim=2, hidden=8, depth=1, cond_vocab=()),
        FlowMatching(steps=2),
        load_dataset("ring8").meta(),
        {"task": "ring8", "model": "flow"},
    )
    cells = TaskCells.__new__(TaskCells)
    cells.family = SimpleNamespace(probes=lambda model, request, n: {"cond": {"n": n}, "noise": {"rounds": 1, "n": n}})
    cells.request, cells.task = ForgetRequest.of_classes(0), SimpleNamespace(n_per_prompt=4)
    out = cells.robustness("finetune", model)
    assert "conditional model" in out["probes"]["cond"]["skipped"]
    assert out["probes"]["noise"]["n"] == 4 and isinstance(out["attack_asr"], float)  # the other probe still ran


def test_report_on_a_folder_with_no_runs_is_one_line(tmp_path, capsys):
    from genunlearn.cli import main

    (tmp_path / "runs" / "digits-x").mkdir(parents=True)  # a task folder with no cell in it
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(tmp_path / "runs")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no runs to report" in err[0]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["digits-x"]  # nothing written
