"""f-DMU benchmark: erase "circle" (anchor: the sibling "square") from the shapes diffusion model and
measure when and how the choice of f-divergence matters (issue #18, items 4-5).

Three suites, all with the same budget per row (200 steps, batch 32, AdamW lr 1e-3 on the
conditioning path, 100 anchor images per anchor prompt drawn by the base with the row's seed):

* ``weights``: why the divergences coincide at ``div_scale=mean`` and differ at ``exact``. On one
  batch of 512 training triples at the base model, every closed form's per-sample gradient weight
  w_b = ∂g(K_b)/∂m_b (the loss gradient is mean_b w_b ∇m_b, m_b the per-sample MSE), normalised to
  mean 1: its spread, the share of the total weight on t < T/10, and the cosine between the batch
  gradient (conditioning parameters) and Concept Ablation's (mse). AdamW removes a constant factor,
  so only the *spread* of w_b across samples can change the update.
* ``closed``: mse (Concept Ablation), kl, hellinger, chi2 at ``--div-scale`` over ``--seeds``, no
  per-divergence tuning (each gets the one shared setting). Curves: at every snapshot the full metric
  set on a cheaper reference (``--n-curve`` samples per prompt), so the concept still shown and
  quality vs step; and quality interpolated at an equal concept still shown (``--levels``).
* ``variational``: js and kl f-GAN forms. Each variant is tuned on the **val** split over the same
  grid ``VAR_GRID`` (seed 0, no curves), the setting picked by ``pick`` is then run over ``--seeds``
  on the **test** split.

Metrics (``genunlearn.eval.concept``, references from one held-out split, never mixed): still shown
% = samples for prompts with "circle" judged a circle (lower is better); floor % = circles among the base's anchor images
(the objective's optimum ε(circle) = ε(square) leaves about this); colour % = colour kept on
"a <colour> circle"; Δshape = shape accuracy on prompts without "circle", points vs the base;
FD ratio = FD to prompt-matched held-out real images on those prompts over the base's. Mean ± sample
standard deviation over seeds. Finished rows are cached in ``OUT/rows/`` and reused on a rerun with the same settings.

    OMP_NUM_THREADS=1 python benchmarks/fdivergence.py --suite weights
    OMP_NUM_THREADS=1 python benchmarks/fdivergence.py --suite closed --div-scale exact --seeds 0,1,2
    OMP_NUM_THREADS=1 python benchmarks/fdivergence.py --suite variational --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

import torch

from common import fmt_mean_sd, pick_setting  # benchmarks/common.py (the script's folder is on the path)
from genunlearn.io.weights import atomic_write_text
from genunlearn.eval.concept import concept_reference, evaluate_concept
from genunlearn.eval.renamed import current_names
from genunlearn.eval.judge import load_judge
from genunlearn.forget.request import ForgetRequest
from genunlearn.generative.model import GenerativeModel
from genunlearn.methods import divergences, get_method
from genunlearn.methods.common import copy_net, select_params
from genunlearn.methods.fdiv import DEFAULT_LR, kl_weights, make_anchor_pool, prompt_pairs
from genunlearn.methods.lifecycle import Snapshots
from genunlearn.generative.recipes import TrainJob, train_cached

CONCEPT, ANCHOR = "circle", "square"
CLOSED = ["mse", "kl", "hellinger", "chi2"]
WEIGHT_DIVERGENCES = ["mse", "kl", "jeffreys", "hellinger", "chi2", "alpha:0.5", "alpha:2"]
VARIATIONAL = ["js", "kl"]
# The variational search, the same for every variant: the model's lr (lr ratio), the critic's strength
# (its lr, updates per model update, warm-up) and what it sees (ε only, or ε with x_t and t).
VAR_GRID = {
    "A default": {},
    "B strong critic": {"critic_conditioning": "xt_t", "critic_lr": 1e-3, "critic_steps": 3, "critic_warmup": 100},
    "C strong critic, lr/10": {
        "critic_conditioning": "xt_t",
        "critic_lr": 1e-3,
        "critic_steps": 3,
        "critic_warmup": 100,
        "lr": 1e-4,
    },
    "D lr/10": {"lr": 1e-4},
}
KEYS = [
    ("concept_still_shown", 100, "still shown %"),
    ("attribute_preservation", 100, "colour %"),
    ("shape_accuracy_delta_points", 1, "Δshape"),
    ("fd_real_ratio_to_base", 1, "FD ratio"),
]


def ms(values, spec=".1f") -> str:
    return fmt_mean_sd(values, spec)


class Bench:
    """The base, judge, request and the per-split references shared by every row."""

    def __init__(self, args):
        self.args = args
        self.base = (
            GenerativeModel.from_pretrained(args.base) if args.base else train_cached(TrainJob("shapes", "diffusion"))
        )
        self.judge = load_judge("shapes", verbose=False)
        self.request = ForgetRequest("concept", concept=CONCEPT, anchor=ANCHOR)
        self.pairs = prompt_pairs(self.base.attributes, CONCEPT, ANCHOR)
        self.refs, self.pools = {}, {}
        self.out = Path(args.out)
        (self.out / "rows").mkdir(parents=True, exist_ok=True)
        print(f"base model {self.base.info['key']}; judge held-out accuracy {self.judge.test_accuracy}")

    def ref(self, split: str, curve: bool = False):
        """Final reference (``--n-per-prompt``, seed 0) or curve reference (``--n-curve``, seed 1)."""
        key = (split, curve)
        if key not in self.refs:
            a = self.args
            n, seed = (a.n_curve, 1) if curve else (a.n_per_prompt, 0)
            self.refs[key] = concept_reference(
                self.base, self.request, self.judge, n_per_prompt=n, seed=seed, steps=a.sample_steps, split=split
            )
        return self.refs[key]

    def pool(self, seed: int):
        if seed not in self.pools:
            p = make_anchor_pool(
                self.base, self.pairs, self.args.anchor_images, steps=self.args.sample_steps, guidance=3.0, seed=seed
            )
            self.pools[seed] = (p, float((self.judge.predict(p.x)[:, 0] == 0).float().mean()))
        return self.pools[seed]

    def run(self, label: str, values: dict, seed: int, split: str, curve: bool) -> dict:
        """One unlearning run, judged on ``split``; cached by its settings."""
        a = self.args
        values = {
            "steps": a.steps,
            "lr": DEFAULT_LR["conditioning"],
            "params": "conditioning",
            "batch_size": a.batch_size,
            **values,
            "seed": seed,
        }
        settings = {
            "values": values,
            "split": split,
            "curve": curve,
            "anchor_images": a.anchor_images,
            "n_eval": a.n_per_prompt,
            "n_curve": a.n_curve,
            "sample_steps": a.sample_steps,
            "snapshots": a.snapshots,
            "base": self.base.info["key"],
        }
        path = (
            self.out
            / "rows"
            / (hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12] + ".json")
        )
        if path.is_file():
            print(f"{label} seed {seed} ({split}): reused {path}")
            return current_names(json.loads(path.read_text()))
        pool, floor = self.pool(seed)
        curve_points, probe_seconds = [], [0.0]

        def probe(step, model):
            t = time.perf_counter()
            curve_points.append(
                {"step": step, **evaluate_concept(model, self.request, self.ref(split, curve=True), self.judge)}
            )
            probe_seconds[0] += time.perf_counter() - t

        t = time.perf_counter()
        model = get_method("fdiv", values).unlearn(
            self.base,
            self.request,
            anchor_pool=pool,
            callbacks=(Snapshots(probe, every=a.steps // a.snapshots),) if curve else (),
        )
        seconds = time.perf_counter() - t - probe_seconds[0]
        m = evaluate_concept(model, self.request, self.ref(split), self.judge)
        row = {
            "label": label,
            "seed": seed,
            "split": split,
            "settings": settings,
            "metrics": m,
            "curve": curve_points,
            "floor": floor,
            "seconds": seconds,
        }
        atomic_write_text(path, json.dumps(row, indent=1))
        print(
            f"{label} seed {seed} ({split}): "
            + " ".join(f"{name} {scale * m[k]:.1f}" for k, scale, name in KEYS)
            + f" ({seconds:.0f}s)",
            flush=True,
        )
        return row

    def base_point(self, split: str) -> dict:
        """Step 0 of every curve: the base on the curve reference."""
        return {"step": 0, **evaluate_concept(self.base, self.request, self.ref(split, curve=True), self.judge)}


# --- weights -----------------------------------------------------------------------------------------
def weights(bench: Bench, n: int = 512) -> None:
    base, process = bench.base, bench.base.process
    pool, _ = bench.pool(0)
    g = torch.Generator().manual_seed(0)
    i = torch.randint(len(pool.x), (n,), generator=g)
    xt, t, _, _ = process.corrupt(pool.x[i], g)
    with torch.no_grad():
        target = process.predict_eps(base.net, xt, t, pool.anchor[i])
    net = copy_net(base.net, trainable=True)
    params = select_params(net, "conditioning")
    diff2 = (process.predict_eps(net, xt, t, pool.target[i]) - target).pow(2).flatten(1)
    m = diff2.mean(1)
    omega, d, early = kl_weights(process), diff2.shape[1], t < process.num_train_timesteps // 10

    def grad(w):
        gr = torch.autograd.grad((w * m).mean(), params, retain_graph=True)
        return torch.cat([x.flatten() for x in gr])

    g_mse = grad(torch.ones(n))
    print(
        f"{n} triples at the base, t ~ U{{0..{process.num_train_timesteps - 1}}}; w_b = ∂g(K_b)/∂m_b normalised to mean 1; cos = cosine of the batch gradient (conditioning params) with mse's / kl's at the same div_scale"
    )
    print(
        "| div_scale | divergence | K median | K max | w min | w max | w CV | weight share t < T/10 | cos with mse | cos with kl |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for scale in ("mean", "exact"):
        dk = torch.full((n,), 0.5) if scale == "mean" else omega[t] * d  # ∂K/∂m
        k = (m * dk).detach()
        g_kl = grad(dk / dk.mean())
        for name in WEIGHT_DIVERGENCES:
            if name == "mse":
                w = torch.ones(n)
            else:
                kk = k.clone().requires_grad_(True)
                (w,) = torch.autograd.grad(divergences.closed_form(name)(kk).sum(), kk)
                w = w * dk
            w = w / w.mean()
            gw = grad(w)
            cos = [float(torch.nn.functional.cosine_similarity(gw, ref, 0)) for ref in (g_mse, g_kl)]
            print(
                f"| {scale} | {name} | {k.median():.2g} | {k.max():.2g} | {w.min():.3f} | {w.max():.3f} | {w.std() / w.mean():.3f} | {float(w[early].sum() / w.sum()):.3f} | {cos[0]:.4f} | {cos[1]:.4f} |"
            )


# --- closed ------------------------------------------------------------------------------------------
def interpolate(points: list[dict], level: float) -> dict | None:
    """Step and quality where the concept still shown first falls to ``level`` (linear between snapshots)."""
    for p, q in zip(points, points[1:]):
        if q["concept_still_shown"] <= level < p["concept_still_shown"]:
            f = (p["concept_still_shown"] - level) / (p["concept_still_shown"] - q["concept_still_shown"])
            return {
                k: p[k] + f * (q[k] - p[k])
                for k in ("step", "attribute_preservation", "shape_accuracy_delta_points", "fd_real_ratio_to_base")
            }
    return None


def final_table(groups: dict[str, list[dict]], extra: str = "") -> str:
    lines = [
        "| row | seeds | still shown % | floor % | colour % | Δshape | Δcolour | FD ratio | FD vs base | wall s |"
        + extra,
        "|" + "---|" * (10 + extra.count("|")),
    ]
    for label, rs in groups.items():
        m = [r["metrics"] for r in rs]
        lines.append(
            f"| {label} | {','.join(str(r['seed']) for r in rs)} | {ms([100 * x['concept_still_shown'] for x in m])} | {ms([100 * r['floor'] for r in rs])} | {ms([100 * x['attribute_preservation'] for x in m])} "
            f"| {ms([x['shape_accuracy_delta_points'] for x in m])} | {ms([x['colour_accuracy_delta_points'] for x in m])} | {ms([x['fd_real_ratio_to_base'] for x in m], '.2f')} | {ms([x['fd_vs_base'] for x in m], '.2f')} | {ms([r['seconds'] for r in rs], '.0f')} |"
        )
    return "\n".join(lines)


def curve_tables(groups: dict[str, list[dict]], base_point: dict, levels: list[float]) -> str:
    steps = [p["step"] for p in next(iter(groups.values()))[0]["curve"]]
    out = [
        "Curves (curve reference; mean ± sample std over seeds; step 0 = the base): still shown % / colour % / Δshape / FD ratio",
        "| row | " + " | ".join(f"step {s}" for s in [0, *steps]) + " |",
        "|---|" + "---|" * (len(steps) + 1),
    ]
    b = base_point
    for label, rs in groups.items():
        cells = [f"{100 * b['concept_still_shown']:.0f} / {100 * b['attribute_preservation']:.0f} / 0.0 / 1.00"]
        for j in range(len(steps)):
            ps = [r["curve"][j] for r in rs]
            cells.append(
                " / ".join(
                    ms(
                        [scale * p[k] for p in ps],
                        ".2f" if k == "fd_real_ratio_to_base" else ".0f" if scale == 100 else ".1f",
                    )
                    for k, scale, _ in KEYS
                )
            )
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out += [
        "",
        "At equal erasure (interpolated between snapshots, per seed; n = seeds that reached the level):",
        "| row | level | n | step | colour % | Δshape | FD ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for level in levels:
        for label, rs in groups.items():
            hits = [h for h in (interpolate([{"step": 0, **b}, *r["curve"]], level / 100) for r in rs) if h]
            out.append(
                f"| {label} | ≤ {level:g} % | {len(hits)} | {ms([h['step'] for h in hits], '.0f')} | {ms([100 * h['attribute_preservation'] for h in hits])} | {ms([h['shape_accuracy_delta_points'] for h in hits])} | {ms([h['fd_real_ratio_to_base'] for h in hits], '.2f')} |"
            )
    return "\n".join(out)


def plot(groups: dict[str, list[dict]], base_point: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for label, rs in groups.items():
        steps = [0] + [p["step"] for p in rs[0]["curve"]]
        for ax, (k, scale, name) in zip(axes, [KEYS[0], KEYS[3], KEYS[2]]):
            ys = [[scale * base_point[k]] + [scale * p[k] for p in r["curve"]] for r in rs]
            mean = [statistics.mean(v) for v in zip(*ys)]
            ax.plot(steps, mean, marker=".", label=label)
            ax.set_xlabel("unlearning step")
            ax.set_ylabel(name + " (mean over seeds)")
    axes[0].legend(fontsize=7)
    fig.suptitle('f-DMU on shapes, "circle" → "square": concept still shown and quality vs step')
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def closed(bench: Bench) -> None:
    a = bench.args
    groups = {
        f"{d} ({a.div_scale})" if d != "mse" else "mse (concept_ablation)": [
            bench.run(d, {"divergence": d, "div_scale": a.div_scale}, s, "test", True) for s in a.seeds
        ]
        for d in a.divergences
    }
    bp = bench.base_point("test")
    base = bench.ref("test").base_metrics
    print(
        f"\nbase (test reference): circle prompts → {100 * base['concept_still_shown']:.1f}% circles, colour {100 * base['attribute_preservation']:.1f}%, shape acc on other prompts {100 * base['shape_accuracy_kept']:.1f}%, FD to real {base['fd_real']:.2f}"
    )
    print(
        f"every row: steps {a.steps}, batch {a.batch_size}, AdamW lr {DEFAULT_LR['conditioning']}, params conditioning, div_scale {a.div_scale}; no per-divergence tuning (1 setting each); seeds {a.seeds}"
    )
    print(final_table(groups))
    print()
    print(curve_tables(groups, bp, a.levels))
    plot(groups, bp, bench.out / f"closed-{a.div_scale}.png")
    print(f"plot: {bench.out / f'closed-{a.div_scale}.png'}")


# --- variational ---------------------------------------------------------------------------------------
def misses(m: dict) -> int:
    return (m["concept_still_shown"] > 0.05) + (m["attribute_preservation"] < 0.9) + (m["fd_real_ratio_to_base"] > 1.5)


def pick(rows: dict[str, dict]) -> str:
    """Fewest missed targets (still shown ≤ 5 %, colour ≥ 90 %, FD ratio ≤ 1.5), then the lowest concept still shown."""
    return pick_setting(rows, lambda s: (misses(rows[s]["metrics"]), rows[s]["metrics"]["concept_still_shown"]))


def variational(bench: Bench) -> None:
    a = bench.args
    picked, groups = {}, {}
    print(f"tuning on val (seed 0), the same {len(VAR_GRID)} settings per variant: {VAR_GRID}")
    tuned = {
        d: {
            s: bench.run(f"variational {d} [{s}]", {"divergence": d, "form": "variational", **v}, 0, "val", False)
            for s, v in VAR_GRID.items()
        }
        for d in a.divergences
    }
    for d, rows in tuned.items():
        picked[d] = pick(rows)
        print(f"\nval, variational {d}: picked {picked[d]!r} (fewest missed targets, then lowest concept still shown)")
        print(final_table({f"{d} [{s}]": [r] for s, r in rows.items()}))
    for d in a.divergences:
        groups[f"variational {d} [{picked[d]}]"] = [
            bench.run(
                f"variational {d} [{picked[d]}]",
                {"divergence": d, "form": "variational", **VAR_GRID[picked[d]]},
                s,
                "test",
                True,
            )
            for s in a.seeds
        ]
    bp = bench.base_point("test")
    print(
        f"\ntest, seeds {a.seeds}: the picked setting per variant (targets: still shown ≤ 5 %, colour ≥ 90 %, FD ratio ≤ 1.5)"
    )
    print(final_table(groups))
    print()
    print(curve_tables(groups, bp, a.levels))
    plot(groups, bp, bench.out / "variational.png")
    print(f"plot: {bench.out / 'variational.png'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", choices=["weights", "closed", "variational"], required=True)
    ap.add_argument(
        "--div-scale",
        choices=["mean", "exact"],
        default="exact",
        help="closed suite: K = MSE/2 (mean) or the Gaussian KL ω_t Σ Δε² (exact)",
    )
    ap.add_argument(
        "--divergences", default=None, help="comma-separated (default: closed mse,kl,hellinger,chi2; variational js,kl)"
    )
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--anchor-images", type=int, default=100, help="per anchor prompt")
    ap.add_argument("--n-per-prompt", type=int, default=12, help="judged samples per prompt, final evaluation")
    ap.add_argument("--n-curve", type=int, default=8, help="judged samples per prompt at each snapshot")
    ap.add_argument("--snapshots", type=int, default=5)
    ap.add_argument(
        "--levels", default="60,40", help="shares of the concept still shown (%%) at which quality is compared"
    )
    ap.add_argument("--sample-steps", type=int, default=20, help="DDIM steps of every evaluation and anchor sampler")
    ap.add_argument(
        "--base",
        default=None,
        help="a saved base model folder (default: the shapes diffusion recipe, trained or cached)",
    )
    ap.add_argument("--out", default="runs/fdivergence")
    args = ap.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.levels = [float(v) for v in args.levels.split(",")]
    args.divergences = (
        args.divergences.split(",") if args.divergences else (VARIATIONAL if args.suite == "variational" else CLOSED)
    )
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    bench = Bench(args)
    {"weights": weights, "closed": closed, "variational": variational}[args.suite](bench)
    print(
        f"\ntotal {time.perf_counter() - t0:.0f}s (2 CPU cores shared with other jobs: times are contended; compare within a table only)"
    )


if __name__ == "__main__":
    main()
