"""Attack probes on digits (issue 16): does the forgetting survive relearning and a white-box
conditioning attack?

Calibration rows (base; finetune on the retain set, which keeps the class; retrain, the floor /
reference) and one row per unlearning method that applies to the model kind (salun, random_label,
esd, sfd, continualflow, fdiv; fdiv accepts concept requests only, so it is skipped for
classes=3). One-step (sfd) and composed (continualflow) models have no training loss of their
own, so they get the initial-noise search (with the forget prompt) instead of the conditioning
attack and no relearning curve. Each row: the conditioning attack's ASR (no attack / random / attack, free vector and
the convex "mix" attacker) and the relearning AUC ratio to the retrain model, mean ± std over
seeds (the method's seed and the probes' seed). Base and retrain models come from the recipe cache
(``train_cached``; ``--base-steps 1000`` is the quick suite's budget); unlearned models are cached
under ``--out``.

    nice -n 5 python benchmarks/probes.py [--kinds flow,diffusion] [--seeds 3] [--method-steps 200] [--out runs/probes]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from genunlearn.data import load_dataset
from genunlearn.errors import GenUnlearnError
from genunlearn.eval.probes import run_probe
from genunlearn.eval.probes.common import Counter
from genunlearn.forget import ForgetRequest
from genunlearn.generative import GenerativeModel
from genunlearn.methods import get_method, load_all
from genunlearn.recipes import TrainJob, train_cached

METHODS = ("salun", "random_label", "esd", "sfd", "continualflow", "fdiv")
REQUEST = ForgetRequest.of_classes(3)


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
        m.check(base, REQUEST)
    except GenUnlearnError as e:
        return None, str(e)
    t0 = time.perf_counter()
    model = m.unlearn(base, REQUEST, data, budget=steps)
    model.info = {**model.info, "method": name, "forget": REQUEST.spec(), "bench_seconds": round(time.perf_counter() - t0, 1)}
    model.save_pretrained(folder)
    return model, None


def probe_row(model, retrain, counter, seed: int, args) -> dict:
    row = {}
    t0 = time.perf_counter()
    if model.process.name in ("one_step", "composed"):  # no training loss: no cond attack, no relearning; the noise search instead
        nz = run_probe("noise", model, REQUEST, config={"n": args.n, "seed": seed})
        row.update({"asr_no_attack": nz["asr_no_attack"], "asr_noise": nz["asr_attack"], "cond_seconds": time.perf_counter() - t0})
        return row
    c = run_probe("cond", model, REQUEST, config={"steps": args.cond_steps, "n": args.n, "seed": seed}) if "cond" in args.probes else None
    if c:
        row.update({k: c[k] for k in ("asr_no_attack", "asr_random", "asr_attack", "loss_no_attack", "loss_attack")})
    if "mix" in args.probes:
        mx = run_probe("cond", model, REQUEST, config={"steps": args.cond_steps, "n": args.n, "seed": seed, "space": "mix", "lr": 0.5})
        row["asr_attack_mix"] = mx["asr_attack"]
    row["cond_seconds"] = time.perf_counter() - t0
    if "relearn" in args.probes:
        t0 = time.perf_counter()
        r = run_probe("relearn", model, REQUEST, reference=retrain, config={"n": args.n, "seed": seed, **({"lr": args.relearn_lr} if args.relearn_lr else {}), **({"checkpoints": args.relearn_checkpoints} if args.relearn_checkpoints else {})})
        row.update({"relearn_curve": r["model"]["forget_rate"], "reference_curve": r["reference"]["forget_rate"], "auc": r["model"]["auc"], "auc_ratio": r["auc_ratio"]})
        row["relearn_seconds"] = time.perf_counter() - t0
    return row


def mean_std(values) -> str:
    v = np.array([x for x in values if x is not None], dtype=float)
    if not len(v):
        return "—"
    return f"{v.mean():.2f} ± {v.std():.2f}" if len(v) > 1 else f"{v.mean():.2f}"


def pct(values) -> str:
    v = np.array(values, dtype=float) * 100
    return f"{v.mean():.0f} ± {v.std():.0f}" if len(v) > 1 else f"{v.mean():.0f}"


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
    ap.add_argument("--out", default="runs/probes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load_all()
    data = load_dataset("digits")
    res_path = out / args.results
    results = json.loads(res_path.read_text()) if res_path.is_file() else {}
    for kind in args.kinds.split(","):
        base = train_cached(TrainJob("digits", kind, steps=args.base_steps))
        retrain = train_cached(TrainJob("digits", kind, forget=REQUEST, steps=args.base_steps))
        counter = Counter(base, REQUEST)
        rows = {"base": lambda s: base, "retrain": lambda s: retrain, "finetune (retain)": lambda s: unlearned("finetune", base, data, kind, s, args.method_steps, out)[0]}
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
                res_path.write_text(json.dumps(results, indent=1))
    print_table(results, args)


def print_table(results: dict, args) -> None:
    print(f"\ndigits, forget classes=3; ASR in % (judged share of 3s among n={args.n} samples), cond budget {args.cond_steps} steps; relearning: k=10, checkpoints {args.relearn_checkpoints or '0,10,25,50'}, lr {args.relearn_lr or 'of the recipe'}, AUC ratio to retrain; mean ± std over seeds\n")
    print("| model | row | seeds | ASR no attack | ASR random | ASR attack (free) | ASR attack (mix) | ASR noise search | relearn AUC | AUC ratio | s/model (attacks / relearn) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    groups: dict = {}
    for key, v in results.items():
        kind, row, seed = key.split("/")
        if seed == "skipped":
            print(f"| {kind} | {row} | — | skipped: {v} | | | | | | | |")
            continue
        groups.setdefault((kind, row), []).append(v)
    for (kind, row), vs in groups.items():
        def col(k, fmt=pct):
            return fmt([v[k] for v in vs]) if all(k in v for v in vs) else "—"

        secs = f"{np.mean([v['cond_seconds'] for v in vs]):.0f} / {np.mean([v.get('relearn_seconds', float('nan')) for v in vs]):.0f}"
        print(f"| {kind} | {row} | {len(vs)} | {col('asr_no_attack')} | {col('asr_random')} | {col('asr_attack')} | {col('asr_attack_mix')} | {col('asr_noise')} | {col('auc', mean_std)} | {col('auc_ratio', mean_std)} | {secs} |")


if __name__ == "__main__":
    main()
