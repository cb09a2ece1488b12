"""Robustness, the slow checks (``python -m pytest -m slow tests/test_robustness_slow.py``, or run
this file: it prints every case): bad input across every command, and runs killed at random.

Part 1, the catalogue: every command fed bad input (numbers out of range, NaN, corrupt and tiny
data, corrupt model folders and reports, unwritable or wrong-kind outputs, bad forget specs and
options). Each case runs in-process through ``genunlearn.cli.main`` in a sandbox with tiny models;
any training, sampling, evaluation or benchmark cell that starts counts as work started. Printed:
tried / one-line errors / tracebacks / accepted silently / files changed (the sandbox, cache
included, is compared byte for byte before and after every case).

Part 2, kill tests: a training (``genunlearn train``) and an unlearning run (``genunlearn unlearn``),
on moons (a flow model) and on a Stable-Diffusion-layout pipeline (``--model sd``, then ESD), each
writing to a path that already holds an earlier model, are SIGKILLed at 5 random steps, once while a
resume checkpoint is being written, and at each step of the final save to the path; each time the
same command is rerun. After every kill the path must hold a loadable model (the earlier one, or the
new one), and the final weights must be bit-identical to an uninterrupted run's.

    python tests/test_robustness_slow.py [--only catalogue|kills|sd-kills] [--seed 0] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import pytest


# --- part 1: the catalogue ------------------------------------------------------------------------
class WorkStarted(Exception):
    """Raised where real work would begin: the input got past the checks."""


def _snapshot(root: Path) -> dict:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in files + dirs:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                out[p] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[p] = ("dir", os.stat(p).st_mode)
            else:
                with open(p, "rb") as f:
                    out[p] = ("file", f.read())
    return out


def _cli(argv, main_mod) -> tuple[int | None, str, str, str | None]:
    """(exit code, stdout, stderr, traceback text if an exception escaped)."""
    out, err = io.StringIO(), io.StringIO()
    code, tb = None, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main_mod.main(list(argv))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except WorkStarted:
            code = "work"
        except BaseException:  # noqa: BLE001 - counted, not hidden
            tb = traceback.format_exc()
    return code, out.getvalue(), err.getvalue(), tb


def _make_sandbox(root: Path) -> dict:
    """Tiny models and data, built with the real commands (before the work sentinels go in)."""
    from genunlearn.cli import main

    def run(*a):
        code, out, err, tb = _cli(a, sys.modules["genunlearn.cli"])
        if code != 0:
            raise SystemExit(f"sandbox setup failed: genunlearn {' '.join(a)}\n{err}{tb or ''}")

    m = {
        "flow": root / "flow",
        "diff": root / "diff",
        "clf": root / "clf",
        "i2i": root / "i2i",
        "shapes": root / "shapes",
    }
    run("train", "--task", "moons", "--out", str(m["flow"]), "--steps", "3")
    run("train", "--task", "digits", "--model", "diffusion", "--out", str(m["diff"]), "--steps", "3")
    run("train", "--task", "digits", "--model", "classifier", "--out", str(m["clf"]), "--steps", "1")
    run("train", "--task", "digits", "--model", "i2i", "--out", str(m["i2i"]), "--steps", "3")
    run("train", "--task", "shapes", "--model", "diffusion", "--out", str(m["shapes"]), "--steps", "2")
    del main
    d = root / "data"
    d.mkdir()
    rng = np.random.default_rng(0)
    good = rng.integers(0, 255, (12, 8, 8), dtype=np.uint8)
    labels = np.arange(12) % 3
    np.savez(d / "good.npz", images=good, labels=labels)
    (d / "empty.npz").write_bytes(b"")
    raw = (d / "good.npz").read_bytes()
    (d / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    (d / "garbage.npz").write_bytes(b"PK\x03\x04" + os.urandom(64))
    np.save(d / "array.npy", good)
    os.replace(d / "array.npy", d / "array.npz")
    np.savez(d / "one.npz", images=good[:1], labels=labels[:1])
    np.savez(d / "zero.npz", images=good[:0], labels=labels[:0])
    np.savez(d / "nolabels.npz", images=good)
    np.savez(d / "badlabels.npz", images=good, labels=-labels - 1)
    np.savez(d / "shortlabels.npz", images=good, labels=labels[:5])
    np.savez(d / "floatlabels.npz", images=good, labels=labels + 0.5)
    np.savez(d / "nan.npz", images=np.full((12, 8, 8), np.nan, np.float32), labels=labels)
    np.savez(d / "range.npz", images=np.full((12, 8, 8), 3.0, np.float32), labels=labels)
    np.savez(d / "strings.npz", images=np.array([["a"] * 8] * 12), labels=labels)
    np.savez(d / "channels.npz", images=rng.integers(0, 255, (12, 8, 8, 5), dtype=np.uint8), labels=labels)
    np.savez(d / "points.npz", samples=rng.normal(size=(12, 3)), labels=labels)
    np.savez(d / "nanpoints.npz", samples=np.full((12, 2), np.nan), labels=labels)
    np.savez(d / "names.npz", images=good, labels=labels, class_names=np.array(["a"]))
    np.savez(d / "flat.npz", images=rng.integers(0, 255, (12, 64), dtype=np.uint8), labels=labels)
    (d / "nofolders").mkdir()
    (d / "nofolders" / "x.png").write_bytes(b"\x89PNG")
    (d / "emptyclass" / "a").mkdir(parents=True)
    (d / "badimage" / "a").mkdir(parents=True)
    (d / "badimage" / "a" / "x.png").write_bytes(b"not a png")
    from PIL import Image

    (d / "sizes" / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(d / "sizes" / "a" / "1.png")
    Image.new("RGB", (9, 9)).save(d / "sizes" / "a" / "2.png")
    (d / "oneimage" / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(d / "oneimage" / "a" / "1.png")

    # outputs of the wrong kind
    o = root / "out"
    o.mkdir()
    (o / "file").write_text("keep")
    (o / "dir.npz").mkdir()
    (o / "foreign").mkdir()
    (o / "foreign" / "thesis.tex").write_text("precious")
    (o / "readonly").mkdir()
    (o / "dangling").symlink_to(root / "missing" / "deeper" / "x")
    (o / "dangling.npz").symlink_to(root / "missing" / "deeper" / "x.npz")
    immutable = subprocess.run(["chattr", "+i", str(o / "readonly")], capture_output=True).returncode == 0
    # broken model folders (copies of the flow model)
    b = root / "broken"
    b.mkdir()

    def broken(name, mutate):
        shutil.copytree(m["flow"], b / name)
        mutate(b / name)
        return b / name

    def cfg_edit(fn):
        def mutate(p):
            cfg = json.loads((p / "config.json").read_text())
            fn(cfg)
            (p / "config.json").write_text(json.dumps(cfg))

        return mutate

    import pickle

    bm = {
        "nocfg": broken("nocfg", lambda p: (p / "config.json").unlink()),
        "badjson": broken("badjson", lambda p: (p / "config.json").write_text("{oops")),
        "emptycfg": broken("emptycfg", lambda p: (p / "config.json").write_text("")),
        "listcfg": broken("listcfg", lambda p: (p / "config.json").write_text("[1, 2]")),
        "foreign": broken("foreign", lambda p: (p / "config.json").write_text('{"_class_name": "UNet2DModel"}')),
        "newer": broken("newer", cfg_edit(lambda c: c.update(format_version=99))),
        "kind": broken("kind", cfg_edit(lambda c: c.update(kind="toaster"))),
        "nonet": broken("nonet", cfg_edit(lambda c: c.pop("network"))),
        "nodata": broken("nodata", cfg_edit(lambda c: c.pop("data"))),
        "noproc": broken("noproc", cfg_edit(lambda c: c.pop("process"))),
        "negsize": broken("negsize", cfg_edit(lambda c: c["network"].update(hidden=-4))),
        "zerosize": broken("zerosize", cfg_edit(lambda c: c["network"].update(hidden=0))),
        "strsize": broken("strsize", cfg_edit(lambda c: c["network"].update(hidden="wide"))),
        "netclass": broken("netclass", cfg_edit(lambda c: c["network"].update(_class_name="Transformer"))),
        "extraarg": broken("extraarg", cfg_edit(lambda c: c["network"].update(colour="red"))),
        "solver": broken("solver", cfg_edit(lambda c: c["process"].update(solver="rk99"))),
        "procname": broken("procname", cfg_edit(lambda c: c["process"].update(name="gan"))),
        "zerosteps": broken("zerosteps", cfg_edit(lambda c: c["process"].update(steps=0))),
        "negsteps": broken("negsteps", cfg_edit(lambda c: c["process"].update(steps=-3))),
        "nanguid": broken("nanguid", cfg_edit(lambda c: c["process"].update(guidance=float("nan")))),
        "nosamples": broken("nosamples", cfg_edit(lambda c: c["data"].update(sample_shape=[]))),
        "otherdata": broken("otherdata", cfg_edit(lambda c: c["info"].update(task=str(d / "good.npz")))),
        "gonedata": broken("gonedata", cfg_edit(lambda c: c["info"].update(task=str(root / "gone.npz")))),
        "fingerprint": broken("fingerprint", cfg_edit(lambda c: c["info"].update(data_fingerprint="0000000000000000"))),
        "noweights": broken("noweights", lambda p: (p / "network.safetensors").unlink()),
        "truncw": broken(
            "truncw", lambda p: (p / "network.safetensors").write_bytes((p / "network.safetensors").read_bytes()[:100])
        ),
        "emptyw": broken("emptyw", lambda p: (p / "network.safetensors").write_bytes(b"")),
        "pickle": broken("pickle", lambda p: (p / "network.safetensors").write_bytes(pickle.dumps({"w": 1}))),
        "wrongw": broken("wrongw", cfg_edit(lambda c: c["network"].update(hidden=32))),
        "dirw": broken("dirw", lambda p: ((p / "network.safetensors").unlink(), (p / "network.safetensors").mkdir())),
    }
    # reports
    r = root / "reports"

    def report(name, files: dict):
        cell = r / name / "moons" / "base"
        cell.mkdir(parents=True)
        for fname, content in files.items():
            (cell / fname).write_bytes(content if isinstance(content, bytes) else content.encode())
        return r / name

    rep = {
        "corrupt": report("corrupt", {"metrics.json": '{"forget_mass": 0.1, "sec'}),
        "empty": report("empty", {"metrics.json": ""}),
        "list": report("list", {"metrics.json": "[1]"}),
        "strsec": report("strsec", {"metrics.json": '{"forget_mass": 0.1, "seconds": "fast"}'}),
        "nan": report("nan", {"metrics.json": '{"forget_mass": NaN, "seconds": 1}'}),
        "negsec": report("negsec", {"metrics.json": '{"forget_mass": 0.1, "seconds": -1}'}),
        "badnpz": report("badnpz", {"metrics.json": '{"forget_mass": 0.1, "seconds": 1}', "samples.npz": b"garbage"}),
        "emptynpz": report("emptynpz", {"metrics.json": '{"forget_mass": 0.1, "seconds": 1}', "samples.npz": b""}),
    }
    buf = io.BytesIO()
    np.savez(buf, samples=np.zeros((4, 3)))
    rep["shapenpz"] = report(
        "shapenpz", {"metrics.json": '{"forget_mass": 0.1, "seconds": 1}', "samples.npz": buf.getvalue()}
    )
    buf = io.BytesIO()
    np.savez(buf, other=np.zeros(3))
    rep["keysnpz"] = report(
        "keysnpz", {"metrics.json": '{"forget_mass": 0.1, "seconds": 1}', "samples.npz": buf.getvalue()}
    )
    buf = io.BytesIO()
    np.savez(buf, images=np.zeros((4, 8, 8, 3), np.float64))
    rep["dtypenpz"] = report(
        "dtypenpz", {"metrics.json": '{"forget_mass": 0.1, "seconds": 1}', "samples.npz": buf.getvalue()}
    )
    (root / "configs").mkdir()
    (root / "configs" / "bad.toml").write_text("lr = [")
    (root / "configs" / "bad.yaml").write_text("lr: [")
    (root / "configs" / "list.yaml").write_text("- 1\n- 2\n")
    (root / "configs" / "opts.txt").write_text("lr=1")
    (root / "configs" / "unknown.toml").write_text("speed = 9\n")
    (root / "configs" / "nan.toml").write_text("lr = nan\n")
    (root / "configs" / "type.toml").write_text('lr = "fast"\n')
    return {"m": m, "d": d, "o": o, "b": bm, "r": rep, "c": root / "configs", "immutable": immutable, "root": root}


def catalogue(s: dict) -> list[list[str]]:
    m, d, o, b, r, c = s["m"], s["d"], s["o"], s["b"], s["r"], s["c"]
    F, D, IM, CL, SH = str(m["flow"]), str(m["diff"]), str(m["i2i"]), str(m["clf"]), str(m["shapes"])
    new = str(o / "new")
    npz = str(o / "s.npz")
    cases = []
    # train ------------------------------------------------------------------------------------
    for task in [
        "mnist",
        "",
        str(d / "missing.npz"),
        str(d / "empty.npz"),
        str(d / "truncated.npz"),
        str(d / "garbage.npz"),
        str(d / "array.npz"),
        str(d / "one.npz"),
        str(d / "zero.npz"),
        str(d / "nolabels.npz"),
        str(d / "badlabels.npz"),
        str(d / "shortlabels.npz"),
        str(d / "floatlabels.npz"),
        str(d / "nan.npz"),
        str(d / "range.npz"),
        str(d / "strings.npz"),
        str(d / "channels.npz"),
        str(d / "points.npz"),
        str(d / "nanpoints.npz"),
        str(d / "names.npz"),
        str(d / "flat.npz"),
        str(d / "nofolders"),
        str(d / "emptyclass"),
        str(d / "badimage"),
        str(d / "sizes"),
        str(d / "oneimage"),
    ]:
        cases.append(["train", "--task", task, "--out", new, "--steps", "2"])
    for steps in ["0", "-1", "abc", "1.5", str(2**40)]:
        cases.append(["train", "--task", "moons", "--out", new, "--steps", steps])
    for seed in ["-1", str(2**40), "x"]:
        cases.append(["train", "--task", "moons", "--out", new, "--seed", seed])
    for spec in [
        "clases=1",
        "classes=",
        "classes=99",
        "classes=0,1",
        "samples=abc",
        "samples=-1",
        "samples=999999",
        "concept=ring",
        "anchor=shape",
        "energy=nowhere",
        "=",
        ";",
        "classes=zebra",
    ]:
        cases.append(["train", "--task", "moons", "--out", new, "--forget", spec, "--steps", "2"])
    cases += [
        ["train", "--task", "moons", "--out", new, "--model", "gan"],
        ["train", "--task", "moons"],
        ["train", "--out", new],
        ["train", "--task", "moons", "--out", new, "--unconditional", "--model", "classifier"],
        ["train", "--task", "moons", "--model", "i2i", "--out", new, "--steps", "2"],
        ["train", "--task", "moons", "--model", "classifier", "--out", new, "--steps", "2"],
    ]
    for out in [o / "file", o / "foreign", o / "file" / "sub", o / "dangling", Path("/proc/genunlearn-x")] + (
        [o / "readonly" / "m"] if s["immutable"] else []
    ):
        cases.append(["train", "--task", "moons", "--out", str(out), "--steps", "2"])
    # sample -----------------------------------------------------------------------------------
    for n in ["0", "-5", "abc", str(10**12), str(10**8)]:
        cases.append(["sample", F, "--n", n, "--out", npz])
    for steps in ["0", "-1", "x"]:
        cases.append(["sample", F, "--steps", steps, "--out", npz])
    for g in ["nan", "inf", "-inf", "x"]:
        cases.append(["sample", D, "--guidance", g, "--out", npz])
    cases += [
        ["sample", D, "--labels", "99", "--out", npz],
        ["sample", D, "--labels", "zebra", "--out", npz],
        ["sample", D, "--labels", ",", "--out", npz],
        ["sample", F, "--labels", "1", "--out", npz],
        ["sample", F, "--prompt", "a red circle", "--out", npz],
        ["sample", SH, "--prompt", "a plaid hexagon", "--out", npz],
        ["sample", D, "--prompt", "3", "--labels", "3", "--out", npz],
        ["sample", F, "--mask", "inpaint", "--out", npz],
        ["sample", IM, "--prompt", "x", "--out", npz],
        ["sample", CL, "--out", npz],
        ["sample", F, "--seed", "-3", "--out", npz],
        ["sample", F, "--out", str(o / "s.txt")],
        ["sample", F, "--out", str(o / "dir.npz")],
        ["sample", F, "--out", str(o / "file" / "s.npz")],
        ["sample", F, "--out", str(o / "dangling.npz")],
        ["sample", F],
        ["sample", "--out", npz],
        ["sample", F, "--out", "/proc/genunlearn.npz"],
        ["sample", F, "--mask", "sideways", "--out", npz],
    ]
    if s["immutable"]:
        cases.append(["sample", F, "--out", str(o / "readonly" / "s.npz")])
    for name, path in b.items():
        if name not in ("otherdata", "gonedata", "fingerprint"):  # sampling does not read the training data
            cases.append(["sample", str(path), "--n", "4", "--out", npz])
    cases += [
        ["sample", str(o / "file"), "--out", npz],
        ["sample", str(o / "nothing"), "--out", npz],
        ["sample", str(o / "foreign"), "--out", npz],
    ]
    # evaluate ---------------------------------------------------------------------------------
    for n in ["0", "-1", "x"]:
        cases.append(["evaluate", F, "--n-per-prompt", n])
    for spec in ["classes=99", "clases=0", "samples=99999", "concept=zebra;anchor=shape"]:
        cases.append(["evaluate", F, "--forget", spec])
    for name in ["negsize", "solver", "zerosteps", "otherdata", "gonedata", "fingerprint", "wrongw", "pickle", "kind"]:
        cases.append(["evaluate", str(b[name]), "--forget", "classes=0"])
    cases += [
        ["evaluate", F, "--out", str(o / "dir.npz")],
        ["evaluate", F, "--out", str(o / "file" / "m.json")],
        ["evaluate", F, "--reference", str(o / "nothing")],
        ["evaluate", F, "--reference", CL],
        ["evaluate", F, "--seed", "-1"],
        ["evaluate", SH, "--forget", "concept=plaid;anchor=shape"],
        ["evaluate", CL, "--forget", "concept=circle;anchor=shape"],
    ]
    # unlearn ----------------------------------------------------------------------------------
    U = ["unlearn", F, "--forget", "classes=0", "--out", new]
    cases += [
        U + ["--method", "magic"],
        U + ["--method", "finetune", "--steps", "0"],
        U + ["--method", "finetune", "--steps", "-2"],
        U + ["--method", "finetune", "--set", "speed=9"],
        U + ["--method", "finetune", "--set", "lr=nan"],
        U + ["--method", "finetune", "--set", "lr=inf"],
        U + ["--method", "finetune", "--set", "lr=-1"],
        U + ["--method", "finetune", "--set", "lr=0"],
        U + ["--method", "finetune", "--set", "lr"],
        U + ["--method", "finetune", "--set", "lr=fast"],
        U + ["--method", "continualflow", "--set", "lam=nan"],
        U + ["--method", "continualflow", "--set", "lam=-1"],
        U + ["--method", "continualflow", "--set", "steps=0"],
        U + ["--method", "continualflow", "--set", "mode=sideways"],
        U + ["--method", "salun"],
        U + ["--method", "sfd"],
        U + ["--method", "i2i"],
        U + ["--method", "finetune", "--divergence", "kl"],
        U + ["--method", "finetune", "--override", "3"],
    ]
    for cfg in [
        "bad.toml",
        "bad.yaml",
        "list.yaml",
        "opts.txt",
        "unknown.toml",
        "nan.toml",
        "type.toml",
        "missing.toml",
    ]:
        cases.append(U + ["--method", "finetune", "--config", str(c / cfg)])
    cases += [
        ["unlearn", F, "--method", "finetune", "--out", new],
        [
            "unlearn",
            F,
            "--method",
            "finetune",
            "--forget",
            "classes=0",
            "--concept",
            "x",
            "--anchor",
            "y",
            "--out",
            new,
        ],
        ["unlearn", F, "--method", "finetune", "--concept", "x", "--out", new],
        ["unlearn", F, "--method", "finetune", "--forget", "classes=0,1", "--out", new],
        ["unlearn", F, "--method", "finetune", "--forget", "classes=0"],
        ["unlearn", F, "--forget", "classes=0", "--out", new],
        [
            "unlearn",
            D,
            "--method",
            "fdiv",
            "--divergence",
            "bogus",
            "--concept",
            "circle",
            "--anchor",
            "shape",
            "--out",
            new,
        ],
        [
            "unlearn",
            SH,
            "--method",
            "fdiv",
            "--divergence",
            "bogus",
            "--concept",
            "circle",
            "--anchor",
            "shape",
            "--out",
            new,
        ],
        ["unlearn", SH, "--method", "fdiv", "--concept", "plaid", "--anchor", "shape", "--out", new],
        ["unlearn", D, "--method", "sfd", "--forget", "classes=3", "--override", "99", "--out", new],
        ["unlearn", D, "--method", "salun", "--forget", "classes=3", "--set", "mask_ratio=1.5", "--out", new],
        ["unlearn", CL, "--method", "salun", "--forget", "classes=3", "--set", "mask_ratio=-0.5", "--out", new],
        ["unlearn", IM, "--method", "i2i", "--forget", "classes=3", "--set", "alpha=0", "--out", new],
        ["unlearn", IM, "--method", "i2i", "--forget", "concept=circle;anchor=shape", "--out", new],
    ]
    for out in [o / "file", o / "foreign", o / "file" / "sub", o / "dangling"] + (
        [o / "readonly" / "u"] if s["immutable"] else []
    ):
        cases.append(["unlearn", F, "--method", "finetune", "--forget", "classes=0", "--out", str(out), "--steps", "2"])
    for name in ["negsize", "netclass", "otherdata", "fingerprint", "gonedata", "truncw", "noproc"]:
        cases.append(
            ["unlearn", str(b[name]), "--method", "finetune", "--forget", "classes=0", "--out", new, "--steps", "2"]
        )
    # classify ---------------------------------------------------------------------------------
    cases += [
        ["classify", "train", "--out", new, "--random", "0"],
        ["classify", "train", "--out", new, "--random", "1.5"],
        ["classify", "train", "--out", new, "--random", "nan"],
        ["classify", "train", "--out", new, "--epochs", "0"],
        ["classify", "train", "--out", new, "--forget", "classes=3", "--random", "0.1"],
        ["classify", "train", "--task", str(d / "empty.npz"), "--out", new],
        ["classify", "unlearn", CL, "--out", new, "--method", "zz", "--forget", "classes=3"],
        ["classify", "unlearn", CL, "--out", new],
        ["classify", "unlearn", CL, "--out", new, "--random", "-0.1"],
        ["classify", "unlearn", CL, "--out", new, "--forget", "classes=3", "--set", "lr=nan"],
        ["classify", "unlearn", F, "--out", new, "--forget", "classes=0"],
        ["classify", "evaluate", CL, "--forget", "classes=42"],
        ["classify", "evaluate", CL, "--random", "2"],
        ["classify", "evaluate", F, "--forget", "classes=0"],
        ["classify", "evaluate", CL, "--forget", "classes=3", "--retrain", str(o / "nothing")],
    ]
    # bench, report, demo, methods, top level ----------------------------------------------------
    cases += [
        ["bench", "--suite", "huge"],
        ["bench", "--out", str(o / "file")],
        ["bench", "--out", str(o / "foreign")],
        ["bench", "--out", str(o / "file" / "runs")],
        ["demo", "--out", str(o / "file")],
        ["demo", "--out", str(o / "foreign")],
        ["demo", "--out", str(o / "file" / "x")],
    ]
    if s["immutable"]:
        cases += [["bench", "--out", str(o / "readonly" / "runs")], ["demo", "--out", str(o / "readonly" / "d")]]
    for name, path in r.items():
        cases.append(["report", str(path)])
    cases += [
        ["report", str(o / "nothing")],
        ["report", str(o / "file")],
        ["methods", "extra"],
        ["frobnicate"],
        ["--bogus"],
        ["train", "--bogus"],
    ]
    return cases


def run_catalogue(keep: str | None = None) -> dict:
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="genunlearn-robust-"))
    root.mkdir(parents=True, exist_ok=True)
    os.environ["GENUNLEARN_CACHE"] = str(root / "cache")
    import torch

    torch.set_num_threads(2)
    import genunlearn.cli as cli_mod

    t0 = time.perf_counter()
    sandbox = _make_sandbox(root)
    setup = time.perf_counter() - t0
    # from here on, any real work (training, sampling, judging, a bench cell) means the input got through
    import genunlearn.training.loop as loop
    from genunlearn.bench.cells import TaskCells
    from genunlearn.generative.model import GenerativeModel
    from genunlearn.i2i.model import I2IModel

    def work(*a, **k):
        raise WorkStarted

    loop.train_objectives = work  # every training (models, judges, proxies, methods)
    TaskCells.run = work  # a benchmark cell
    GenerativeModel.sample = work  # sampling (sample, evaluate)
    I2IModel.complete = work  # I2I completions
    cases = catalogue(sandbox)
    rows = []
    try:
        for argv in cases:
            before = _snapshot(root)
            code, out, err, tb = _cli(argv, cli_mod)
            changed = _snapshot(root) != before
            lines = [ln for ln in err.splitlines() if ln.strip()]
            if tb is not None:
                verdict = "traceback"
            elif code == "work" or code == 0:
                verdict = "accepted"
            elif code == 2 and len(lines) == 1 and lines[0].startswith("error: "):
                verdict = "one-line"
            else:
                verdict = "other"
            rows.append(
                {
                    "argv": argv,
                    "verdict": verdict,
                    "changed": changed,
                    "message": (tb.strip().splitlines()[-1] if tb else lines[-1] if lines else out.strip()[-120:]),
                }
            )
    finally:
        if sandbox["immutable"]:
            subprocess.run(["chattr", "-i", str(sandbox["o"] / "readonly")], capture_output=True)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    known = {"train", "sample", "evaluate", "unlearn", "classify", "bench", "report", "demo", "methods"}
    command = lambda argv: argv[0] if argv[0] in known else "(top level)"
    commands = sorted({command(r["argv"]) for r in rows})
    summary = {
        "tried": len(rows),
        "one-line errors": sum(r["verdict"] == "one-line" for r in rows),
        "tracebacks": sum(r["verdict"] == "traceback" for r in rows),
        "accepted silently": sum(r["verdict"] == "accepted" for r in rows),
        "other (not one line)": sum(r["verdict"] == "other" for r in rows),
        "files changed": sum(r["changed"] for r in rows),
    }
    print(
        f"\n== catalogue: {len(rows)} bad inputs across {len(commands)} commands ({', '.join(commands)}); sandbox built in {setup:.0f}s =="
    )
    for k, v in summary.items():
        print(f"  {k:>22}: {v}")
    per = {}
    for r in rows:
        cmd = command(r["argv"])
        per.setdefault(cmd, [0, 0])
        per[cmd][0] += 1
        per[cmd][1] += r["verdict"] == "one-line" and not r["changed"]
    print(
        "  per command (tried / one-line with nothing changed): "
        + ", ".join(f"{k} {a}/{b}" for k, (a, b) in per.items())
    )
    bad = [r for r in rows if r["verdict"] != "one-line" or r["changed"]]
    for r in bad:
        print(
            f"  ! {r['verdict']}{' +changed' if r['changed'] else ''}: genunlearn {' '.join(r['argv'])}\n      {r['message']}"
        )
    examples = random.Random(0).sample([r for r in rows if r["verdict"] == "one-line"], k=min(6, len(rows)))
    print("  sample messages:")
    for r in examples:
        print(
            f"    genunlearn {' '.join(a if len(a) < 40 else '…' + a[-30:] for a in r['argv'])}\n      {r['message']}"
        )
    return summary


# --- part 2: kill tests ---------------------------------------------------------------------------
# the CLI, SIGKILLed at argv[1]: "step:K" (a loop callback, after loop step K of any training) or
# "save:STEP[:NAME]" (at that step of any save, or of a save to a folder named NAME)
KILLED_CLI = """
import functools, os, signal, sys
import genunlearn.io.weights as weights, genunlearn.training, genunlearn.training.loop as loop
from genunlearn.cli import main

at = sys.argv[1]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if at.startswith("step:"):
    kill = loop.every_step(lambda done, _record: done == int(at[5:]) and die())
    real = loop.train_objectives
    loop.train_objectives = genunlearn.training.train_objectives = functools.wraps(real)(lambda objectives, **kw: real(objectives, **{**kw, "callbacks": (*kw.get("callbacks", ()), kill)}))
else:
    weights.save_step = lambda step, target: at in (f"save:{step}", f"save:{step}:{target.name}") and die()
main(sys.argv[2:])
"""


def _run(argv, env, kill_at: str | None = None) -> tuple[int, str, float]:
    """(exit code, stderr, seconds) of the CLI run with ``argv``, SIGKILLed at ``kill_at`` (``KILLED_CLI``)."""
    t0 = time.perf_counter()
    command = ["-m", "genunlearn"] if kill_at is None else ["-c", KILLED_CLI, kill_at]
    p = subprocess.run([sys.executable, *command, *argv], env=env, capture_output=True, text=True)
    return p.returncode, p.stderr, time.perf_counter() - t0


def _weights(folder: Path) -> dict:
    """Every tensor a saved folder holds, keyed by file and name: ``network.safetensors`` of a
    genunlearn model, each component's weights of a diffusers pipeline."""
    from genunlearn.io.weights import load_tensors

    files = sorted(
        f
        for f in folder.rglob("*.safetensors")
        if not any(part.startswith(".") for part in f.relative_to(folder).parts)
    )
    return {f"{f.relative_to(folder)}:{k}": v for f in files for k, v in load_tensors(f).items()}


def _loadable(folder: Path) -> str:
    """What the path holds: 'old', 'new' or a problem."""
    from genunlearn.errors import GenUnlearnError
    from genunlearn.families import open_model

    try:
        open_model(folder)
    except GenUnlearnError as e:
        return f"NOT LOADABLE ({e})"
    return "model"


def _holds(out: Path, old: dict, new: dict) -> str:
    import torch

    state = _loadable(out)
    if state != "model":
        return state
    w = _weights(out)
    if w.keys() == old.keys() and all(torch.equal(w[k], old[k]) for k in old):
        return "old"
    if w.keys() == new.keys() and all(torch.equal(w[k], new[k]) for k in new):
        return "new"
    return "a model that is neither the old nor the new one"


def kill_test(name: str, argv_for, old_argv, steps: int, root: Path, rng: random.Random, env: dict) -> dict:
    """``argv_for(out)``: the command (``steps`` training steps); ``old_argv(out)`` writes an
    earlier model at the path first. Kills: 5 random steps (SIGKILL), one while a resume
    checkpoint is being written, then one at each step of the final save to the path."""
    import torch

    ref_env = {**env, "GENUNLEARN_CACHE": str(root / f"{name}-ref-cache")}
    code, err, wall = _run(argv_for(root / f"{name}-ref"), ref_env)
    assert code == 0, err
    reference = _weights(root / f"{name}-ref")
    out = root / f"{name}-out"
    run_env = {**env, "GENUNLEARN_CACHE": str(root / f"{name}-cache")}
    code, err, _ = _run(old_argv(out), run_env)
    assert code == 0, err
    old = _weights(out)
    kills = [f"step:{k}" for k in sorted(rng.sample(range(1, steps), 5))]
    kills.insert(rng.randrange(1, 5), "save:written:checkpoint")  # in the middle of writing a resume checkpoint
    kills += [f"save:{s}:{out.name}" for s in ("tmp", "written", "carried", "swapped")]
    log, resumed = [], 0
    for at in kills:
        code, err, secs = _run(argv_for(out), run_env, kill_at=at)
        said = next((ln for ln in err.splitlines() if ln.startswith("resuming")), None)
        resumed += said is not None
        start = f"resumed at {said.split('at step ')[1].split(' ')[0]}" if said else "no checkpoint to resume"
        log.append(
            (at, "killed" if code == -9 else f"exit {code}", _holds(out, old, reference), f"{secs:.1f}s, {start}")
        )
        if code not in (-9, 0):
            print(f"  (kill at {at}: exit {code}: {err.strip().splitlines()[-1] if err.strip() else ''})")
    code, err, _ = _run(argv_for(out), run_env)
    final = _weights(out)
    identical = code == 0 and all(torch.equal(final[k], reference[k]) for k in reference)
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    work_left = (
        [p.name for p in (root / f"{name}-cache" / "work").glob("*")]
        if (root / f"{name}-cache" / "work").is_dir()
        else []
    )
    always = all(h in ("old", "new") for _, _, h, _ in log)
    print(f"\n== kill test: {name} ({steps} steps; uninterrupted {wall:.1f}s) ==")
    for at, how, holds, when in log:
        print(
            f"  kill at {at:<28} {how:<7} ({when:<35}) path holds "
            + (f"the {holds} model" if holds in ("old", "new") else holds)
        )
    print(
        f"  final rerun: exit {code}; bit-identical to the uninterrupted run: {identical}; path always held a loadable model: {always}"
    )
    print(
        f"  reruns that said 'resuming': {resumed}; leftovers beside the path: {leftovers or 'none'}; checkpoints left in the cache: {work_left or 'none'}"
    )
    return {"identical": identical, "always_loadable": always, "resumed": resumed}


STEPS = 600
SD_STEPS = 20  # the tiny SD-layout pipeline: each of its two stages (autoencoder, UNet) trains about this many steps


def run_kills(seed: int, keep: str | None = None, only_sd: bool = False) -> dict:
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="genunlearn-kills-"))
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    env = {**os.environ, "GENUNLEARN_CHECKPOINT_SECONDS": "0.5", "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    results = {}
    try:
        if not only_sd:
            results.update(kill_moons(root, rng, env))
        results.update(kill_sd(root, rng, env))
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return results


def kill_sd(root: Path, rng: random.Random, env: dict) -> dict:
    """The long jobs of text-to-image users: training a Stable-Diffusion-layout pipeline (its
    autoencoder stage is where the step kills land) and erasing a concept from one (ESD)."""
    sd = lambda out, steps, seed=0: [
        "train",
        "--task",
        "shapes",
        "--model",
        "sd",
        "--out",
        str(out),
        "--steps",
        str(steps),
        "--seed",
        str(seed),
    ]
    results = {
        "sd train": kill_test(
            "sd-train", lambda out: sd(out, SD_STEPS), lambda out: sd(out, 5, seed=1), SD_STEPS, root, rng, env
        )
    }
    base = root / "sd-base"
    code, err, _ = _run(sd(base, SD_STEPS), {**env, "GENUNLEARN_CACHE": str(root / "sd-base-cache")})
    assert code == 0, err
    esd = lambda out, steps: [
        "unlearn",
        str(base),
        "--method",
        "esd",
        "--concept",
        "a circle",
        "--anchor",
        "a shape",
        "--steps",
        str(steps),
        "--out",
        str(out),
    ]
    results["sd unlearn"] = kill_test(
        "sd-unlearn", lambda out: esd(out, SD_STEPS), lambda out: esd(out, 5), SD_STEPS, root, rng, env
    )
    return results


def kill_moons(root: Path, rng: random.Random, env: dict) -> dict:
    """A flow model's training and unlearning on moons."""
    results = {
        "train": kill_test(
            "train",
            lambda out: ["train", "--task", "moons", "--out", str(out), "--steps", str(STEPS)],
            lambda out: ["train", "--task", "moons", "--out", str(out), "--steps", "20", "--seed", "1"],
            STEPS,
            root,
            rng,
            env,
        )
    }
    base = root / "unlearn-base"
    code, err, _ = _run(
        ["train", "--task", "moons", "--out", str(base), "--steps", "200"],
        {**env, "GENUNLEARN_CACHE": str(root / "base-cache")},
    )
    assert code == 0, err
    results["unlearn"] = kill_test(
        "unlearn",
        lambda out: [
            "unlearn",
            str(base),
            "--method",
            "finetune",
            "--forget",
            "classes=0",
            "--steps",
            str(STEPS),
            "--out",
            str(out),
        ],
        lambda out: [
            "unlearn",
            str(base),
            "--method",
            "finetune",
            "--forget",
            "classes=0",
            "--steps",
            "20",
            "--out",
            str(out),
        ],
        STEPS,
        root,
        rng,
        env,
    )
    return results


@pytest.mark.slow
def test_every_bad_input_gets_one_line_before_any_work_and_changes_no_file():
    s = run_catalogue()
    assert s["tried"] > 200, s
    assert (s["tracebacks"], s["accepted silently"], s["files changed"], s["other (not one line)"]) == (0, 0, 0, 0), s


@pytest.mark.slow
def test_killed_runs_always_leave_a_model_and_resume_bit_identical():
    results = run_kills(seed=0)
    assert results and all(r["identical"] and r["always_loadable"] for r in results.values()), results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--only",
        choices=["catalogue", "kills", "sd-kills"],
        default=None,
        help="sd-kills: only the Stable-Diffusion-layout kill tests.",
    )
    ap.add_argument("--seed", type=int, default=0, help="Seed of the random kill moments.")
    ap.add_argument("--keep", default=None, help="Keep the sandbox in this folder.")
    args = ap.parse_args()
    t0 = time.perf_counter()
    ok = True
    if args.only in (None, "kills", "sd-kills"):
        res = run_kills(args.seed, args.keep and str(Path(args.keep) / "kills"), only_sd=args.only == "sd-kills")
        ok &= all(r["identical"] and r["always_loadable"] for r in res.values())
    if args.only in (None, "catalogue"):
        s = run_catalogue(args.keep and str(Path(args.keep) / "catalogue"))
        ok &= (
            s["tracebacks"] == 0
            and s["accepted silently"] == 0
            and s["files changed"] == 0
            and s["other (not one line)"] == 0
        )
    print(f"\n{'PASS' if ok else 'FAIL'} ({time.perf_counter() - t0:.0f}s)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
