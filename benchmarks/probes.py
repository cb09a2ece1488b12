"""Attack probes on digits (issue 16): does the forgetting survive relearning and a white-box
conditioning attack?

Calibration rows (base; finetune on the retain set, which keeps the class; retrain, the floor /
reference) and one row per unlearning method that applies to the model kind (salun, random_label,
esd, sfd, continualflow, fdiv; fdiv accepts concept requests only, so it erases the concept "3"
towards the anchor "8" — on digits the same samples as ``classes=3`` — and is probed as ``classes=3``). One-step (sfd) and composed (continualflow) models have no training loss of their
own, so they get the initial-noise search (with the forget prompt) instead of the conditioning
attack and no relearning curve. Each row: the conditioning attack's ASR (no attack / random / attack, free vector and
the convex "mix" attacker) and the relearning AUC ratio to the retrain model, mean ± sample std over
seeds (the method's seed and the probes' seed). Base and retrain models come from the recipe cache
(``train_cached``; ``--base-steps 1000`` is the quick suite's budget); unlearned models are cached
under ``--out``.

    nice -n 5 python benchmarks/probes.py [--kinds flow,diffusion] [--seeds 3] [--method-steps 200] [--out runs/probes]

``--kinds i2i`` runs the I2I probes (relearning on the encoder, completion from a larger visible
area) on the digits I2I original and retrain (``classes=0,1,2,3,4``, ``--i2i-steps``) and every I2I
method (``--method-steps``), over ``--seeds``.

``--calibration`` instead checks what the conditioning attack's baselines rest on, for each base
model: the judge on real test digits and on pure noise, and how often the model draws the asked
class for each class row and for random embeddings, and the conditioning attack's ASR on the base
(docs/probes.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from common import fmt_mean_sd  # benchmarks/common.py (the script's folder is on the path)
from genunlearn.io.weights import atomic_write_text
from genunlearn.data import load_dataset
from genunlearn.errors import GenUnlearnError
from genunlearn.eval.probes import run_probe
from genunlearn.eval.probes.common import Counter
from genunlearn.forget.request import ForgetRequest
from genunlearn.generative.model import GenerativeModel
from genunlearn.methods import get_method
from genunlearn.generative.recipes import TrainJob, train_cached

METHODS = ("salun", "random_label", "esd", "sfd", "continualflow", "fdiv")
REQUEST = ForgetRequest.of_classes(3)
METHOD_REQUEST = {
    "fdiv": ForgetRequest("concept", concept="3", anchor="8")
}  # concept-only methods: class 3 as a concept


def unlearned(name: str, base, data, kind: str, seed: int, steps: int, out: Path):
    """The method's model (cached under ``out``), or None with the reason it does not apply."""
    folder = out / "models" / f"{kind}-{name}-s{seed}-{steps}"
    if (folder / "config.json").is_file():
        return GenerativeModel.from_pretrained(folder), None
    try:
        m = get_method(name, {"seed": seed}, family="generative")
    except GenUnlearnError:
        m = get_method(name, {}, family="generative")
    try:
        request = METHOD_REQUEST.get(name, REQUEST)
        m.check(base, request)
    except GenUnlearnError as e:
        return None, str(e)
    t0 = time.perf_counter()
    model = m.unlearn(base, request, data, budget=steps)
    model.info = {
        **model.info,
        "method": name,
        "forget": request.spec(),
        "bench_seconds": round(time.perf_counter() - t0, 1),
    }
    model.save_pretrained(folder)
    return model, None


def probe_row(model, retrain, counter, seed: int, args) -> dict:
    row = {}
    t0 = time.perf_counter()
    if model.process.name in (
        "one_step",
        "composed",
    ):  # no training loss: no cond attack, no relearning; the noise search instead
        nz = run_probe("noise", model, REQUEST, config={"n": args.n, "seed": seed})
        row.update(
            {
                "asr_no_attack": nz["asr_no_attack"],
                "asr_noise": nz["asr_attack"],
                "cond_seconds": time.perf_counter() - t0,
            }
        )
        return row
    c = (
        run_probe("cond", model, REQUEST, config={"steps": args.cond_steps, "n": args.n, "seed": seed, "space": "free"})
        if "cond" in args.probes
        else None
    )
    if c:
        row.update({k: c[k] for k in ("asr_no_attack", "asr_random", "asr_attack", "loss_no_attack", "loss_attack")})
    if "mix" in args.probes:
        mx = run_probe(
            "cond",
            model,
            REQUEST,
            config={"steps": args.cond_steps, "n": args.n, "seed": seed, "space": "mix", "lr": 0.5},
        )
        row["asr_attack_mix"] = mx["asr_attack"]
    row["cond_seconds"] = time.perf_counter() - t0
    if "relearn" in args.probes:
        t0 = time.perf_counter()
        r = run_probe(
            "relearn",
            model,
            REQUEST,
            reference=retrain,
            config={
                "n": args.n,
                "seed": seed,
                **({"lr": args.relearn_lr} if args.relearn_lr else {}),
                **({"checkpoints": args.relearn_checkpoints} if args.relearn_checkpoints else {}),
            },
        )
        row.update(
            {
                "relearn_curve": r["model"]["forgotten_content_drawn"],
                "reference_curve": r["reference"]["forgotten_content_drawn"],
                "auc": r["model"]["auc"],
                "auc_ratio": r["auc_ratio"],
            }
        )
        row["relearn_seconds"] = time.perf_counter() - t0
    return row


def calibration(model, counter, n: int) -> None:
    """Print the judge's verdicts on real digits and on noise, and the model's judged classes when
    asked for each class row and for random embeddings (the random-conditioning arm)."""
    from genunlearn.eval.probes.cond import FreeConditioning, _frozen_copy, condition_tables

    judge = counter.judge
    test = load_dataset("digits", "test")
    pred = judge.predict(test.x)[:, 0]
    print(
        f"  judge: real 3s judged 3 {float((pred[test.labels == 3] == 3).float().mean()):.1%}, real non-3s judged 3 {float((pred[test.labels != 3] == 3).float().mean()):.1%}"
    )
    g = torch.Generator().manual_seed(0)
    noise = {
        "N(0,1)": torch.randn(n, 1, 8, 8, generator=g).clamp(-1, 1),
        "U[-1,1]": torch.rand(n, 1, 8, 8, generator=g) * 2 - 1,
    }
    for name, x in noise.items():
        print(
            f"  judge on {name} noise: judged classes {torch.bincount(judge.predict(x)[:, 0], minlength=10).tolist()}"
        )
    vocab = len(model.attributes[0].values)
    for c in range(vocab):
        got = judge.predict(model.sample(n, torch.full((n, 1), c), generator=torch.Generator().manual_seed(1)))[:, 0]
        print(
            f"  class-{c} row: drew class {c} {float((got == c).float().mean()):.0%}, judged 3 {float((got == 3).float().mean()):.0%}"
        )
    net = _frozen_copy(model.net)
    tables = condition_tables(net, 0, vocab)
    for seed in range(3):
        rnd = FreeConditioning(tables, [3], init="random", generator=torch.Generator().manual_seed(seed + 1))
        got = judge.predict(
            model.with_net(net).sample(n, torch.full((n, 1), 3), generator=torch.Generator().manual_seed(1))
        )[:, 0]
        rnd.remove()
        print(f"  random embedding (seed {seed}): judged classes {torch.bincount(got, minlength=10).tolist()}")
    c = run_probe("cond", model, REQUEST, config={"n": n})
    print(
        f"  cond attack (100 steps): ASR no attack {c['asr_no_attack']:.0%}, random {c['asr_random']:.0%}, attack {c['asr_attack']:.0%}"
    )


I2I_REQUEST = ForgetRequest.of_classes(0, 1, 2, 3, 4)
I2I_METHODS = {
    "i2i": {},
    "i2i-proxy": {"method": "i2i", "retain": "proxy"},
    "i2i_random_encoder": {},
    "i2i_max_loss": {},
    "i2i_noisy_label": {},
    "i2i_retain_label": {},
}


def i2i_table(args, out: Path) -> None:
    """Completion ASR per visible share (with the fill floor) and the encoder-relearning AUC ratio
    to retrain for the I2I original, retrain and methods, mean ± sample std over seeds."""
    from genunlearn.families import get_family

    fam = get_family("i2i")
    data = load_dataset("digits")
    base = fam.train(fam.job("digits", "i2i", steps=args.i2i_steps))
    retrain = fam.train(fam.job("digits", "i2i", forget=I2I_REQUEST, steps=args.i2i_steps))
    rows: dict[str, list] = {}
    for name in ("original", "retrain", *I2I_METHODS):
        for seed in range(args.seeds):
            if name in ("original", "retrain"):
                model = base if name == "original" else retrain
            else:
                cfg = dict(I2I_METHODS[name])
                method = get_method(cfg.pop("method", name), {**cfg, "seed": seed}, family="i2i")
                model = method.unlearn(base, I2I_REQUEST, data, budget=args.method_steps)
            t0 = time.perf_counter()
            c = run_probe("complete", model, I2I_REQUEST, config={"seed": seed})
            r = run_probe("relearn", model, I2I_REQUEST, reference=retrain, config={"seed": seed, "n": args.n})
            rows.setdefault(name, []).append(
                {
                    "asr": c["asr"],
                    "fill": c["asr_fill"],
                    "curve": r["model"]["forgotten_content_drawn"],
                    "auc_ratio": r["auc_ratio"],
                    "seconds": time.perf_counter() - t0,
                }
            )
            print(f"i2i/{name}/{seed}", rows[name][-1], flush=True)
    shares = " / ".join(f"{v:.1%}" for v in c["visible"])
    print(
        f"\ndigits I2I, forget classes=0,1,2,3,4; completion ASR (%) at {shares} visible, n={c['n']} held-out forget images; relearning: encoder, k=10, checkpoints 0,10,25,50; mean ± sample std over {args.seeds} seeds\n"
    )
    print("| row | completion ASR | fill floor | relearn curve (%) | AUC ratio | probe s |")
    print("|---|---|---|---|---|---|")
    for name, vs in rows.items():
        asr = " / ".join(pct([v["asr"][i] for v in vs]) for i in range(len(vs[0]["asr"])))
        fill = " / ".join(pct([v["fill"][i] for v in vs]) for i in range(len(vs[0]["fill"])))
        curve = " / ".join(pct([v["curve"][i] for v in vs]) for i in range(len(vs[0]["curve"])))
        print(
            f"| {name} | {asr} | {fill} | {curve} | {fmt_mean_sd([v['auc_ratio'] for v in vs])} | {np.mean([v['seconds'] for v in vs]):.0f} |"
        )


def pct(values) -> str:
    return fmt_mean_sd([100 * v for v in values], ".0f")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinds", default="flow,diffusion")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--base-steps", type=int, default=1000)
    ap.add_argument("--method-steps", type=int, default=200)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--probes", default="cond,mix,relearn")
    ap.add_argument("--cond-steps", type=int, default=100)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--relearn-lr", type=float, default=None, help="default: the recipe's learning rate")
    ap.add_argument("--relearn-checkpoints", default=None, help="e.g. 0,2,5,10 (default: 0,10,25,50)")
    ap.add_argument("--results", default="results.json", help="results file under --out (resumable)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--i2i-steps", type=int, default=500, help="I2I original/retrain budget (the quick suite's)")
    ap.add_argument(
        "--calibration",
        action="store_true",
        help="check the judge and how well each base model follows its condition, then stop",
    )
    ap.add_argument("--out", default="runs/probes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_dataset("digits")
    res_path = out / args.results
    results = json.loads(res_path.read_text()) if res_path.is_file() else {}
    for kind in args.kinds.split(","):
        if kind == "i2i":
            i2i_table(args, out)
            continue
        base = train_cached(TrainJob("digits", kind, steps=args.base_steps))
        counter = Counter(base, REQUEST)
        if args.calibration:
            print(f"{kind} base ({args.base_steps} steps), n={args.n} per row:")
            calibration(base, counter, args.n)
            continue
        retrain = train_cached(TrainJob("digits", kind, forget=REQUEST, steps=args.base_steps))
        rows = {
            "base": lambda s: base,
            "retrain": lambda s: retrain,
            "finetune (retain)": lambda s: unlearned("finetune", base, data, kind, s, args.method_steps, out)[0],
        }
        for name in args.methods.split(","):
            rows[name] = (lambda n: lambda s: unlearned(n, base, data, kind, s, args.method_steps, out))(name)
        for row, make in rows.items():
            for seed in range(args.seeds):
                key = f"{kind}/{row}/{seed}"
                if key in results:
                    continue
                got = make(seed)
                model, why = got if isinstance(got, tuple) else (got, None)
                if model is None:
                    results[f"{kind}/{row}/skipped"] = why
                    print(f"{kind}/{row}: skipped ({why})", flush=True)
                    break
                results[key] = probe_row(model, retrain, counter, seed, args)
                print(key, {k: v for k, v in results[key].items() if not isinstance(v, list)}, flush=True)
                atomic_write_text(res_path, json.dumps(results, indent=1))
    if not args.calibration and set(args.kinds.split(",")) - {"i2i"}:
        print_table(results, args)


def print_table(results: dict, args) -> None:
    print(
        f"\ndigits, forget classes=3; ASR in % (judged share of 3s among n={args.n} samples), cond budget {args.cond_steps} steps; relearning: k=10, checkpoints {args.relearn_checkpoints or '0,10,25,50'}, lr {args.relearn_lr or 'of the recipe'}, AUC ratio to retrain; mean ± sample std over seeds\n"
    )
    print(
        "| model | row | seeds | ASR no attack | ASR random | ASR attack (free) | ASR attack (mix) | ASR noise search | relearn curve (%) | relearn AUC | AUC ratio | s/model (attacks / relearn) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    groups: dict = {}
    for key, v in results.items():
        kind, row, seed = key.split("/")
        if seed == "skipped":
            print(f"| {kind} | {row} | — | skipped: {v} | | | | | | | | |")
            continue
        groups.setdefault((kind, row), []).append(v)
    for (kind, row), vs in groups.items():

        def col(k, fmt=pct):
            return fmt([v[k] for v in vs]) if all(k in v for v in vs) else "—"

        curves = [v["relearn_curve"] for v in vs if "relearn_curve" in v]
        curve = (
            " / ".join(pct([c[j] for c in curves]) for j in range(len(curves[0]))) if len(curves) == len(vs) else "—"
        )
        secs = f"{np.mean([v['cond_seconds'] for v in vs]):.0f} / {np.mean([v.get('relearn_seconds', float('nan')) for v in vs]):.0f}"
        print(
            f"| {kind} | {row} | {len(vs)} | {col('asr_no_attack')} | {col('asr_random')} | {col('asr_attack')} | {col('asr_attack_mix')} | {col('asr_noise')} | {curve} | {col('auc', fmt_mean_sd)} | {col('auc_ratio', fmt_mean_sd)} | {secs} |"
        )


if __name__ == "__main__":
    main()
