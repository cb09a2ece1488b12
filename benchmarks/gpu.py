"""The GPU check: every registered method once on the GPU, nothing left on the CPU, CPU vs GPU time.

    python benchmarks/gpu.py                          # CUDA: each method on the GPU (checked, timed) and on the CPU (timed)
    python benchmarks/gpu.py --device cpu             # the dry run: the same path on the CPU only, tiny budgets
    python benchmarks/gpu.py --steps 50 --base-steps 400 --precision bf16 --only sd

Setups: digits flow, digits DDPM, the Stable-Diffusion-layout pipeline on shapes (a concept
request), digits I2I and the digits classifier. For each, a base model is trained on the device
with ``--base-steps``, then every method registered for its family, model kind and request unlearns
it with ``--steps`` (options that set a method's other work, such as ContinualFlow's sample pool,
are shrunk to match: this checks placement and speed, not forgetting quality). Checked on every
model: each parameter and buffer of its networks (an SD model's autoencoder too) lives on the
device, and so do samples drawn in its space (an I2I or classifier output). While a method runs on
a GPU, a ``TorchDispatchMode`` counts network compute (convolution, matmul, attention, norms) on
CPU tensors: any at all is a network or batch left behind, and fails the check. That checked run is
also the warm-up; a second run on the device is timed, then one on the CPU. Printed per method:
seconds on the device and on the CPU, the speed-up, the GPU's peak memory. Exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from itertools import chain

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import genunlearn as gu
from genunlearn import device
from genunlearn.catalogue import CATALOGUE
from genunlearn.families import family_for_kind

SETUPS = (  # (task, kind, forget request)
    ("digits", "flow", "classes=3"),
    ("digits", "diffusion", "classes=3"),
    ("shapes", "sd", "concept=circle;anchor=square"),
    ("digits", "i2i", "classes=3"),
    ("digits", "classifier", "classes=3"),
)
LIGHT = {  # each method's other work, shrunk to the step budget's scale
    "continualflow": {"pool": 256},
    "esd": {"sample_steps": 5},
    "fdiv": {"anchor_images": 8, "anchor_sampler_steps": 5, "critic_warmup": 1},
    "concept_ablation": {"anchor_images": 8, "anchor_sampler_steps": 5},
}
COMPUTE = (
    "convolution",
    "addmm",
    "mm",
    "bmm",
    "baddbmm",
    "linear",
    "scaled_dot_product",
    "native_layer_norm",
    "native_group_norm",
    "native_batch_norm",
)


class CPUComputeWatch(TorchDispatchMode):
    """Counts network compute (by op name) whose result is a CPU tensor."""

    def __init__(self):
        super().__init__()
        self.seen: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.__name__.split(".")[0]
        if name.lstrip("_").startswith(COMPUTE):
            if any(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in tree_leaves(out)):
                self.seen[name] += 1
        return out


def networks(model) -> list:
    nets = [model.net]
    vae = getattr(model, "components", {}).get("vae")
    return nets + ([vae] if vae is not None else [])


def misplaced(model, where: torch.device) -> list[str]:
    """What of ``model`` is not on ``where``: tensors of its networks, and a draw in its own space."""
    bad = [
        f"{name} on {t.device}"
        for net in networks(model)
        for name, t in chain(net.named_parameters(), net.named_buffers())
        if t.device != where
    ]
    with torch.no_grad():
        if model.family == "generative":
            cond = model.cond_for_labels(torch.arange(2, device="cpu")) if model.conditional else None
            out = model.generate(2, cond, generator=torch.Generator().manual_seed(0))
        else:
            x = torch.zeros((2, *model.sample_shape), device=where)
            out = (
                model.net(x, torch.ones((2, model.net.grid**2), dtype=torch.bool, device=where))
                if model.family == "i2i"
                else model.net(x)
            )
    if out.device != where:
        bad.append(f"a sample on {out.device}")
    return bad[:3]


def _mib(peak) -> str:
    return f"{peak:9.0f}" if peak is not None else f"{'—':>9}"


def _sync(where: torch.device) -> None:
    if where.type == "cuda":
        torch.cuda.synchronize(where)


def timed(fn, placement: device.Placement, watch: bool):
    """(result, seconds, peak GPU MiB or None, CPU compute seen) of ``fn()`` on ``placement``, with an
    empty cache (nothing a method trains, such as an energy proxy, comes from an earlier run)."""
    where = placement.device
    watcher = CPUComputeWatch() if watch else None
    with tempfile.TemporaryDirectory(prefix="genunlearn-gpu-") as cache, device.use(placement):
        os.environ["GENUNLEARN_CACHE"] = cache
        if where.type == "cuda":
            torch.cuda.reset_peak_memory_stats(where)
        _sync(where)
        t0 = time.perf_counter()
        if watcher is not None:
            with watcher:
                result = fn()
        else:
            result = fn()
        _sync(where)
        seconds = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated(where) / 2**20 if where.type == "cuda" else None
    return result, seconds, peak, (watcher.seen if watcher is not None else Counter())


def methods_for(model, kind: str, request) -> list[str]:
    family = family_for_kind(kind).name
    return sorted(
        m.name for m in CATALOGUE if m.family == family and model.kind in m.model_kinds and request.kind in m.accepts
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", choices=device.DEVICES, help="the device to check (cpu: the dry run)")
    ap.add_argument("--precision", default="fp32", choices=device.PRECISIONS)
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="each method's step budget (epochs for classifiers; default 20 on a GPU, 2 in the dry run)",
    )
    ap.add_argument(
        "--base-steps",
        type=int,
        default=None,
        help="each base model's training steps (default 200 on a GPU, 20 in the dry run)",
    )
    ap.add_argument(
        "--base-epochs",
        type=int,
        default=None,
        help="the base classifier's epochs (default 5 on a GPU, 1 in the dry run)",
    )
    ap.add_argument("--only", default=None, help="comma-separated kinds to run (flow, diffusion, sd, i2i, classifier)")
    ap.add_argument("--no-cpu", action="store_true", help="skip the CPU timing of each method on a GPU")
    args = ap.parse_args(argv)
    try:
        target = device.resolve(args.device, args.precision)
    except gu.GenUnlearnError as e:
        sys.exit(f"error: {e}")
    dry = target.device.type == "cpu"
    steps = args.steps or (2 if dry else 20)
    base_steps = args.base_steps or (20 if dry else 200)
    base_epochs = args.base_epochs or (1 if dry else 5)
    cpu = device.resolve("cpu", "fp32")
    compare = not dry and not args.no_cpu
    kinds = set(args.only.split(",")) if args.only else None
    print(
        f"device {target.device} ({torch.cuda.get_device_name(target.device) if target.device.type == 'cuda' else 'dry run' if dry else target.device.type}), precision {target.precision}; base {base_steps} steps (classifier {base_epochs} epochs), methods {steps} steps (classifiers: epochs)"
    )
    print(f"{'setup':<22} {'method':<20} {'device s':>9} {'cpu s':>8} {'speed-up':>8} {'peak MiB':>9}  check")
    failures = 0
    for task, kind, spec in SETUPS:
        if kinds is not None and kind not in kinds:
            continue
        family = family_for_kind(kind)
        request = gu.request(spec)
        setup = f"{task} {kind}"
        job = family.job(task, kind, steps=base_epochs if kind == "classifier" else base_steps)
        base, seconds, peak, seen = timed(
            lambda: family.train(job, use_cache=False, progress=False), target, watch=not dry
        )
        base.to(target.device)
        problems = misplaced(base, target.device) + [f"CPU {op} ×{n}" for op, n in seen.items()]
        failures += bool(problems)
        print(
            f"{setup:<22} {'(base model)':<20} {seconds:9.1f} {'':>8} {'':>8} {_mib(peak)}  {'ok' if not problems else 'FAIL ' + '; '.join(problems)}",
            flush=True,
        )
        for name in methods_for(base, kind, request):
            options = LIGHT.get(name, {})
            run = lambda: gu.unlearn(base, name, request, steps=steps, **options)  # noqa: E731
            try:
                result, seconds, peak, seen = timed(run, target, watch=not dry)  # on a GPU: checked, and a warm-up
                problems = misplaced(result, target.device) + [f"CPU {op} ×{n}" for op, n in seen.items()]
                if not dry:  # timed without the watch's per-op Python overhead
                    _, seconds, peak, _ = timed(run, target, watch=False)
                if compare:
                    _, cpu_seconds, _, _ = timed(run, cpu, watch=False)
                    base.to(target.device)
            except Exception as e:  # a method that cannot run on the device is a failed check, not a crash
                problems, seconds, peak, cpu_seconds = (
                    [f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"],
                    float("nan"),
                    None,
                    None,
                )
            failures += bool(problems)
            cpu_col = f"{cpu_seconds:8.1f}" if compare and cpu_seconds is not None else f"{'—':>8}"
            speed = (
                f"{cpu_seconds / seconds:7.1f}×" if compare and cpu_seconds is not None and seconds > 0 else f"{'—':>8}"
            )
            print(
                f"{setup:<22} {name:<20} {seconds:9.1f} {cpu_col} {speed} {_mib(peak)}  {'ok' if not problems else 'FAIL ' + '; '.join(problems)}",
                flush=True,
            )
    print("all checks passed" if not failures else f"{failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
