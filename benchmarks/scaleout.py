"""Scale-out benchmark: the same unlearning run in one process and under
``accelerate launch --multi_gpu --num_processes 2`` (gloo on CPU).

Part 1 (timing): SalUn on a digits diffusion base, forget class 3, a fixed step budget, once with
one process (2 torch threads) and once with two (1 thread each, the same 2 cores). Prints wall
time, steps/s and samples/s (each of N processes draws its own batch, so a step sees N× the
samples), and how well the two loss curves agree (mean relative difference of the logged losses;
they are not identical: the ranks draw different batches and average their gradients).

Part 2 (``--all-methods``): every registered method of every family on a tiny model, through
``genunlearn unlearn`` under two processes: did it finish, did the ranks agree, was it saved once.

    python benchmarks/scaleout.py [--steps 200] [--all-methods] [--out runs/scaleout]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from genunlearn.io.weights import atomic_write_text

LAUNCH = [
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
]


def worker(base: str, steps: int, out: str) -> None:
    """Run under one or two processes: SalUn for ``steps`` steps, losses and time to ``out`` (main only)."""
    import torch

    from genunlearn.data import load_dataset
    from genunlearn.distributed import is_main_process, num_processes
    from genunlearn.forget.request import ForgetRequest
    from genunlearn.generative.model import GenerativeModel
    from genunlearn.methods import get_method

    model = GenerativeModel.from_pretrained(base)
    request, data = ForgetRequest.of_classes(3), load_dataset("digits")
    method = get_method("salun", {"steps": steps}, family="generative")
    losses = []
    t0 = time.perf_counter()
    method.unlearn(
        model, request, data, budget=steps, callbacks=(lambda step, record: losses.append((step, record["loss"])),)
    )
    seconds = time.perf_counter() - t0
    if is_main_process():
        atomic_write_text(
            Path(out),
            json.dumps(
                {
                    "processes": num_processes(),
                    "threads": torch.get_num_threads(),
                    "seconds": seconds,
                    "losses": losses,
                    "batch": method.config.batch_size,
                }
            ),
        )


def timing(args, out: Path) -> None:
    from genunlearn.families import get_family

    family = get_family("generative")
    base = family.train(family.job("digits", "diffusion"))
    base.save_pretrained(out / "base")
    runs = {}
    for n in (1, 2):
        result = out / f"salun-{n}proc.json"
        env = {**os.environ, "OMP_NUM_THREADS": str(2 // n)}
        cmd = [sys.executable, __file__] if n == 1 else [*LAUNCH, __file__]
        t0 = time.perf_counter()
        subprocess.run(
            [*cmd, "--worker", str(out / "base"), "--steps", str(args.steps), "--result", str(result)],
            check=True,
            env=env,
        )
        runs[n] = {**json.loads(result.read_text()), "wall": time.perf_counter() - t0}
    print(
        f"\nSalUn on digits diffusion (forget 3), {args.steps} steps, batch {runs[1]['batch']} forget + {runs[1]['batch']} retain per process"
    )
    print(
        f"{'processes':>9} {'threads/proc':>12} {'unlearn s':>10} {'launch+run s':>13} {'steps/s':>8} {'samples/s':>10} {'final loss':>11}"
    )
    for n, r in runs.items():
        sps = args.steps / r["seconds"]
        print(
            f"{n:>9} {r['threads']:>12} {r['seconds']:>10.1f} {r['wall']:>13.1f} {sps:>8.2f} {sps * n * 2 * r['batch']:>10.0f} {r['losses'][-1][1]:>11.4f}"
        )
    a, b = ([loss for _, loss in runs[n]["losses"]] for n in (1, 2))
    rel = sum(abs(x - y) / max(abs(x), 1e-12) for x, y in zip(a, b)) / len(a)
    print(
        f"loss curves ({len(a)} logged points): mean relative difference {rel:.1%}; speed-up 2 vs 1 process {runs[1]['seconds'] / runs[2]['seconds']:.2f}×"
    )


def tiny_bases(folder: Path) -> dict[str, Path]:
    """One tiny saved model per kind a method works on."""
    import torch

    from genunlearn.data import load_dataset
    from genunlearn.data.shapes import ATTRIBUTES
    from genunlearn.families import get_family
    from genunlearn.generative.model import GenerativeModel
    from genunlearn.models.mlp import MLPNet
    from genunlearn.models.unet import ConvUNet
    from genunlearn.processes.diffusion import Diffusion
    from genunlearn.processes.flow_matching import FlowMatching

    torch.manual_seed(0)
    digits = load_dataset("digits").meta()
    shapes = {
        "name": "shapes",
        "kind": "images",
        "sample_shape": [3, 16, 16],
        "attributes": [{"name": a.name, "values": list(a.values)} for a in ATTRIBUTES],
    }
    bases = {
        "flow": GenerativeModel(
            MLPNet(dim=64, hidden=32, depth=1, cond_vocab=(10,)),
            FlowMatching(steps=3),
            digits,
            {"task": "digits", "model": "flow", "role": "base"},
        ),
        "diffusion": GenerativeModel(
            MLPNet(dim=64, hidden=32, depth=1, cond_vocab=(10,)),
            Diffusion(steps=3),
            digits,
            {"task": "digits", "model": "diffusion", "role": "base"},
        ),
        "shapes": GenerativeModel(
            ConvUNet(in_channels=3, base_channels=8, channel_mult=(1,), emb_dim=16, cond_vocab=(4, 4)),
            Diffusion(steps=3),
            shapes,
            {"task": "shapes", "model": "diffusion", "role": "base"},
        ),
    }
    for kind in ("classifier", "i2i"):
        family = get_family(kind)
        bases[kind] = family.train(family.job("digits", kind, steps=1 if kind == "classifier" else 20))
    paths = {}
    for kind, model in bases.items():
        model.save_pretrained(folder / kind)
        paths[kind] = folder / kind
    return paths


FAST = {  # small budgets so every method finishes in seconds
    "salun": ["--set", "batch_size=8"],
    "random_label": ["--set", "batch_size=8"],
    "esd": ["--set", "batch_size=4", "--set", "sample_steps=3"],
    "sfd": ["--set", "batch_size=4"],
    "continualflow": ["--set", "pool=100", "--set", "batch=32"],
    "finetune": [],
    "fdiv": ["--set", "anchor_images=2", "--set", "anchor_sampler_steps=2", "--set", "batch_size=4"],
    "concept_ablation": ["--set", "anchor_images=2", "--set", "anchor_sampler_steps=2", "--set", "batch_size=4"],
}


def all_methods(out: Path) -> None:
    from genunlearn.methods import registry

    bases = tiny_bases(out / "bases")
    rows = []
    for (family, name), cls in sorted(registry().items(), key=lambda kv: (kv[0][0], kv[0][1])):
        concept = "concept" in cls.accepts and "classes" not in cls.accepts
        kind = (
            "shapes"
            if concept
            else {"classifier": "classifier", "i2i": "i2i"}.get(family)
            or next(k for k in ("diffusion", "flow") if k in cls.model_kinds)
        )
        forget = ["--concept", "circle", "--anchor", "shape"] if concept else ["--forget", "classes=3"]
        extra = ["--set", "form=variational", "--divergence", "js"] if name == "fdiv" else []
        steps = ["--steps", "1" if family == "classifier" or name.endswith("retrain") or name == "retrain" else "2"]
        target = out / "runs" / f"{family}-{name}"
        cmd = [
            *LAUNCH,
            "-m",
            "genunlearn",
            "unlearn",
            str(bases[kind]),
            "--method",
            name,
            *forget,
            *steps,
            *FAST.get(name, []),
            *extra,
            "--out",
            str(target),
        ]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        agree = "2 processes agree" in r.stdout
        saved = r.stdout.count("saved unlearned model")
        error = (r.stderr.strip().splitlines() or [""])[-1] if r.returncode else ""
        rows.append((family, name, kind, r.returncode == 0, agree, saved, time.perf_counter() - t0, error))
        print(
            f"{family:<10} {name:<18} on {kind:<10} rc {r.returncode}  ranks agree {agree!s:<5}  saved {saved}×  {rows[-1][6]:.0f}s {error[:80]}",
            flush=True,
        )
    ok = sum(1 for r in rows if r[3] and r[4] and r[5] == 1)
    print(f"\n{ok}/{len(rows)} registered methods ran under 2 processes, ranks agreeing, saved once")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--all-methods", action="store_true", help="also run every registered method under 2 processes")
    ap.add_argument("--out", default="runs/scaleout")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.steps, args.result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timing(args, out)
    if args.all_methods:
        all_methods(out)


if __name__ == "__main__":
    main()
