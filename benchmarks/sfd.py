"""SFD benchmark: digits DDPM, forget class 3 → override 8, distilled into a one-step generator.

Rows: the teacher (its recipe sampler: DDIM, ≥ 50 steps, guidance), retrain (teacher recipe on the
retained classes), plain distillation (SiD, no forgetting) and SFD, all judged by
``genunlearn.eval.evaluate.evaluate``; the override share and the mean judge probability of the
forget class on forget-prompt samples come from the same judge. The number of iterations is picked
from a measured s/iteration so that one distillation fits the budget; both distillations run that
many iterations. Sampling throughput of G and of the teacher's sampler is measured in this process
on the same batch. SFD snapshots on a log-spaced schedule give the UA / retained-FD curve (PNG).

    nice -n 5 python benchmarks/sfd.py [--budget-min 15] [--max-iterations 3000] [--n-per-prompt 100] [--out runs/sfd]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from genunlearn.eval.evaluate import evaluate
from genunlearn.eval.judge import load_judge
from genunlearn.forget import ForgetRequest
from genunlearn.methods import get_method
from genunlearn.recipes import TrainJob, train_cached

FORGET, OVERRIDE = 3, 8
PROBE_ITERATIONS = 10


class NoData:
    """Handed to SFD in place of the dataset: any access raises, so the run is provably data-free."""

    def __getattribute__(self, name):
        raise AssertionError(f"SFD read data.{name}")


def forget_prompt_stats(model, judge, n: int, seed: int) -> dict:
    """Override share and mean judge probability of the forget class on forget-prompt samples."""
    x = model.sample(n, model.cond_for_labels(torch.full((n,), FORGET)), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        logits = judge.net.split_heads(judge.net(x.clamp(-1, 1)))[0]
    return {"override_share": float((logits.argmax(1) == OVERRIDE).float().mean()), "p_forget": float(logits.softmax(1)[:, FORGET].mean())}


def judge_row(name: str, model, request, judge, n: int, seconds: float | None) -> dict:
    m = evaluate(model, request, n_per_prompt=n, judge=judge)
    retained = {k: v for k, v in m["per_prompt_accuracy"].items() if k != str(FORGET)}
    return {"name": name, "UA": 100 * m["unlearning_accuracy"], **{k: 100 * v for k, v in forget_prompt_stats(model, judge, n, seed=1).items()},
            "retain_acc": 100 * m["retain_accuracy"], "min_prompt_acc": 100 * min(retained.values()), "fd": m["fd_retain"], "fd_floor": m["fd_floor"],
            "kid": m["kid_retain"], "seconds": seconds, "per_prompt": m["per_prompt_accuracy"]}


def throughput(model, n: int, repeats: int) -> float:
    """Images/s of ``model.sample`` on one batch of ``n`` (best of ``repeats``: least disturbed by other load)."""
    cond = model.cond_for_labels(torch.arange(n) % 10)
    best = float("inf")
    for r in range(repeats):
        t = time.perf_counter()
        model.sample(n, cond, generator=torch.Generator().manual_seed(r), batch_size=n)
        best = min(best, time.perf_counter() - t)
    return n / best


def log_steps(n: int, points: int = 9) -> tuple[int, ...]:
    return tuple(sorted({0, *np.unique(np.round(np.geomspace(1, n, points)).astype(int)).tolist()}))


def table(rows: list[dict], n: int, teacher: dict) -> str:
    lines = [f"\n### Digits DDPM, forget 3 → override 8 ({n} samples per prompt; FD real-vs-real floor {rows[0]['fd_floor']:.3f})\n",
             "| model | NFE | UA % | → 8 % | p(3) % | retained acc % | worst retained % | FD retained | FD / teacher | KID | train/distil s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = "—" if r["seconds"] is None else f"{r['seconds']:.0f}"
        lines.append(f"| {r['name']} | {r['nfe']} | {r['UA']:.1f} | {r['override_share']:.1f} | {r['p_forget']:.2f} | {r['retain_acc']:.1f} | {r['min_prompt_acc']:.1f} | "
                     f"{r['fd']:.3f} | {r['fd'] / teacher['fd']:.2f} | {r['kid']:.4f} | {s} |")
    return "\n".join(lines)


def plot(curve: list[dict], teacher: dict, plain: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [max(c["step"], 0.7) for c in curve]  # step 0 (G = teacher weights) drawn at the left edge
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, [c["UA"] for c in curve], marker="o", label="UA % (forget 3)")
    ax.plot(steps, [c["override_share"] for c in curve], marker="^", label="→ 8 %")
    ax.set_xscale("log")
    ax.set_xlabel("SFD iterations (0 drawn at the left edge)")
    ax.set_ylabel("%")
    ax2 = ax.twinx()
    ax2.plot(steps, [c["fd"] for c in curve], marker="s", color="gray", ls="--", label="FD retained")
    ax2.axhline(teacher["fd"], color="gray", ls=":", label="teacher FD")
    ax2.axhline(plain["fd"], color="black", ls="-.", lw=0.8, label="plain distillation FD")
    ax2.set_ylabel("FD retained (judge features)")
    ax.legend(loc="center left")
    ax2.legend(loc="center right")
    ax.set_title("SFD on digits: forget 3 → 8, one-step generator")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-min", type=float, default=15.0, help="Wall-clock budget of one distillation.")
    ap.add_argument("--max-iterations", type=int, default=3000)
    ap.add_argument("--n-per-prompt", type=int, default=100)
    ap.add_argument("--throughput-batch", type=int, default=500)
    ap.add_argument("--out", default="runs/sfd")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", nargs="*", default=[], help="SFD options key=value for both distillations.")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    request = ForgetRequest.of_classes(FORGET)
    teacher = train_cached(TrainJob("digits", "diffusion"), progress=False)
    retrain = train_cached(TrainJob("digits", "diffusion", forget=request), progress=False)
    judge = load_judge("digits", verbose=False)
    options = dict(s.split("=", 1) for s in args.set)

    probe = get_method("sfd", options).unlearn(teacher, request, NoData(), budget=PROBE_ITERATIONS)
    s_per_it = probe.info["unlearn"]["seconds"] / PROBE_ITERATIONS
    iterations = int(min(args.max_iterations, 0.9 * args.budget_min * 60 / s_per_it))
    print(f"probe: {s_per_it:.3f} s/iteration → {iterations} iterations per distillation (budget {args.budget_min:g} min)", flush=True)

    plain = get_method("sfd", {**options, "distill_only": True}).unlearn(teacher, request, NoData(), budget=iterations)
    print(f"plain distillation: {plain.info['unlearn']['seconds']:.0f}s", flush=True)
    snaps: dict[int, object] = {}
    schedule = log_steps(iterations)
    sfd = get_method("sfd", options).unlearn(teacher, request, NoData(), budget=iterations, snapshot_steps=schedule, on_snapshot=lambda k, m: snaps.update({k: m}))
    sfd_s = sfd.info["unlearn"]["seconds"]
    print(f"SFD: {sfd_s:.0f}s ({sfd_s / iterations:.3f} s/iteration)", flush=True)

    steps = teacher.process.steps
    rows = [judge_row("teacher", teacher, request, judge, args.n_per_prompt, teacher.info["train_seconds"]),
            judge_row("retrain", retrain, request, judge, args.n_per_prompt, retrain.info["train_seconds"]),
            judge_row("plain distillation (SiD)", plain, request, judge, args.n_per_prompt, plain.info["unlearn"]["seconds"]),
            judge_row("SFD", sfd, request, judge, args.n_per_prompt, sfd_s)]
    for r in rows:
        r["nfe"] = 1 if "SiD" in r["name"] or r["name"] == "SFD" else f"{steps}×2"
    curve = [{"step": k, **{key: judge_row(f"step {k}", m, request, judge, args.n_per_prompt, None)[key] for key in ("UA", "override_share", "fd", "retain_acc")}} for k, m in sorted(snaps.items())]

    n = args.throughput_batch
    g_ips, t_ips = throughput(sfd, n, repeats=5), throughput(teacher, n, repeats=2)
    print(table(rows, args.n_per_prompt, rows[0]))
    print(f"\nsampling throughput (batch {n}, same process): one-step G {g_ips:.0f} images/s; teacher DDIM {steps} steps, guidance "
          f"{teacher.process.guidance:g} ({2 * steps} NFE): {t_ips:.1f} images/s → {g_ips / t_ips:.0f}× faster")
    print(f"distillation: {iterations} iterations, batch {sfd.info['unlearn']['config']['batch_size']}+{sfd.info['unlearn']['config']['batch_size']}, "
          f"SFD {sfd_s:.0f}s, plain {plain.info['unlearn']['seconds']:.0f}s (data-free: the dataset handed in raises on access)")
    print("\n| SFD iteration | UA % | → 8 % | retained acc % | FD retained |\n|---|---|---|---|---|")
    for c in curve:
        print(f"| {c['step']} | {c['UA']:.1f} | {c['override_share']:.1f} | {c['retain_acc']:.1f} | {c['fd']:.3f} |")
    print("(snapshots before the last iteration are the raw generator; the last row is the returned model)")
    plot(curve, rows[0], rows[2], out / "sfd-curve.png")
    report = {"rows": rows, "curve": curve, "iterations": iterations, "probe_s_per_iteration": s_per_it, "throughput": {"generator": g_ips, "teacher": t_ips, "batch": n},
              "config": sfd.info["unlearn"]["config"], "teacher_key": teacher.info["key"], "retrain_key": retrain.info["key"]}
    (out / "results.json").write_text(json.dumps(report, indent=1, default=float))
    print(f"\nwrote {out}/results.json and sfd-curve.png ({time.perf_counter() - t_all:.0f}s)")


if __name__ == "__main__":
    main()
