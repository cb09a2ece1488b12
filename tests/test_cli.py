"""The CLI as a user runs it: one-line errors, exit codes, files left intact."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from genunlearn.cli import main


def test_help_is_fast_and_lazy():
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "genunlearn.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "unlearn" in r.stdout and "demo" in r.stdout
    assert time.perf_counter() - t < 3.0  # torch is not imported for --help
    r = subprocess.run(
        [sys.executable, "-c", "import genunlearn.cli, sys; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
    )
    assert r.stdout.strip() == "False"


@pytest.fixture(scope="module")
def ring_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "ring"
    with pytest.raises(SystemExit) as e:
        main(["train", "--task", "ring8", "--model", "flow", "--out", str(out), "--steps", "400"])
        raise SystemExit(0)
    assert e.value.code == 0
    return out


def test_train_sample_evaluate_roundtrip(ring_model, tmp_path, cli):
    code, out, _ = cli("sample", str(ring_model), "--n", "50", "--out", str(tmp_path / "s.npz"))
    assert code == 0
    with np.load(tmp_path / "s.npz") as f:
        assert f["samples"].shape == (50, 2) and f["samples"].dtype == np.float32 and f["labels"].shape == (50,)
    code, out, _ = cli(
        "evaluate",
        str(ring_model),
        "--forget",
        "classes=0,1",
        "--n-per-prompt",
        "10",
        "--out",
        str(tmp_path / "m.json"),
    )
    assert code == 0 and "forget_mass" in out
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert 0.1 < metrics["forget_mass"] < 0.4  # the base model still has modes 0 and 1 (≈ 2/8)
    assert metrics["reference_split"] == "test"
    code, _, _ = cli(
        "evaluate",
        str(ring_model),
        "--forget",
        "classes=0,1",
        "--n-per-prompt",
        "10",
        "--split",
        "val",
        "--out",
        str(tmp_path / "v.json"),
    )
    tuned = json.loads((tmp_path / "v.json").read_text())
    assert code == 0 and tuned["reference_split"] == "val"
    assert (
        tuned["forget_mass"] == metrics["forget_mass"] and tuned["mmd_retain"] != metrics["mmd_retain"]
    )  # same samples, other real references


def test_train_is_cached(ring_model, tmp_path, cli):
    t = time.perf_counter()
    code, out, _ = cli("train", "--task", "ring8", "--out", str(tmp_path / "again"), "--steps", "400")
    assert code == 0 and time.perf_counter() - t < 5
    a = (ring_model / "network.safetensors").read_bytes()
    assert (tmp_path / "again" / "network.safetensors").read_bytes() == a


@pytest.mark.parametrize(
    "args,match",
    [
        (["train", "--task", "mnist", "--out", "{tmp}/x"], "unknown task 'mnist'"),
        (["train", "--task", "digits", "--forget", "classes=12", "--out", "{tmp}/x"], "unknown class 12"),
        (["train", "--task", "digits", "--forget", "clases=1", "--out", "{tmp}/x"], "unknown key 'clases'"),
        (
            ["train", "--task", "digits", "--forget", "classes=0,1,2,3,4,5,6,7,8,9", "--out", "{tmp}/x"],
            "retain split is empty",
        ),
        (["sample", "{tmp}/nothing", "--out", "{tmp}/s.npz"], "not a folder"),
        (["sample", "{model}", "--out", "{tmp}/s.npz", "--labels", "3"], "unconditional"),
        (["evaluate", "{model}", "--forget", "classes=9"], "unknown class 9"),
        (["evaluate", "{model}", "--forget", "classes=1", "--split", "train"], "'train' is not one of 'test', 'val'"),
        (
            ["unlearn", "{model}", "--method", "magic", "--forget", "classes=1", "--out", "{tmp}/u"],
            "unknown method 'magic'",
        ),
        (
            [
                "unlearn",
                "{model}",
                "--method",
                "retrain",
                "--forget",
                "classes=1",
                "--out",
                "{tmp}/u",
                "--set",
                "speed=9",
            ],
            "unknown config key 'speed'",
        ),
    ],
)
def test_bad_input_one_line_error(ring_model, tmp_path, cli, args, match):
    args = [a.format(tmp=tmp_path, model=ring_model) for a in args]
    code, out, err = cli(*args)
    assert code == 2
    assert err.startswith("error: ") and match in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists() and not (tmp_path / "u").exists()


def test_refuses_to_overwrite_foreign_folder(tmp_path, cli):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    code, _, err = cli("train", "--task", "ring8", "--out", str(tmp_path / "mine"), "--steps", "5")
    assert code == 2 and "refusing to overwrite" in err
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_corrupt_checkpoint_leaves_output_untouched(ring_model, tmp_path, cli):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(ring_model, bad)
    (bad / "network.safetensors").write_bytes(b"\x00" * 10)
    (tmp_path / "s.npz").write_bytes(b"old")
    code, _, err = cli("sample", str(bad), "--out", str(tmp_path / "s.npz"))
    assert code == 2 and "corrupt" in err
    assert (tmp_path / "s.npz").read_bytes() == b"old"


def test_retrain_gold_standard_never_generates_forgotten_modes(tmp_path, cli):
    code, out, _ = cli(
        "train", "--task", "ring8", "--forget", "classes=0,1", "--out", str(tmp_path / "rt"), "--steps", "400"
    )
    assert code == 0 and "retrain model" in out
    code, out, _ = cli("evaluate", str(tmp_path / "rt"), "--forget", "classes=0,1", "--n-per-prompt", "20")
    metrics = json.loads((tmp_path / "rt" / "metrics.json").read_text())
    assert metrics["forget_mass"] < 0.05 and metrics["forget"] == "classes=0,1"


def test_methods_lists_the_catalogue_without_torch():
    code = "import sys; from genunlearn.cli import main\ntry: main(['methods'])\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == "False"  # the catalogue, not the registry: no method (nor torch) is imported
    assert any(line.split()[:2] == ["continualflow", "generative"] and "energy, classes" in line for line in lines)
    from genunlearn.catalogue import CATALOGUE

    assert len(lines) - 1 == len(CATALOGUE)


def test_data_shows_ids_counts_and_fingerprint(tmp_path, cli):
    from PIL import Image

    from genunlearn.data.fingerprint import task_fingerprint

    code, out, _ = cli("data", "digits")
    assert code == 0 and "1×8×8" in out and "1347 train, 450 test" in out and task_fingerprint("digits") in out
    assert [line.split()[:4] for line in out.splitlines() if line.split()[:2] == ["3", "3"]] == [
        ["3", "3", "137", "46"]
    ]
    for name, n in (("nine", 3), ("eight", 2), ("zero", 4)):  # ids are alphabetical: eight 0, nine 1, zero 2
        (tmp_path / "named" / name).mkdir(parents=True)
        for i in range(n):
            Image.new("L", (8, 8), 30 * i).save(tmp_path / "named" / name / f"{i}.png")
    code, out, _ = cli("data", str(tmp_path / "named"))
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["0"], ["1"], ["2"])]
    assert code == 0 and [r[:2] for r in rows] == [["0", "eight"], ["1", "nine"], ["2", "zero"]]
    assert [int(r[2]) + int(r[3]) for r in rows] == [2, 3, 4]
    code, _, err = cli("data", str(tmp_path / "missing"))
    assert code == 2 and err.count("\n") == 1 and err.startswith("error:")


def test_choices_spelled_out_in_the_cli_match_the_library():
    """``--probe`` and ``--network`` choices are written out (so ``--help`` imports no torch); they must not drift."""
    from genunlearn import cli as cli_module
    from genunlearn.eval.probes import PROBES
    from genunlearn.generative.recipes import NETWORKS

    assert tuple(cli_module.PROBES) == tuple(PROBES)
    assert tuple(cli_module.NETWORKS) == tuple(NETWORKS)


def test_several_processes_are_described_by_how_the_method_ran(monkeypatch, capsys):
    """Under several processes the CLI says why the weights may differ from a one-process run:
    averaged gradients of bigger batches for training methods, nothing of the kind for the
    closed-form edits (uce, rece), which draw no batches."""
    from types import SimpleNamespace

    from genunlearn.cli import _check_ranks
    from genunlearn.methods import method_class

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    for trained in (True, False):
        model = SimpleNamespace(net=torch.nn.Linear(2, 2), info={})
        _check_ranks(model, trained=trained)
        assert model.info["processes"] == 2
        line = capsys.readouterr().out
        assert (
            line.startswith("2 processes agree on the result")
            and (("effective batch 2× larger" in line) == trained)
            and (("no batches drawn" in line) != trained)
        )
    assert method_class("uce").closed_form and method_class("rece").closed_form and not method_class("esd").closed_form
