"""f-DMU benchmark: erase "circle" from the shapes diffusion model with every f-divergence, ESD and
Concept Ablation, all with the same step budget, batch, learning rate and anchor images.

Rows: the base model; closed forms (concept_ablation = mse, kl, jeffreys, hellinger, chi2, alpha:0.5,
alpha:2) and variational forms (kl, rkl, js, hellinger, chi2, tv) with the sibling anchor "square";
ESD (negative guidance, no anchor); concept_ablation and hellinger with the generic anchor "shape"
(its optimum ε(circle) = ε(shape) keeps the base's share of circles among "a <colour> shape"
samples, printed as the floor). Every model is
judged by ``genunlearn.eval.concept`` on the same prompts and seeds:

* erased %: samples for prompts with "circle" judged a circle (target ≤ 2 %); anchor %: judged
  square (sibling anchor rows); floor %: circles among the base model's anchor-prompt samples, which
  is where the objective's optimum (ε(circle) = ε(anchor)) leaves the erased rate;
* colour %: attribute preservation on "a <colour> circle" prompts (target ≥ 90 %);
* Δshape / Δcolour: accuracy on prompts without "circle", points vs the base (target within 3);
* FD ratio: FD to prompt-matched real images on prompts without "circle", over the base model's
  (target ≤ 1.2); FD/KID vs base: against an independent base draw (the floor is base vs base);
* first ≤5 %: first snapshot step at which the erased rate (cheaper probe, ``--n-curve`` samples per
  erased prompt) is ≤ 5 %; wall s: unlearning time without the snapshot probes (anchor images
  are drawn once per anchor and timed separately).
Finished rows are kept in ``OUT/rows/`` and reused on a rerun with the same settings.

    OMP_NUM_THREADS=1 python benchmarks/fdivergence.py [--quick] [--steps 200] [--only LABEL,...] [--out runs/fdivergence]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import torch

from genunlearn.data import load_dataset
from genunlearn.eval.concept import concept_reference, draw, erased_rate, evaluate_concept
from genunlearn.eval.judge import load_judge
from genunlearn.forget import ForgetRequest
from genunlearn.generative import GenerativeModel
from genunlearn.methods import get_method
from genunlearn.methods.fdiv import DEFAULT_LR, make_anchor_pool, prompt_pairs
from genunlearn.recipes import TrainJob, train_cached

CONCEPT = "circle"
CLOSED = ["kl", "jeffreys", "hellinger", "chi2", "alpha:0.5", "alpha:2"]
VARIATIONAL = ["kl", "rkl", "js", "hellinger", "chi2", "tv"]


def rows(quick: bool) -> list[dict]:
    """(label, method, config values, anchor) of every row: every divergence with the sibling anchor
    "square", ESD, and a few rows with the generic anchor "shape"."""

    def row(divergence: str, form: str, anchor: str) -> dict:
        if divergence == "mse":
            return {"label": f"concept_ablation (mse) →{anchor}", "method": "concept_ablation", "values": {}, "anchor": anchor}
        return {"label": f"{form} {divergence} →{anchor}", "method": "fdiv", "values": {"divergence": divergence, "form": form}, "anchor": anchor}

    closed = ["mse", "hellinger", "chi2"] if quick else ["mse", *CLOSED]
    out = [row(d, "closed", "square") for d in closed]
    out += [row(d, "variational", "square") for d in (["js"] if quick else VARIATIONAL)]
    out.append({"label": "esd", "method": "esd", "values": {}, "anchor": None})
    out += [row(d, "closed", "shape") for d in (["hellinger"] if quick else ["mse", "hellinger"])]
    return out


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for r in results:
        if r.get("curve"):
            steps, rates = zip(*r["curve"])
            ax.plot(steps, [100 * v for v in rates], ("--" if "square" in r["label"] else "-"), marker=".", label=r["label"])
    ax.axhline(5, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("unlearning step")
    ax.set_ylabel('erased-concept rate (% of "circle" samples judged circle)')
    ax.set_title("f-DMU on shapes: convergence per divergence")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def fmt(v, spec=".1f"):
    return "—" if v is None else format(v, spec)


def table(results: list[dict], base: dict, floors: dict) -> str:
    head = "| row | erased % | floor % | anchor % | colour % | Δshape | Δcolour | FD ratio | FD vs base | KID vs base | first ≤5 % | wall s | erased≤2 | colour≥90 | Δ≤3 | FD≤1.2 |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    lines.append(f"| base | {100 * base['erased_rate']:.1f} | — | — | {100 * base['attribute_preservation']:.1f} | 0.0 | 0.0 | 1.00 | {base['fd_vs_base']:.2f} (floor) | {base['kid_vs_base']:.3f} | — | — | | | | |")
    for r in results:
        m = r["metrics"]
        ok = lambda c: "PASS" if c else "MISS"  # noqa: E731
        delta = max(abs(m["shape_accuracy_delta_points"]), abs(m["colour_accuracy_delta_points"]))
        lines.append(
            f"| {r['label']} | {100 * m['erased_rate']:.1f} | {fmt(100 * floors[r['anchor']] if r['anchor'] else None)} | {fmt(100 * m['anchor_rate'] if m['anchor_rate'] is not None else None)} | {100 * m['attribute_preservation']:.1f} "
            f"| {m['shape_accuracy_delta_points']:+.1f} | {m['colour_accuracy_delta_points']:+.1f} | {m['fd_real_ratio_to_base']:.2f} | {m['fd_vs_base']:.2f} | {m['kid_vs_base']:.3f} "
            f"| {fmt(r['first_le_5'], 'd')} | {r['seconds']:.0f} | {ok(m['erased_rate'] <= 0.02)} | {ok(m['attribute_preservation'] >= 0.9)} | {ok(delta <= 3)} | {ok(m['fd_real_ratio_to_base'] <= 1.2)} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rows, steps and samples (smoke run)")
    ap.add_argument("--steps", type=int, default=None, help="unlearning steps for every row (default 200; quick 60)")
    ap.add_argument("--lr", type=float, default=None, help="every row's learning rate (default: fdiv's default for --params)")
    ap.add_argument("--params", choices=["all", "conditioning"], default="conditioning", help="trainable parameters of every row (esd too)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--anchor-images", type=int, default=None, help="per anchor prompt (default 100; quick 40)")
    ap.add_argument("--n-per-prompt", type=int, default=None, help="judged samples per prompt (default 12; quick 6)")
    ap.add_argument("--n-curve", type=int, default=None, help="samples per erased prompt at each snapshot (default 8; quick 4)")
    ap.add_argument("--sample-steps", type=int, default=20, help="DDIM steps of every evaluation, anchor and ESD sampler")
    ap.add_argument("--snapshots", type=int, default=5, help="convergence probes per row")
    ap.add_argument("--only", default=None, help="comma-separated row labels to run (default: all)")
    ap.add_argument("--base", default=None, help="a saved base model folder (default: the shapes diffusion recipe, trained or cached)")
    ap.add_argument("--out", default="runs/fdivergence")
    args = ap.parse_args()
    q = args.quick
    steps = args.steps or (60 if q else 200)
    n_anchor = args.anchor_images or (40 if q else 100)
    n_eval = args.n_per_prompt or (6 if q else 12)
    n_curve = args.n_curve or (4 if q else 8)
    torch.set_num_threads(1)
    out = Path(args.out)
    (out / "rows").mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    base = GenerativeModel.from_pretrained(args.base) if args.base else train_cached(TrainJob("shapes", "diffusion"))
    judge = load_judge("shapes", verbose=False)
    data = load_dataset("shapes")
    print(f"base model {base.info['key']} (trained {base.info['train_seconds']:.0f}s); judge held-out accuracy {judge.test_accuracy}")
    request = {a: ForgetRequest("concept", concept=CONCEPT, anchor=a) for a in ("shape", "square")}
    ref = concept_reference(base, request["shape"], judge, n_per_prompt=n_eval, seed=0, steps=args.sample_steps)
    erased_prompts = ref.prompts[ref.erased]
    print(f"reference samples drawn in {time.perf_counter() - t0:.0f}s")

    pools, floors, pool_seconds = {}, {}, {}
    lr = args.lr or DEFAULT_LR[args.params]
    settings = {"steps": steps, "lr": lr, "params": args.params, "batch": args.batch_size, "anchor_images": n_anchor, "n_eval": n_eval, "n_curve": n_curve, "sample_steps": args.sample_steps, "snapshots": args.snapshots, "base": base.info["key"]}
    results = []
    for row in rows(q):
        if args.only and row["label"] not in args.only.split(","):
            continue
        key = hashlib.sha256(json.dumps({**row, **settings}, sort_keys=True).encode()).hexdigest()[:12]
        cached = out / "rows" / f"{key}.json"
        if cached.is_file():
            results.append(json.loads(cached.read_text()))
            print(f"{row['label']}: reused {cached}")
            continue
        anchor = row["anchor"] or "shape"
        if anchor not in pools:
            t = time.perf_counter()
            pools[anchor] = make_anchor_pool(base, prompt_pairs(base.attributes, CONCEPT, anchor), n_anchor, steps=args.sample_steps, guidance=3.0, seed=0)
            pool_seconds[anchor] = time.perf_counter() - t
            floors[anchor] = float((judge.predict(pools[anchor].x)[:, 0] == 0).float().mean())
        values = {"steps": steps, "lr": lr, "params": args.params, "batch_size": args.batch_size, **row["values"]}
        if row["method"] == "esd":
            values["sample_steps"] = args.sample_steps
        method = get_method(row["method"], values)
        curve, probe_seconds = [], [0.0]

        def probe(step, model):
            t = time.perf_counter()
            s = draw(model, erased_prompts, n_curve, judge, seed=1, steps=args.sample_steps)
            curve.append((step, erased_rate(s, base.attributes, CONCEPT)))
            probe_seconds[0] += time.perf_counter() - t

        t = time.perf_counter()
        if row["method"] == "esd":
            model = method.unlearn(base, request["shape"], data)
        else:
            probe(0, base)
            model = method.unlearn(base, request[anchor], data, anchor_pool=pools[anchor], snapshot_every=max(1, steps // args.snapshots), on_snapshot=probe)
        seconds = time.perf_counter() - t - probe_seconds[0]
        metrics = evaluate_concept(model, request[anchor], ref, judge)
        first = next((s for s, v in curve if v <= 0.05), None)
        result = {**row, "metrics": metrics, "curve": curve, "first_le_5": first, "seconds": seconds, "floor": floors.get(row["anchor"]), "settings": settings}
        cached.write_text(json.dumps(result, indent=1))
        results.append(result)
        m = metrics
        print(f"{row['label']}: erased {100 * m['erased_rate']:.1f}% colour {100 * m['attribute_preservation']:.1f}% Δshape {m['shape_accuracy_delta_points']:+.1f} Δcolour {m['colour_accuracy_delta_points']:+.1f} "
              f"FD ratio {m['fd_real_ratio_to_base']:.2f} first≤5% {first} ({seconds:.0f}s)", flush=True)

    floors = {a: next((r["floor"] for r in results if r["anchor"] == a and r["floor"] is not None), None) for a in ("shape", "square")}
    floors[None] = None
    print(f"\nsettings: {settings}; anchor images drawn in {', '.join(f'{k} {v:.0f}s' for k, v in pool_seconds.items()) or '(reused rows)'}")
    print(f"base: circle prompts → {100 * ref.base_metrics['erased_rate']:.1f}% circles, colour {100 * ref.base_metrics['attribute_preservation']:.1f}%, "
          f"shape acc (no-circle prompts) {100 * ref.base_metrics['shape_accuracy_kept']:.1f}%, colour acc {100 * ref.base_metrics['colour_accuracy_kept']:.1f}%, FD to real {ref.base_metrics['fd_real']:.2f}")
    print(table(results, ref.base_metrics, floors))
    plot(results, out / "convergence.png")
    (out / "results.json").write_text(json.dumps({"settings": settings, "base": ref.base_metrics, "rows": results}, indent=1))
    print(f"\nconvergence plot: {out / 'convergence.png'}; total {time.perf_counter() - t0:.0f}s (2 shared CPU cores, other jobs running: times are under contention)")


if __name__ == "__main__":
    main()
