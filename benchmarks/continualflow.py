"""ContinualFlow against base, retrain (gold standard) and fine-tune on 2D and digits tasks.

Every row is judged by ``genunlearn.eval.evaluate`` the same way. Base and retrain models come
from the recipe cache (trained on first use). Times: base/retrain = their training seconds;
finetune = its wall time; ContinualFlow = its recorded cost (energy proxy training, even when the
proxy was reloaded from the cache, + pool sampling + fine-tuning).

    nice -n 5 python benchmarks/continualflow.py [--tasks ring8,digits] [--no-sweep] [--out runs/continualflow]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from genunlearn.data import load_dataset
from genunlearn.energy import energy_for_request
from genunlearn.eval.judge import load_judge
from genunlearn.eval.evaluate import evaluate
from genunlearn.forget import ForgetRequest
from genunlearn.methods.continualflow import ContinualFlow, ContinualFlowConfig
from genunlearn.methods.finetune import Finetune, FinetuneConfig
from genunlearn.recipes import TrainJob, train_cached

TASKS = {
    "ring8": ("ring8", ForgetRequest.of_classes(0, 1), {}),
    "checkerboard": ("checkerboard", ForgetRequest("energy", energy="quadrant"), {}),
    "moons": ("moons", ForgetRequest.of_classes("upper"), {}),
    "circles": ("circles", ForgetRequest.of_classes("inner"), {}),
    "digits-uncond": ("digits", ForgetRequest.of_classes(3), {"conditional": False}),
    "digits-cond": ("digits", ForgetRequest.of_classes(3), {}),
}
# ContinualFlow and fine-tune share optimiser family, step budget and batch per task family
CF = {"points": {"lam": 5.0, "pool": 10000, "steps": 600, "batch": 512}, "images": {"lam": 5.0, "pool": 5000, "steps": 300, "batch": 128, "lr": 1e-3, "lr_schedule": "cosine"}}
TASK_CF = {"checkerboard": {"lam": 20.0}}  # the region energy's soft edge leaves ~1 % at λ = 5 (measured)
N_PER_PROMPT = 300  # images: 300 samples per prompt resolve forget rates of 0.3 %; 2D: 50× as many points
LAMBDAS = (0.5, 1.0, 2.0, 5.0, 10.0)
SWEEP_CF = {"points": {"pool": 3000, "steps": 200}, "images": {}}  # lighter 2D runs for the sweep (CPU time)


def base_for(name: str):
    task, request, overrides = TASKS[name]
    return task, request, train_cached(TrainJob(task, "flow", overrides=overrides), progress=False)


def retrain_for(name: str):
    task, request, overrides = TASKS[name]
    return train_cached(TrainJob(task, "flow", forget=request, overrides=overrides), progress=False)


def run_continualflow(base, request, data, **cfg):
    model = ContinualFlow(ContinualFlowConfig(**cfg)).unlearn(base, request, data)
    return model, model.info["unlearn"]["seconds"]


def proxy_floor(base, request, data, cfg: dict) -> float:
    """Images: the judge's forget rate of ContinualFlow's own target, the reweighted pool.

    What the method can reach with this proxy: samples the judge calls forget-like but the proxy
    does not are kept by the target itself."""
    method = ContinualFlow(ContinualFlowConfig(**cfg))
    energy = energy_for_request(request, data, form=method.config.energy, task=data.name)
    pool = method.draw_pool(base, [(method.config.lam, energy)])
    hit = torch.isin(load_judge(data.name, verbose=False).predict(pool.x)[:, 0], torch.tensor([data.class_id(c) for c in request.classes])).float()
    return float((pool.w * hit).sum() / pool.w.sum())


def run_task(name: str) -> list[dict]:
    task, request, base = base_for(name)
    retrain = retrain_for(name)
    data = load_dataset(task)
    cf = {**CF[data.kind], **TASK_CF.get(name, {})}
    t0 = time.perf_counter()
    ft = Finetune(FinetuneConfig(steps=cf["steps"], batch=cf["batch"], lr=cf.get("lr"), lr_schedule=cf.get("lr_schedule", "constant"))).unlearn(base, request, data)
    ft_seconds = time.perf_counter() - t0
    cfm, cf_seconds = run_continualflow(base, request, data, **cf)
    retrain_s = retrain.info["train_seconds"]
    rows = []
    for label, model, seconds in (("base", base, base.info["train_seconds"]), ("retrain", retrain, retrain_s), ("finetune", ft, ft_seconds), ("continualflow", cfm, cf_seconds)):
        m = evaluate(model, request, n_per_prompt=N_PER_PROMPT)
        rows.append({"task": name, "model": label, "seconds": seconds, "time_vs_retrain": seconds / retrain_s, **m})
    rows[-1]["cf"] = {k: v for k, v in cfm.info["unlearn"].items() if k not in ("config",)}
    if data.kind == "images":
        rows[-1]["cf"]["proxy_floor"] = proxy_floor(base, request, data, cf)
    return rows


def table(rows: list[dict]) -> str:
    if "mmd_retain" in rows[0]:
        head = f"{'model':<14} {'forget mass':>11} {'off-support':>11} {'retain MMD':>10} {'MMD/retrain':>11} {'time s':>8} {'t/retrain':>9}"
        ref = next(r["mmd_retain"] for r in rows if r["model"] == "retrain")
        lines = [f"{r['model']:<14} {r['forget_mass']:>11.4f} {r['off_support']:>11.4f} {r['mmd_retain']:>10.5f} {r['mmd_retain'] / ref:>11.2f} {r['seconds']:>8.1f} {r['time_vs_retrain']:>9.2f}" for r in rows]
        lines.append(f"{'real vs real':<14} {'':>11} {'':>11} {rows[0]['mmd_floor']:>10.5f}   (MMD² noise at this sample size)")
    else:
        head = f"{'model':<14} {'forget rate':>11} {'FD retain':>9} {'FD/retrain':>10} {'retain acc':>10} {'time s':>8} {'t/retrain':>9}"
        ref = next(r["fd_retain"] for r in rows if r["model"] == "retrain")
        lines = [f"{r['model']:<14} {r['forget_rate']:>11.4f} {r['fd_retain']:>9.3f} {r['fd_retain'] / ref:>10.2f} {r.get('retain_accuracy', float('nan')):>10.3f} {r['seconds']:>8.1f} {r['time_vs_retrain']:>9.2f}" for r in rows]
    return "\n".join([f"== {rows[0]['task']} ==", head, *lines])


def sweep(name: str) -> list[dict]:
    task, request, base = base_for(name)
    data = load_dataset(task)
    out = []
    for lam in LAMBDAS:
        model, seconds = run_continualflow(base, request, data, **{**CF[data.kind], **SWEEP_CF[data.kind], "lam": lam})
        m = evaluate(model, request, n_per_prompt=N_PER_PROMPT)
        forget = m.get("forget_mass", m.get("forget_rate"))
        quality = m.get("mmd_retain", m.get("fd_retain"))
        out.append({"task": name, "lam": lam, "forget": forget, "quality": quality, "ess_fraction": model.info["unlearn"]["ess_fraction"], "seconds": seconds})
        print(f"  {name} lam={lam:<4} forget={forget:.4f} quality={quality:.5f} ess/M={out[-1]['ess_fraction']:.3f} ({seconds:.0f}s)", flush=True)
    return out


def plot_sweep(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({r["task"] for r in results})
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        rs = [r for r in results if r["task"] == name]
        lam = [r["lam"] for r in rs]
        ax.plot(lam, [r["forget"] for r in rs], "o-", color="tab:red", label="forget mass/rate")
        ax.set_xscale("log")
        ax.set_xlabel("λ")
        ax.set_ylabel("forget mass / rate", color="tab:red")
        ax.set_ylim(0, 1.5 * max(r["forget"] for r in rs))  # from zero: small wiggles stay small
        twin = ax.twinx()
        twin.plot(lam, [r["quality"] for r in rs], "s--", color="tab:blue")
        twin.set_ylim(0, 1.5 * max(r["quality"] for r in rs))
        twin.set_ylabel("retain MMD²" if "ring" in name else "FD on retained classes", color="tab:blue")
        ax.set_title(f"ContinualFlow λ sweep: {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--sweep", default="ring8,digits-uncond", help="tasks for the λ sweep ('' for none)")
    p.add_argument("--out", default="runs/continualflow")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in [t for t in args.tasks.split(",") if t]:
        rows = run_task(name)
        results += rows
        print(table(rows), flush=True)
        cf = rows[-1]["cf"]
        floor = f" judge forget rate of the reweighted pool (proxy floor)={cf['proxy_floor']:.4f}" if "proxy_floor" in cf else ""
        print(f"   continualflow: Z={cf['Z']:.3f} ESS/M={cf['ess_fraction']:.3f} cost={cf['cost_seconds']}{floor}", flush=True)
    sweeps = []
    for name in [t for t in args.sweep.split(",") if t]:
        sweeps += sweep(name)
    if sweeps:
        plot_sweep(sweeps, out / "lambda_sweep.png")
        print(f"λ sweep plot: {out / 'lambda_sweep.png'}")
    (out / "results.json").write_text(json.dumps({"tasks": results, "sweep": sweeps}, indent=2, default=str))


if __name__ == "__main__":
    main()
