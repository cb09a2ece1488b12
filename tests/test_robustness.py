"""Nothing silently wrong, nothing lost (issue 15): caches keyed by the data's content, saves that
never leave the path without a complete model, user files kept, resume, and bad input."""

import json
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from genunlearn.io.weights import MANIFEST, atomic_dir, read_config
from genunlearn.errors import GenUnlearnError

STEPS = ["--steps", "3"]


def npz(path, classes: int, n_per: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per)
    np.savez(path, images=rng.integers(0, 255, (len(labels), 8, 8), dtype=np.uint8), labels=labels)
    return path


def snapshot(root):
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in files + dirs:
            p = os.path.join(dirpath, name)
            out[p] = (
                open(p, "rb").read()
                if os.path.isfile(p) and not os.path.islink(p)
                else os.readlink(p)
                if os.path.islink(p)
                else "<dir>"
            )
    return out


# --- caches: keyed by the data's content -----------------------------------------------------------
def test_same_path_different_data_is_not_served_from_cache(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    npz(tmp_path / "folder.npz", classes=4)
    code, _, err = cli("train", "--task", "folder.npz", "--out", "m1", *STEPS)
    assert code == 0, err
    npz(tmp_path / "folder.npz", classes=3, seed=1)  # other data, same path
    code, _, err = cli("train", "--task", "folder.npz", "--out", "m2", *STEPS)
    assert code == 0, err
    c1, c2 = read_config(tmp_path / "m1"), read_config(tmp_path / "m2")
    assert len(c2["data"]["attributes"][0]["values"]) == 3  # old code: the cached 4-class model
    assert c1["info"]["key"] != c2["info"]["key"]
    # the model records the absolute path and the fingerprint; using m1 now names the change
    assert c1["info"]["task"] == str(tmp_path / "folder.npz") and c1["info"]["data_fingerprint"]
    code, _, err = cli("unlearn", "m1", "--method", "finetune", "--forget", "classes=1", "--out", "u", *STEPS)
    assert code == 2 and "changed since this model was trained" in err and err.count("\n") == 1
    assert not (tmp_path / "u").exists()


def test_model_works_from_another_directory(tmp_path, cli, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    npz(tmp_path / "a" / "data.npz", classes=3)
    assert cli("train", "--task", "data.npz", "--out", "m", *STEPS)[0] == 0
    monkeypatch.chdir(tmp_path / "b")
    code, _, err = cli(
        "unlearn", str(tmp_path / "a" / "m"), "--method", "finetune", "--forget", "classes=1", "--out", "u", *STEPS
    )
    assert code == 0, err  # old code: "unknown task 'data.npz'" from any other directory


def test_copied_cache_entry_is_rebuilt_not_served(tmp_path, capsys):
    import shutil

    from genunlearn.io.cache import cache_root
    from genunlearn.generative.recipes import TrainJob, train_cached

    a = train_cached(TrainJob("moons", "flow", steps=3), progress=False)
    b_job = TrainJob("circles", "flow", steps=3)
    folder = cache_root() / "models" / b_job.key()
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(cache_root() / "models" / a.info["key"], folder)  # moons' model under circles' key
    b = train_cached(b_job, progress=False)
    assert b.info["task"] == "circles" and b.info["key"] == b_job.key()
    assert "does not match" in capsys.readouterr().err


def test_judge_entry_from_other_data_is_rebuilt(tmp_path, monkeypatch):
    from genunlearn.io.cache import read_entry, store_network
    from genunlearn.models import build_network

    net = build_network({"_class_name": "MLPClassifier", "dim": 2, "hidden": 4, "depth": 1, "heads": [2]})
    store_network(tmp_path / "j", "judge", net, key="k1", data={"source": "x", "fingerprint": "aaaa"})
    assert read_entry(tmp_path / "j", "judge", "k1", {"source": "x", "fingerprint": "aaaa"}) is not None
    assert read_entry(tmp_path / "j", "judge", "k1", {"source": "x", "fingerprint": "bbbb"}) is None
    assert read_entry(tmp_path / "j", "judge", "k2", {"source": "x", "fingerprint": "aaaa"}) is None


# --- saves: atomic, the user's files kept, symlinks followed, umask honoured --------------------------
def _save(path, payload: str):
    with atomic_dir(path) as tmp:
        (tmp / "config.json").write_text(payload)
        (tmp / "network.safetensors").write_text(payload)


def test_save_keeps_the_users_files_and_says_which(tmp_path, capsys):
    m = tmp_path / "m"
    _save(m, "v1")
    (m / "notes.txt").write_text("mine")
    (m / "metrics.json").write_text("{}")
    (m / "sub").mkdir()
    (m / "sub" / "x").write_text("deep")
    _save(m, "v2")
    assert (m / "config.json").read_text() == "v2" and (m / "network.safetensors").read_text() == "v2"
    assert (
        (m / "notes.txt").read_text() == "mine"
        and (m / "sub" / "x").read_text() == "deep"
        and (m / "metrics.json").exists()
    )
    err = capsys.readouterr().err
    assert "kept yours" in err and "notes.txt" in err and "sub/" in err
    assert set(json.loads((m / MANIFEST).read_text())["files"]) == {"config.json", "network.safetensors"}


@pytest.mark.parametrize("step", ["tmp", "written", "carried", "swapped"])
def test_kill_at_each_step_of_a_save_leaves_a_complete_model(tmp_path, step):
    m = tmp_path / "m"
    _save(m, "old")
    (m / "notes.txt").write_text("mine")
    code = textwrap.dedent(f"""
        import os, signal
        import genunlearn.io.weights as weights
        weights.save_step = lambda at, target: at == {step!r} and os.kill(os.getpid(), signal.SIGKILL)
        with weights.atomic_dir({str(m)!r}) as tmp:
            (tmp / "config.json").write_text("new")
            (tmp / "network.safetensors").write_text("new")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert r.returncode == -9
    v = (m / "config.json").read_text()
    assert v in ("old", "new") and (m / "network.safetensors").read_text() == v  # never a mix, never nothing
    assert (m / "notes.txt").read_text() == "mine"
    assert v == ("new" if step == "swapped" else "old")
    _save(m, "again")  # the next save cleans what the killed one left
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_two_writers_to_one_folder(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from genunlearn.io.weights import atomic_dir
        for i in range(20):
            with atomic_dir({str(tmp_path / "m")!r}) as tmp:
                (tmp / "config.json").write_text(sys.argv[1] + str(i))
                (tmp / "network.safetensors").write_text(sys.argv[1] + str(i))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, w], stderr=subprocess.PIPE) for w in "ab"]
    assert all(p.wait() == 0 for p in procs), [p.stderr.read() for p in procs]
    m = tmp_path / "m"
    assert (m / "config.json").read_text() == (m / "network.safetensors").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_symlinked_out_is_followed_and_umask_honoured(tmp_path):
    real = tmp_path / "disk" / "model"
    (tmp_path / "disk").mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)  # dangling until the first save
    old = os.umask(0o027)
    try:
        _save(link, "v1")
        _save(link, "v2")
    finally:
        os.umask(old)
    assert link.is_symlink() and (real / "config.json").read_text() == "v2"
    assert stat.S_IMODE(real.stat().st_mode) == 0o750
    assert stat.S_IMODE((real / MANIFEST).stat().st_mode) == 0o640


def test_safetensors_and_subfolders_of_a_save_follow_the_umask(tmp_path):
    """safetensors' save_file creates 0600 files; a save gives them (and nested component folders,
    as a diffusers pipeline has) what the user's umask says."""
    from genunlearn.io.weights import save_tensors

    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "m") as tmp:
            (tmp / "unet").mkdir()
            save_tensors(tmp / "unet" / "weights.safetensors", {"w": torch.zeros(2)})
        save_tensors(tmp_path / "alone.safetensors", {"w": torch.zeros(2)})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m" / "unet").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "m" / "unet" / "weights.safetensors").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "alone.safetensors").stat().st_mode) == 0o644


# --- resume ---------------------------------------------------------------------------------------
def _tiny_objective(seed=0):
    from genunlearn.training import TrainConfig

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    x = torch.randn(64, 2)

    def loss(model, g):
        idx = torch.randint(64, (16,), generator=g)
        return (model(x[idx] + 0.1 * torch.randn(16, 2, generator=g)) ** 2).mean()

    return net, loss, TrainConfig(steps=30, lr=1e-2, seed=3, ema_decay=0.9, log_every=5)


def test_interrupted_training_resumes_bit_identically_by_default(tmp_path, monkeypatch, capsys):
    from genunlearn.training import train

    monkeypatch.setenv("GENUNLEARN_CHECKPOINT_SECONDS", "1e-9")  # a checkpoint after every step
    net, loss, cfg = _tiny_objective()
    train(net, loss, cfg, progress=False)
    reference = {k: v.clone() for k, v in net.state_dict().items()}

    class Killed(Exception):
        pass

    def die(step, _):
        if step == 15:
            raise Killed

    net, loss, cfg = _tiny_objective()
    with pytest.raises(Killed):
        train(net, loss, cfg, out_dir=tmp_path / "w", resume=True, progress=False, callbacks=(die,))
    assert (tmp_path / "w" / "checkpoint" / "state.json").is_file()
    net, loss, cfg = _tiny_objective()
    train(net, loss, cfg, out_dir=tmp_path / "w", resume=True, progress=False)
    assert (
        "resuming train from its checkpoint at step 14/30"
    )  # the kill came before step 15 was saved in capsys.readouterr().err
    assert all(torch.equal(reference[k], v) for k, v in net.state_dict().items())


def test_corrupt_checkpoint_starts_fresh_and_says_why(tmp_path, monkeypatch, capsys):
    from genunlearn.training import train

    net, loss, cfg = _tiny_objective()
    train(net, loss, cfg, progress=False)
    reference = {k: v.clone() for k, v in net.state_dict().items()}
    ckpt = tmp_path / "w" / "checkpoint"
    ckpt.mkdir(parents=True)
    (ckpt / "state.json").write_text("{trunc")
    net, loss, cfg = _tiny_objective()
    train(net, loss, cfg, out_dir=tmp_path / "w", resume=True, progress=False)
    err = capsys.readouterr().err
    assert "cannot resume" in err and "state.json unreadable" in err and "starting fresh" in err
    assert all(torch.equal(reference[k], v) for k, v in net.state_dict().items())


def test_interrupted_run_resumes_inside_resumable_run(tmp_path, monkeypatch, capsys):
    """What `genunlearn unlearn` wraps its method in: each training call gets its own checkpoint
    folder keyed by the input model's content, so a rerun resumes (the SIGKILL version of this,
    through the CLI, is in tests/test_robustness_slow.py)."""
    from genunlearn.io.cache import cache_root
    from genunlearn.training import train
    from genunlearn.training.loop import resumable_run

    monkeypatch.setenv("GENUNLEARN_CHECKPOINT_SECONDS", "1e-9")
    _save(tmp_path / "model", "weights")

    def run(callbacks=()):
        first, _, _ = _tiny_objective(1)
        net, loss, cfg = _tiny_objective()
        with resumable_run("unlearn", tmp_path / "model", "finetune", {"lr": 1}, "classes=0", None) as folder:
            # an earlier call in the same run (redone: deterministic)
            train(first, loss, cfg, progress=False, callbacks=(folder,))
            train(net, loss, cfg, progress=False, callbacks=(*callbacks, folder))
        return net

    reference = run().state_dict()
    capsys.readouterr()

    class Killed(Exception):
        pass

    def die(step, _):
        if step == 20:
            raise Killed

    with pytest.raises(Killed):
        run((die,))
    net = run()
    assert "resuming train from its checkpoint at step 19/30" in capsys.readouterr().err
    assert all(torch.equal(reference[k], v) for k, v in net.state_dict().items())
    assert not any((cache_root() / "work").glob("unlearn-*"))  # removed once the run ended well


# --- bad input: one line, before any work, nothing changed ----------------------------------------
@pytest.fixture(scope="module")
def moons(tmp_path_factory):
    from genunlearn.cli import main

    out = tmp_path_factory.mktemp("m") / "moons"
    with pytest.raises(SystemExit) as e:
        main(["train", "--task", "moons", "--out", str(out), "--steps", "3"])
        raise SystemExit(0)
    assert e.value.code == 0
    return out


BAD = [
    (["sample", "{m}", "--out", "{t}/s.npz", "--steps", "0"], "--steps must be between 1"),
    (["sample", "{m}", "--out", "{t}/s.npz", "--steps", "-1"], "--steps must be between 1"),
    (["sample", "{m}", "--out", "{t}/s.npz", "--guidance", "nan"], "--guidance must be a finite number"),
    (["sample", "{m}", "--out", "{t}/s.npz", "--n", "1000000000000"], "--n must be between 1 and"),
    (["sample", "{m}", "--out", "{t}/s.npz", "--n", "abc"], "'abc' is not a valid integer"),
    (["sample", "{m}", "--out", "{t}/dir.npz"], "is a folder"),
    (["sample", "{m}", "--out", "{t}/file/s.npz"], "is a file, not a folder"),
    (
        ["unlearn", "{m}", "--method", "finetune", "--forget", "classes=0", "--out", "{t}/u", "--steps", "0"],
        "--steps must be between 1",
    ),
    (
        ["unlearn", "{m}", "--method", "finetune", "--forget", "classes=0", "--out", "{t}/u", "--set", "lr=nan"],
        "not a finite number",
    ),
    (
        ["unlearn", "{m}", "--method", "finetune", "--forget", "classes=0", "--out", "{t}/file"],
        "exists and is not a folder",
    ),
    (["evaluate", "{m}", "--n-per-prompt", "0"], "--n-per-prompt must be between 1"),
    (["train", "--task", "moons", "--out", "{t}/x", "--seed", "-1"], "--seed must be between 0"),
    (["train", "--task", "{t}/empty.npz", "--out", "{t}/x"], "cannot read as .npz"),
    (["train", "--task", "{t}/one.npz", "--out", "{t}/x"], "at least 2 are needed"),
    (["train", "--task", "moons", "--out", "{t}/x", "--model", "gan"], "'gan' is not one of"),
    (["report", "{t}/runs"], "corrupt metrics file"),
    (["bench", "--out", "{t}/file"], "exists and is not a folder"),
    (["bench", "--out", "{t}/home"], "is not a genunlearn run"),
    (["demo", "--out", "{t}/file"], "exists and is not a folder"),
]


@pytest.mark.parametrize("args,match", BAD, ids=[" ".join(a[:1] + a[3:5]) for a, _ in BAD])
def test_bad_input_one_line_before_work_nothing_changed(moons, tmp_path, cli, args, match, monkeypatch):
    import genunlearn.training.loop as loop

    (tmp_path / "dir.npz").mkdir()
    (tmp_path / "file").write_text("keep")
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("precious")
    np.savez(tmp_path / "one.npz", images=np.zeros((1, 8, 8), np.uint8), labels=np.array([0]))
    (tmp_path / "runs" / "moons" / "base").mkdir(parents=True)
    (tmp_path / "runs" / "moons" / "base" / "metrics.json").write_text('{"forget_mass": 0.1, "seco')
    before, model_before = snapshot(tmp_path), snapshot(moons)

    def no_work(*a, **k):
        raise AssertionError("work started before the input was checked")

    monkeypatch.setattr(loop, "train_objectives", no_work)
    code, _, err = cli(*[a.format(m=moons, t=tmp_path) for a in args])
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and match in err, err
    assert snapshot(tmp_path) == before and snapshot(moons) == model_before


@pytest.mark.parametrize(
    "method, values, message",
    [
        ("continualflow", {"tau_c": 1.0}, "continualflow: tau_c must satisfy 0 <= tau_c < 1, got 1.0"),
        ("continualflow", {"lam": 0}, "continualflow: lam must satisfy 0 < lam, got 0.0"),
        ("salun", {"batch_size": 0}, "salun: batch_size must satisfy 1 <= batch_size, got 0"),
        ("sfd", {"lr_gen": -1}, "sfd: lr_gen must satisfy 0 < lr_gen, got -1.0"),
    ],
)
def test_method_bounds_name_the_value_and_range(method, values, message):
    from genunlearn.methods import get_method

    with pytest.raises(GenUnlearnError) as e:
        get_method(method, values, family="generative")
    assert str(e.value) == message


def test_weight_mismatch_names_what_differs(tmp_path):
    from genunlearn.generative.model import GenerativeModel
    from genunlearn.models.mlp import MLPNet
    from genunlearn.processes.flow_matching import FlowMatching

    meta = {"name": "ring8", "kind": "points", "sample_shape": [2], "attributes": [{"name": "class", "values": ["a"]}]}
    GenerativeModel(MLPNet(dim=2, hidden=8, depth=1), FlowMatching(), meta, {}).save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["network"]["hidden"] = 16
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        GenUnlearnError,
        match=r"network.safetensors does not fit the MLPNet in config.json: .*of another shape \(e.g. .*: file \(8",
    ):
        GenerativeModel.from_pretrained(tmp_path / "m")
