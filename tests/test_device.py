"""Devices and precision on a CPU-only machine: the choices are checked in one line before any work,
an explicit CPU placement gives the same bits as the default, and no tensor that meets a network is
made without saying where it lives."""

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import genunlearn as gu
from genunlearn import device

SRC = Path(__file__).parents[1] / "src" / "genunlearn"
NETWORK_COMMANDS = ("train", "unlearn", "sample", "evaluate", "probe", "bench", "demo")


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    """A small flow model on ring8 (trained through the CLI, as a user does)."""
    from genunlearn.cli import main

    out = tmp_path_factory.mktemp("dev") / "ring"
    with pytest.raises(SystemExit) as e:
        main(["train", "--task", "ring8", "--out", str(out), "--steps", "60", "--no-cache"])
        raise SystemExit(0)
    assert e.value.code == 0
    return out


def test_resolve_auto_and_refusals():
    p = device.resolve()
    assert (
        p.device == torch.device("cpu") and p.precision == "fp32" and p.batch_size == 1000 and p.mixed_precision == "no"
    )
    assert device.resolve("cpu", "bf16", 7) == device.Placement(torch.device("cpu"), "bf16", 7)
    bad = [
        (("cuda",), "--device cuda: no CUDA device is available on this machine; use --device cpu or auto"),
        (("mps",), "--device mps: no MPS device"),
        (("tpu",), "--device must be one of auto, cpu, cuda, mps, got 'tpu'"),
        (("cpu", "fp16"), "--precision fp16 needs a GPU"),
        (("auto", "fp16"), "--precision fp16 needs a GPU"),  # auto is the CPU here
        (("cpu", "fp8"), "--precision must be one of fp32, bf16, fp16"),
        (("cpu", "fp32", 0), "--batch-size must be between 1 and 2147483647, got 0"),
        (("cpu", "fp32", True), "--batch-size must be between 1"),
    ]
    for args, match in bad:
        with pytest.raises(gu.GenUnlearnError) as e:
            device.resolve(*args)
        assert str(e.value).startswith(match) and "\n" not in str(e.value), args


@pytest.mark.parametrize(
    "args,match",
    [
        (
            ["--device", "cuda"],
            "error: --device cuda: no CUDA device is available on this machine; use --device cpu or auto",
        ),
        (["--batch-size", "0"], "error: --batch-size must be between 1 and 2147483647, got 0"),
        (
            ["--precision", "fp16", "--device", "cpu"],
            "error: --precision fp16 needs a GPU (accelerate has no fp16 on the CPU)",
        ),
        (["--precision", "fp8"], "error: Invalid value for '--precision': 'fp8' is not one of 'fp32', 'bf16', 'fp16'."),
    ],
)
def test_cli_refuses_in_one_line_before_any_work(tmp_path, cli, args, match):
    for command in (
        ["train", "--task", "ring8", "--out", str(tmp_path / "m")],
        ["sample", str(tmp_path / "missing"), "--out", str(tmp_path / "s.npz")],
    ):
        code, out, err = cli(*command, *args)
        assert code == 2 and err.startswith(match) and err.count("\n") == 1 and out == "", (command, err)
    assert not any(tmp_path.iterdir())  # nothing trained or written


def test_every_network_command_takes_the_placement_options():
    from genunlearn import cli

    for name in NETWORK_COMMANDS:
        params = {p.name: p for p in cli.cli.commands[name].params}
        assert {"device", "precision", "batch_size"} <= set(params), name
        assert params["device"].default == "auto" and params["precision"].default == "fp32"
    assert tuple(cli.DEVICES) == device.DEVICES and tuple(cli.PRECISIONS) == device.PRECISIONS
    assert "fp16 needs a GPU" in next(p for p in cli.cli.commands["sample"].params if p.name == "precision").help


def test_explicit_cpu_placement_gives_the_same_bits(ring, tmp_path, cli):
    """Training, sampling and evaluation with --device cpu --precision fp32 --batch-size 1000 (the
    defaults, spelled out) equal the plain commands bit for bit."""
    flags = ("--device", "cpu", "--precision", "fp32", "--batch-size", "1000")
    code, _, _ = cli(
        "train", "--task", "ring8", "--out", str(tmp_path / "again"), "--steps", "60", "--no-cache", *flags
    )
    assert (
        code == 0
        and (tmp_path / "again" / "network.safetensors").read_bytes() == (ring / "network.safetensors").read_bytes()
    )
    for extra, name in (((), "plain"), (flags, "placed")):
        assert (
            cli("sample", str(ring), "--n", "40", "--seed", "3", "--out", str(tmp_path / f"{name}.npz"), *extra)[0] == 0
        )
        assert (
            cli(
                "evaluate",
                str(ring),
                "--forget",
                "classes=0",
                "--n-per-prompt",
                "10",
                "--out",
                str(tmp_path / f"{name}.json"),
                *extra,
            )[0]
            == 0
        )
    with np.load(tmp_path / "plain.npz") as a, np.load(tmp_path / "placed.npz") as b:
        assert np.array_equal(a["samples"], b["samples"]) and np.array_equal(a["labels"], b["labels"])
    assert json.loads((tmp_path / "plain.json").read_text()) == json.loads((tmp_path / "placed.json").read_text())


def test_api_placement(ring):
    model = gu.load(ring, device="cpu")
    assert all(t.device.type == "cpu" for t in (*model.net.parameters(), *model.net.buffers()))
    plain = gu.sample(model, 30, seed=1)
    assert np.array_equal(
        plain["samples"], gu.sample(model, 30, seed=1, device="cpu", precision="fp32", batch_size=1000)["samples"]
    )
    small = gu.sample(model, 30, seed=1, batch_size=7)  # five network batches: other draws, same model
    assert small["samples"].shape == (30, 2) and np.isfinite(small["samples"]).all()
    half = gu.sample(model, 30, seed=1, precision="bf16")  # autocast on the CPU
    assert np.isfinite(half["samples"]).all() and not np.array_equal(half["samples"], plain["samples"])
    assert np.abs(half["samples"] - plain["samples"]).mean() < 0.5
    with pytest.raises(gu.GenUnlearnError, match="no CUDA device"):
        gu.sample(model, 4, device="cuda")
    with pytest.raises(gu.GenUnlearnError, match="--batch-size must be between 1"):
        gu.evaluate(model, "classes=0", batch_size=-1)
    with gu.use_device(device="cpu", batch_size=7):
        assert device.current().batch_size == 7
        with gu.use_device(precision="bf16"):
            assert device.current() == device.Placement(torch.device("cpu"), "bf16", 7)
    assert device.current().batch_size == 1000


def test_bf16_training_then_fp32_is_unchanged():
    """accelerate keeps one precision per process; the loop resets it between placements, so a
    bf16 training leaves a later fp32 run bit-identical to one that never saw bf16."""
    from genunlearn.training import TrainConfig, train

    def run():
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
        x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
        train(
            net,
            lambda m, g: (m(x[torch.randint(64, (16,), generator=g)]) ** 2).mean(),
            TrainConfig(steps=5, log_every=5),
            progress=False,
        )
        return torch.cat([p.detach().flatten() for p in net.parameters()])

    before = run()
    with device.use(precision="bf16"):
        low = run()
    assert torch.isfinite(low).all() and not torch.equal(low, before)
    assert torch.equal(run(), before)


def test_random_draws_follow_their_tensor():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(device.randn((5, 3), g, device="cpu"), ref)  # the CPU path draws exactly what it drew before
    assert device.randint(0, 10, (4,), g, device=torch.device("cpu")).dtype == torch.long
    net = torch.nn.Linear(2, 2)
    x, none = device.place(net, torch.zeros(3, 2), None)
    assert x.device == device.of(net) and none is None
    assert device.batched(net, lambda a: a * 2, torch.ones(10, 2), batch_size=3).shape == (10, 2)


# --- no tensor made without a device where one matters ---------------------------------------------
FACTORIES = {
    "randn",
    "rand",
    "randint",
    "randperm",
    "zeros",
    "ones",
    "full",
    "arange",
    "empty",
    "tensor",
    "linspace",
    "eye",
    "normal",
}
NOISE = {"randn", "rand", "normal"}
CORE = ("processes/", "generative.py", "training/loop.py", "device.py")  # every tensor here meets a network


def _factory_calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        f = node.func if isinstance(node, ast.Call) else None
        if (
            isinstance(f, ast.Attribute)
            and isinstance(f.value, ast.Name)
            and f.value.id == "torch"
            and f.attr in FACTORIES
        ):
            yield f.attr, node.lineno, any(k.arg == "device" for k in node.keywords)


def test_no_tensor_made_without_a_device_where_one_matters():
    """Two rules, checked on the source:
    - in the sampling and training core (processes, the generative model, the loop) every tensor
      factory names its device: these tensors meet a network that may sit on a GPU;
    - everywhere outside dataset synthesis (``data/``) and weight initialisation (``models/``),
      every continuous random draw (``randn``/``rand``/``normal``: noise, times, dropout and attack
      initialisations) names its device or goes through ``genunlearn.device``'s draws.
    Index draws (``randint``/``randperm`` into CPU datasets) stay on the CPU by design: batches are
    placed on the network's device where they are used (``device.place``)."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        core = rel.startswith(CORE)
        if rel.startswith(("data/", "models/")) and not core:
            continue
        for name, line, has_device in _factory_calls(path):
            if not has_device and (core or name in NOISE):
                offenders.append(f"{rel}:{line} torch.{name}")
    assert not offenders, offenders


def test_generators_stay_on_the_cpu():
    """Seeds mean the same numbers on every device: every torch.Generator in the library is a CPU one
    (``genunlearn.device`` places what it draws)."""
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "Generator":
                assert not node.args and not node.keywords, f"{path.relative_to(SRC)}:{node.lineno}"
