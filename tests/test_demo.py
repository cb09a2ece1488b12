"""The README's main command on a tiny budget: both models, metrics and a report with figures."""

import json

from genunlearn.demo import run_demo


def test_demo_writes_report(tmp_path):
    rows = run_demo(tmp_path, steps=40, progress=False)
    assert set(rows) == {"base", "retrain"}
    report = (tmp_path / "report.md").read_text()
    assert "| base |" in report and "| retrain |" in report and "samples.png" in report
    assert (tmp_path / "samples.png").stat().st_size > 1000
    for name in rows:
        m = json.loads((tmp_path / name / "metrics.json").read_text())
        assert 0 <= m["forget_rate"] <= 1 and m["fd_floor"] >= 0
        assert (tmp_path / name / "model" / "network.safetensors").is_file()
    # the retrained model never saw a 3 and the base did; info records which is which
    base = json.loads((tmp_path / "base" / "model" / "config.json").read_text())["info"]
    retrain = json.loads((tmp_path / "retrain" / "model" / "config.json").read_text())["info"]
    assert base["forget"] is None and retrain["forget"] == "classes=3" and base["key"] != retrain["key"]
