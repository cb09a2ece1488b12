"""ContinualFlow against base, retrain (gold standard) and fine-tune on 2D and digits tasks.

Every row is judged by ``genunlearn.eval.evaluate`` the same way. Base and retrain models come
from the recipe cache (trained on first use). Times: base/retrain = their training seconds;
finetune = its wall time; ContinualFlow = its recorded cost (energy proxy training, even when the
proxy was reloaded from the cache, + pool sampling + fine-tuning).

Parts (``--parts``; rows are cached in ``OUT/rows.json``, so a rerun resumes):
* ``digits``: issue 19 target 1. Per digits task, ContinualFlow tries the settings of ``GRID`` on
  the validation split (seed 0); the pick (the lowest share of class-3 prompts still drawing a 3
  with FD ≤ 1.2× retrain and time ≤ 20 % of retrain, see ``pick``) is reported on the test split over 3 seeds. The
  retrain time is timed in the same run (``RETRAIN_TIMING_STEPS`` recipe steps, scaled up).
* ``rule``: target 2/3. The vanishing-condition Z-ratio test on bases of 25 % (the quick suite's)
  and 100 % of the recipe: Z_c / max Z per class, class 8's prompt accuracy before and after, and
  the quick-suite cell (default config, 25 % budget) at the old τ_c = 0.1 and at the rule's ½.
* ``reverse``: target 4. Composed mode: forget A, forget B, restore A with −F_A (ring8 and
  unconditional digits); the mass of A and B after each step.
* ``tasks``: the 2D tables of the earlier benchmark (``--tasks``) and the λ sweep (``--sweep``).

    nice -n 5 python benchmarks/continualflow.py --parts digits,rule,reverse [--out runs/continualflow]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from genunlearn.io.weights import atomic_write_text
from genunlearn.data import load_dataset
from genunlearn.forget.energy import energy_for_request
from genunlearn.eval.judge import load_judge
from genunlearn.eval.evaluate import evaluate
from genunlearn.forget.request import ForgetRequest
from genunlearn.methods.continualflow import ContinualFlow, ContinualFlowConfig
from genunlearn.methods.finetune import Finetune, FinetuneConfig
from genunlearn.generative.recipes import TrainJob, train_cached
from common import (
    Rows,
    fmt_mean_sd,
    pick_setting,
    record_pick,
)  # benchmarks/common.py (the script's folder is on the path)

TASKS = {
    "ring8": ("ring8", ForgetRequest.of_classes(0, 1), {}),
    "checkerboard": ("checkerboard", ForgetRequest("energy", energy="quadrant"), {}),
    "moons": ("moons", ForgetRequest.of_classes("upper"), {}),
    "circles": ("circles", ForgetRequest.of_classes("inner"), {}),
    "digits-uncond": ("digits", ForgetRequest.of_classes(3), {"conditional": False}),
    "digits-cond": ("digits", ForgetRequest.of_classes(3), {}),
}
# ContinualFlow and fine-tune share optimiser family, step budget and batch per task family
CF = {
    "points": {"lam": 5.0, "pool": 10000, "steps": 600, "batch": 512},
    "images": {"lam": 5.0, "pool": 5000, "steps": 300, "batch": 128, "lr": 1e-3, "lr_schedule": "cosine"},
}
TASK_CF = {"checkerboard": {"lam": 20.0}}  # the region energy's soft edge leaves ~1 % at λ = 5 (measured)
N_PER_PROMPT = 300  # images: 300 samples per prompt resolve a class still drawn at 0.3 %; 2D: 50× as many points
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
    """Images: the share of ContinualFlow's own target, the reweighted pool, the judge calls the
    forgotten class.

    What the method can reach with this proxy: samples the judge calls forget-like but the proxy
    does not are kept by the target itself."""
    method = ContinualFlow(ContinualFlowConfig(**cfg))
    energy = energy_for_request(request, data, form=method.config.energy, task=data.name)
    pool = method.draw_pool(base, [(method.config.lam, energy)])
    hit = torch.isin(
        load_judge(data.name, verbose=False).predict(pool.x)[:, 0],
        torch.tensor([data.class_id(c) for c in request.classes]),
    ).float()
    return float((pool.w * hit).sum() / pool.w.sum())


def run_task(name: str) -> list[dict]:
    task, request, base = base_for(name)
    retrain = retrain_for(name)
    data = load_dataset(task)
    cf = {**CF[data.kind], **TASK_CF.get(name, {})}
    t0 = time.perf_counter()
    ft = Finetune(
        FinetuneConfig(
            steps=cf["steps"], batch=cf["batch"], lr=cf.get("lr"), lr_schedule=cf.get("lr_schedule", "constant")
        )
    ).unlearn(base, request, data)
    ft_seconds = time.perf_counter() - t0
    cfm, cf_seconds = run_continualflow(base, request, data, **cf)
    retrain_s = retrain.info["train_seconds"]
    rows = []
    for label, model, seconds in (
        ("base", base, base.info["train_seconds"]),
        ("retrain", retrain, retrain_s),
        ("finetune", ft, ft_seconds),
        ("continualflow", cfm, cf_seconds),
    ):
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
        lines = [
            f"{r['model']:<14} {r['forget_mass']:>11.4f} {r['off_support']:>11.4f} {r['mmd_retain']:>10.5f} {r['mmd_retain'] / ref:>11.2f} {r['seconds']:>8.1f} {r['time_vs_retrain']:>9.2f}"
            for r in rows
        ]
        lines.append(
            f"{'real vs real':<14} {'':>11} {'':>11} {rows[0]['mmd_floor']:>10.5f}   (MMD² noise at this sample size)"
        )
    else:
        head = f"{'model':<14} {'class still drawn':>17} {'FD retain':>9} {'FD/retrain':>10} {'retain acc':>10} {'time s':>8} {'t/retrain':>9}"
        ref = next(r["fd_retain"] for r in rows if r["model"] == "retrain")
        lines = [
            f"{r['model']:<14} {r['forgotten_class_still_drawn']:>17.4f} {r['fd_retain']:>9.3f} {r['fd_retain'] / ref:>10.2f} {r.get('retain_accuracy', float('nan')):>10.3f} {r['seconds']:>8.1f} {r['time_vs_retrain']:>9.2f}"
            for r in rows
        ]
    return "\n".join([f"== {rows[0]['task']} ==", head, *lines])


def sweep(name: str) -> list[dict]:
    task, request, base = base_for(name)
    data = load_dataset(task)
    out = []
    for lam in LAMBDAS:
        model, seconds = run_continualflow(base, request, data, **{**CF[data.kind], **SWEEP_CF[data.kind], "lam": lam})
        m = evaluate(model, request, n_per_prompt=N_PER_PROMPT)
        forget = m.get("forget_mass", m.get("forgotten_class_still_drawn"))
        quality = m.get("mmd_retain", m.get("fd_retain"))
        out.append(
            {
                "task": name,
                "lam": lam,
                "forget": forget,
                "quality": quality,
                "ess_fraction": model.info["unlearn"]["ess_fraction"],
                "seconds": seconds,
            }
        )
        print(
            f"  {name} lam={lam:<4} forget={forget:.4f} quality={quality:.5f} ess/M={out[-1]['ess_fraction']:.3f} ({seconds:.0f}s)",
            flush=True,
        )
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


# --- issue 19 -------------------------------------------------------------------------------------
SEEDS = (0, 1, 2)
RETRAIN_TIMING_STEPS = 200
TARGET = {"forgotten_class_still_drawn": 0.005, "fd_vs_retrain": 1.2, "time_vs_retrain": 0.2}
_IMG = {"lam": 5.0, "batch": 128, "lr_schedule": "cosine"}
# four settings (a contended machine: the fine-tune baseline is left out of the digits part); smaller
# pools leave room for steps within 20 % of retrain
GRID = [
    {**_IMG, "pool": 5000, "steps": 300, "lr": 1e-3},  # the earlier benchmark's setting
    {**_IMG, "pool": 2000, "steps": 500, "lr": 1e-3, "vanishing_share": 0.5},  # share: conditional models only
    {**_IMG, "pool": 1000, "steps": 600, "lr": 1e-3, "vanishing_share": 0.75},
    {**_IMG, "pool": 2000, "steps": 500, "lr": 2e-3, "vanishing_share": 0.75},
]


def retrain_seconds(name: str) -> float:
    """The retrain recipe's wall time, timed now: RETRAIN_TIMING_STEPS steps, scaled to the recipe's."""
    from genunlearn.generative.recipes import recipe_for

    task, request, overrides = TASKS[name]
    short = train_cached(
        TrainJob(task, "flow", forget=request, steps=RETRAIN_TIMING_STEPS, overrides=overrides),
        progress=False,
        use_cache=False,
    )
    return short.info["train_seconds"] * recipe_for(task, "flow").train["steps"] / RETRAIN_TIMING_STEPS


def image_metrics(model, request, split: str, seed: int) -> dict:
    m = evaluate(model, request, n_per_prompt=N_PER_PROMPT, split=split, seed=seed)
    keep = (
        "forgotten_class_still_drawn",
        "fd_retain",
        "fd_floor",
        "retain_accuracy",
        "per_prompt_accuracy",
        "class_histogram",
    )
    return {k: m[k] for k in keep if k in m}


def cf_log(model) -> dict:
    u = model.info["unlearn"]
    return {
        k: u[k]
        for k in ("Z", "ess_fraction", "Z_ratio", "Z_ratio_se", "vanishing_conditions", "cost_seconds")
        if k in u
    }


def pick(rows: list[dict], retrain_fd: float) -> int:
    """Index of the setting to report: the lowest val share of the class still drawn (then FD) among
    those within the FD and time targets; if none, within the FD target; else over all."""
    fd_ok = lambda i: rows[i]["fd_retain"] <= TARGET["fd_vs_retrain"] * retrain_fd  # noqa: E731
    time_ok = lambda i: rows[i]["time_vs_retrain"] <= TARGET["time_vs_retrain"]  # noqa: E731
    return pick_setting(
        range(len(rows)), lambda i: (rows[i]["forgotten_class_still_drawn"], rows[i]["fd_retain"]), (fd_ok, time_ok)
    )


def digits_part(name: str, rows: Rows) -> dict:
    task, request, base = base_for(name)
    retrain, data = retrain_for(name), load_dataset(task)
    t_retrain = rows.get(f"{name}/retrain_seconds", lambda: retrain_seconds(name))
    print(
        f"== {name}: retrain timed now: {t_retrain:.0f} s (recipe steps, contended machine; its recorded training took {retrain.info['train_seconds']:.0f} s) ==",
        flush=True,
    )
    val_retrain = rows.get(f"{name}/val/retrain", lambda: image_metrics(retrain, request, "val", 0))
    grid = (
        GRID if base.conditional else [{k: v for k, v in cfg.items() if k != "vanishing_share"} for cfg in GRID]
    )  # no conditions: no share
    tried = []
    for i, cfg in enumerate(grid):

        def compute(cfg=cfg):
            model, seconds = run_continualflow(base, request, data, **cfg, seed=0)
            return {
                **image_metrics(model, request, "val", 0),
                "seconds": seconds,
                "time_vs_retrain": seconds / t_retrain,
                **cf_log(model),
            }

        r = rows.get(f"{name}/val/{i}", compute)
        tried.append(r)
        print(
            f"  val {json.dumps(cfg)}: class still drawn {r['forgotten_class_still_drawn']:.4f} FD {r['fd_retain']:.2f} ({r['fd_retain'] / val_retrain['fd_retain']:.2f}x retrain) t/retrain {r['time_vs_retrain']:.3f}",
            flush=True,
        )
    cfg = grid[pick(tried, val_retrain["fd_retain"])]
    if name == "digits-cond":  # the class-conditional image flow is the kind's default
        record_pick("flow", "continualflow", cfg, "benchmarks/continualflow.py (conditional digits flow, forget 3)")
    print(f"  picked: {json.dumps(cfg)}", flush=True)
    test = {
        "base (seed 0)": [
            rows.get(
                f"{name}/test/base/0",
                lambda: {**image_metrics(base, request, "test", 0), "seconds": base.info["train_seconds"]},
            )
        ]
    }
    for seed in SEEDS:
        test.setdefault("retrain", []).append(
            rows.get(
                f"{name}/test/retrain/{seed}",
                lambda: {**image_metrics(retrain, request, "test", seed), "seconds": t_retrain},
            )
        )

        def compute(seed=seed):
            model, seconds = run_continualflow(base, request, data, **cfg, seed=seed)
            return {**image_metrics(model, request, "test", seed), "seconds": seconds, **cf_log(model)}

        test.setdefault("continualflow", []).append(
            rows.get(f"{name}/test/{json.dumps(cfg, sort_keys=True)}/{seed}", compute)
        )
    floor = rows.get(
        f"{name}/proxy_floor/{json.dumps(cfg, sort_keys=True)}", lambda: proxy_floor(base, request, data, cfg)
    )
    print(digits_table(name, test, t_retrain, floor), flush=True)
    return test


def ms(values) -> str:
    return fmt_mean_sd(values, ".4f")


def digits_table(name: str, test: dict, t_retrain: float, floor: float) -> str:
    ref = torch.tensor([r["fd_retain"] for r in test["retrain"]]).mean()
    lines = [
        f"== {name}: test split, seeds {list(SEEDS)}, {N_PER_PROMPT} samples per prompt; times contended, retrain timed in this run ==",
        f"{'model':<14} {'class still drawn':>17} {'FD retain':>17} {'FD/retrain':>10} {'retain acc':>17} {'class-8 acc':>11} {'t/retrain':>9}",
    ]
    for label, rs in test.items():
        fd = torch.tensor([r["fd_retain"] for r in rs])
        acc = ms([r["retain_accuracy"] for r in rs]) if "retain_accuracy" in rs[0] else "—"
        acc8 = (
            f"{torch.tensor([r['per_prompt_accuracy']['8'] for r in rs]).mean():.3f}"
            if "per_prompt_accuracy" in rs[0]
            else "—"
        )
        t = torch.tensor([r["seconds"] for r in rs]).mean() / t_retrain
        lines.append(
            f"{label:<14} {ms(r['forgotten_class_still_drawn'] for r in rs):>17} {ms(fd):>17} {fd.mean() / ref:>10.2f} {acc:>17} {acc8:>11} {t:>9.3f}"
        )
    cf = test.get("continualflow", [])
    if cf:
        lines.append(
            f"   continualflow: proxy floor (share of the reweighted pool the judge calls the class, seed 0) {floor:.4f}; FD floor (real vs real) {ms(r['fd_floor'] for r in cf)}"
        )
        if "Z_ratio" in cf[0]:
            lines.append(
                f"   Z_c / max Z (seed 0): {[round(z, 3) for z in cf[0]['Z_ratio']]}; vanishing {cf[0]['vanishing_conditions']}"
            )
    return "\n".join(lines)


QUICK_STEPS, QUICK_BUDGET = (
    1000,
    250,
)  # the quick suite (scale 0.25): base steps, ContinualFlow's default 1000 steps scaled
RULE_N = 100  # samples per prompt in the rule part (resolves 1 %)


def rule_part(rows: Rows) -> None:
    """The quick-suite cell (default config, λ = 5, 25 % budget) at τ_c = 0.1 and at the rule's ½."""
    request, data = ForgetRequest.of_classes(3), load_dataset("digits")
    base = train_cached(TrainJob("digits", "flow", steps=QUICK_STEPS), progress=False)
    b = rows.get("rule/base", lambda: evaluate(base, request, n_per_prompt=RULE_N, split="test"))
    print(
        f"== quick-suite digits cell: base {QUICK_STEPS} steps, continualflow lam=5 defaults, {QUICK_BUDGET} steps; test split, {RULE_N} per prompt =="
    )
    print(
        f"base: class-3 prompt judged 3 {b['forgotten_class_still_drawn']:.3f}, class-8 prompt judged 8 {b['per_prompt_accuracy']['8']:.3f}, retain acc {b['retain_accuracy']:.3f}, FD {b['fd_retain']:.1f}"
    )
    print(
        f"{'tau_c':>6} {'seed':>4} {'Z_3/maxZ':>9} {'Z_8/maxZ':>9} {'min retained':>12} {'vanishing':>9} {'3s drawn':>11} {'class-8 acc':>11} {'retain acc':>10} {'FD':>6}"
    )
    for tau, seeds in ((0.1, SEEDS[:1]), (0.5, SEEDS)):  # τ_c = 0.1: one seed, to reproduce the failure
        for seed in seeds:

            def compute(tau=tau, seed=seed):
                model = ContinualFlow(ContinualFlowConfig(lam=5.0, tau_c=tau, seed=seed)).unlearn(
                    base, request, data, budget=QUICK_BUDGET
                )
                return {**evaluate(model, request, n_per_prompt=RULE_N, split="test", seed=seed), **cf_log(model)}

            r = rows.get(f"rule/{tau}/{seed}", compute)
            zr = r["Z_ratio"]
            print(
                f"{tau:>6} {seed:>4} {zr[3]:>9.3f} {zr[8]:>9.3f} {min(z for i, z in enumerate(zr) if i != 3):>12.3f} {str(r['vanishing_conditions']):>9} {r['forgotten_class_still_drawn']:>11.3f} {r['per_prompt_accuracy']['8']:>11.3f} {r['retain_accuracy']:>10.3f} {r['fd_retain']:>6.1f}",
                flush=True,
            )


REVERSE = {
    "ring8": ("ring8", {}, (0, 4), {"pool": 5000, "steps": 400, "batch": 512}),  # base: REVERSE_RING8_STEPS (CPU time)
    "digits-uncond": (
        "digits",
        {"conditional": False},
        (3, 5),
        {"pool": 2000, "steps": 500, "batch": 128, "lr": 1e-3, "lr_schedule": "cosine"},
    ),
}


REVERSE_RING8_STEPS = 1000


def reverse_part(name: str, rows: Rows) -> None:
    """Composed mode: forget A, then B, then restore A with −F_A; mass of A and B after each."""
    from genunlearn.forget.energy import classifier_energy

    task, overrides, (a, b), cfg = REVERSE[name]
    base = train_cached(
        TrainJob(task, "flow", overrides=overrides, steps=REVERSE_RING8_STEPS if task == "ring8" else None),
        progress=False,
    )
    data = load_dataset(task)
    ea, eb = (classifier_energy(data, [c]) for c in (a, b))

    def masses(model, seed):
        m = evaluate(model, None, n_per_prompt=RULE_N, split="test", seed=seed)
        share = m.get("component_mass") or m["class_histogram"]
        return {
            "A": share[a],
            "B": share[b],
            **(
                {"off_support": m["off_support"], "mmd": m["mmd_retain"]}
                if "off_support" in m
                else {"fd": m["fd_retain"]}
            ),
        }

    print(
        f"== reversibility, composed mode, {name}: A = class {a}, B = class {b}; test split, seeds {list(SEEDS)}; {json.dumps(cfg)} =="
    )
    steps = {}
    for seed in SEEDS:

        def compute(seed=seed):
            method = ContinualFlow(ContinualFlowConfig(mode="composed", lam=5.0, seed=seed, **cfg))
            one = method.unlearn_energy(base, ea)
            two = method.unlearn_energy(one, eb)
            back = method.unlearn_energy(two, ea.negated())
            again = method.unlearn_energy(
                back, eb.negated()
            )  # nothing left in force: the base itself, not sampled again
            same = again.process.name != "composed" and all(
                torch.equal(p, q) for p, q in zip(again.net.state_dict().values(), base.net.state_dict().values())
            )
            return {
                "base": masses(base, seed),
                "forget A": masses(one, seed),
                "forget A, B": masses(two, seed),
                "restore A (-F_A)": masses(back, seed),
                "last is base": same,
            }

        for k, v in rows.get(f"reverse/{name}/{seed}", compute).items():
            steps.setdefault(k, []).append(v)
    last = steps.pop("last is base")
    q = "mmd" if "mmd" in steps["base"][0] else "fd"
    print(f"{'model':<18} {'mass A':>17} {'mass B':>17} {q + ' (all)':>19}")
    for label, rs in steps.items():
        print(f"{label:<18} {ms(r['A'] for r in rs):>17} {ms(r['B'] for r in rs):>17} {ms(r[q] for r in rs):>19}")
    print(f"   then restoring B (-F_B) returns the base network itself, bit for bit: {all(last)}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="rule,digits,reverse", help="rule, digits, reverse, tasks (run in this order)")
    p.add_argument("--digits", default="digits-cond,digits-uncond")
    p.add_argument("--reverse", default="ring8,digits-uncond")
    p.add_argument("--tasks", default="ring8,checkerboard,moons,circles", help="part 'tasks': the 2D tables")
    p.add_argument("--sweep", default="ring8,digits-uncond", help="part 'tasks': tasks for the λ sweep ('' for none)")
    p.add_argument("--out", default="runs/continualflow")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = Rows(out / "rows.json")
    parts = args.parts.split(",")
    for part, names, run in (
        ("rule", "-", lambda _, r: rule_part(r)),
        ("digits", args.digits, digits_part),
        ("reverse", args.reverse, reverse_part),
    ):
        if part in parts:
            for name in [t for t in names.split(",") if t]:
                run(name, rows)
    if "tasks" not in parts:
        return
    results = []
    for name in [t for t in args.tasks.split(",") if t]:
        rows_ = run_task(name)
        results += rows_
        print(table(rows_), flush=True)
        cf = rows_[-1]["cf"]
        floor = (
            f" share of the reweighted pool the judge calls the class (proxy floor)={cf['proxy_floor']:.4f}"
            if "proxy_floor" in cf
            else ""
        )
        print(
            f"   continualflow: Z={cf['Z']:.3f} ESS/M={cf['ess_fraction']:.3f} cost={cf['cost_seconds']}{floor}",
            flush=True,
        )
    sweeps = []
    for name in [t for t in args.sweep.split(",") if t]:
        sweeps += sweep(name)
    if sweeps:
        plot_sweep(sweeps, out / "lambda_sweep.png")
        print(f"λ sweep plot: {out / 'lambda_sweep.png'}")
    atomic_write_text(out / "results.json", json.dumps({"tasks": results, "sweep": sweeps}, indent=2, default=str))


if __name__ == "__main__":
    main()
