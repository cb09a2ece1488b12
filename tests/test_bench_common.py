"""benchmarks/common.py, the statistics kit every benchmark script uses: mean ± sample standard
deviation, the validation pick under constraints, and the row cache (old metric names read)."""

import importlib.util
import json
import statistics
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "common.py"
spec = importlib.util.spec_from_file_location("bench_common", PATH)
common = importlib.util.module_from_spec(spec)
spec.loader.exec_module(common)


def test_mean_and_sample_standard_deviation():
    mean, sd = common.mean_sd([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3) and sd == pytest.approx(
        statistics.stdev([1.0, 2.0, 4.0])
    )  # ddof = 1, not pstdev
    assert common.mean_sd([5.0]) == (5.0, None)  # one seed: no spread
    assert common.fmt_mean_sd([0.5, 1.5], ".1f") == "1.0 ± 0.7"
    assert common.fmt_mean_sd([3, None], ".0f") == "3" and common.fmt_mean_sd([None], missing="n/a") == "n/a"


def test_pick_setting_relaxes_the_last_constraint_first():
    rows = [
        {"forget": 0.1, "fd": 1.0, "t": 0.1},
        {"forget": 0.0, "fd": 3.0, "t": 0.1},
        {"forget": 0.05, "fd": 1.1, "t": 0.9},
    ]
    score = lambda i: rows[i]["forget"]  # noqa: E731
    fd_ok, fast = (lambda i: rows[i]["fd"] <= 1.2), (lambda i: rows[i]["t"] <= 0.2)
    assert common.pick_setting(range(3), score, (fd_ok, fast)) == 0  # both met: only row 0
    rows[0]["t"] = 0.5
    assert common.pick_setting(range(3), score, (fd_ok, fast)) == 2  # none fast: the FD constraint alone
    assert common.pick_setting(range(3), score, (lambda i: False,)) == 1  # none met: lowest score over all
    assert common.pick_setting(range(3), score, (lambda i: False,), fallback=lambda i: rows[i]["fd"]) == 0


def test_rows_cache_resumes_and_reads_old_metric_names(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps({"val/0": {"forget_rate": 0.25, "fd_retain": 2.0}}))
    rows = common.Rows(path)
    assert rows.get("val/0", lambda: pytest.fail("a cached row is not recomputed")) == {
        "forgotten_class_still_drawn": 0.25,
        "fd_retain": 2.0,
    }
    assert rows.get("val/1", lambda: {"concept_still_shown": 0.5}) == {"concept_still_shown": 0.5}
    assert json.loads(path.read_text())["val/1"] == {"concept_still_shown": 0.5}


def test_record_pick_writes_the_file_the_library_reads_and_keeps_the_other_picks(tmp_path, monkeypatch):
    from genunlearn.methods import base

    assert common.PICKS == Path(base.__file__).parent / "picks.json"  # the file the library reads its defaults from
    picks = tmp_path / "picks.json"
    picks.write_text(json.dumps({"flow": {"finetune": {"by": "benchmarks/x.py", "setting": {"steps": 7}}}}))
    monkeypatch.setattr(common, "PICKS", picks)
    common.record_pick("flow", "continualflow", {"pool": 64}, "benchmarks/continualflow.py")
    common.record_pick("flow", "continualflow", {"pool": 32}, "benchmarks/continualflow.py")  # a rerun replaces
    record = json.loads(picks.read_text())
    assert record["flow"] == {
        "finetune": {"by": "benchmarks/x.py", "setting": {"steps": 7}},
        "continualflow": {"by": "benchmarks/continualflow.py", "setting": {"pool": 32}},
    }
