"""Two processes (``accelerate launch --multi_gpu --num_processes 2``, gloo on CPU) run a
conditional diffusion method (SalUn), SFD (two objectives) and the variational f-divergence
(model + critic) through the CLI: the ranks end identical, the folder is written once, and the
result loads."""

import os
import shutil
import subprocess
import textwrap

import pytest
import torch

from genunlearn.generative.model import GenerativeModel
from genunlearn.models.mlp import MLPNet
from genunlearn.models.unet import ConvUNet
from genunlearn.processes.diffusion import Diffusion

pytestmark = pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate's launcher is not on PATH")


def tiny_models(folder):
    from genunlearn.data import load_dataset
    from genunlearn.data.shapes import ATTRIBUTES

    torch.manual_seed(0)
    digits = load_dataset("digits").meta()
    GenerativeModel(
        MLPNet(dim=64, hidden=32, depth=1, cond_vocab=(10,)),
        Diffusion(steps=3),
        digits,
        {"task": "digits", "model": "diffusion"},
    ).save_pretrained(folder / "digits")
    shapes = {
        "name": "shapes",
        "kind": "images",
        "sample_shape": [3, 8, 8],
        "attributes": [{"name": a.name, "values": list(a.values)} for a in ATTRIBUTES],
    }
    net = ConvUNet(in_channels=3, base_channels=8, channel_mult=(1,), emb_dim=16, cond_vocab=(4, 4))
    GenerativeModel(net, Diffusion(steps=3), shapes, {"task": "shapes", "model": "diffusion"}).save_pretrained(
        folder / "shapes"
    )


RUNS = {
    "salun": ["digits", "--method", "salun", "--forget", "classes=3", "--steps", "2", "--set", "batch_size=8"],
    "sfd": ["digits", "--method", "sfd", "--forget", "classes=3", "--steps", "2", "--set", "batch_size=4"],
    "fdiv": [
        "shapes",
        "--method",
        "fdiv",
        "--divergence",
        "js",
        "--set",
        "form=variational",
        "--concept",
        "circle",
        "--anchor",
        "shape",
        "--steps",
        "2",
        "--set",
        "anchor_images=2",
        "--set",
        "anchor_sampler_steps=2",
        "--set",
        "critic_warmup=1",
        "--set",
        "batch_size=4",
    ],
}


def test_two_processes_agree_and_write_once(tmp_path):
    tiny_models(tmp_path)
    calls = [
        [str(tmp_path / args[0]), *args[1:], "--out", str(tmp_path / f"out-{name}")] for name, args in RUNS.items()
    ]
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(f"""
        from genunlearn.cli import main
        for args in {calls!r}:
            main(["unlearn", *args])
    """)
    )
    cmd = [
        "accelerate",
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--main_process_port",
        "0",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        str(script),
    ]
    env = {**os.environ, "GENUNLEARN_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("2 processes agree on the result") == len(RUNS), r.stdout
    for name in RUNS:
        assert r.stdout.count(f"saved unlearned model ({name},") == 1  # one writer
        model = GenerativeModel.from_pretrained(tmp_path / f"out-{name}")
        assert model.info["processes"] == 2 and model.info["method"] == name
    assert GenerativeModel.from_pretrained(tmp_path / "out-sfd").kind == "one_step"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
