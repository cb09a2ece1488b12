"""Erasure under the prompt attack (UnlearnDiffAtk, ``genunlearn probe --probe prompt``): for a base
text-to-image pipeline and pipelines unlearned from it, the attack success rate (ASR, the share of
samples judged to show the concept) before and after the attack, over three attack seeds.

The concept images the attacker holds are the base's samples of the concept prompts (drawn once per
seed, shared by every model); each model is attacked with the same budget and judged by the same
judge (the task's, or ``--judge``). Columns: UA = 1 − pre-attack ASR (the erasure without attack),
pre-attack ASR, post-attack ASR, each mean ± sample std over the seeds, in %; the base's row first.

    python benchmarks/prompt_attack.py --base BASE --forget 'concept=circle;anchor=object' \\
        [--judge FOLDER] [--seeds 0,1,2] [--set steps=40 ...] [--out runs/attack.json] [LABEL=]FOLDER ...

``--quick`` is a smoke run (2 attack steps, 4 samples, 2 images: numbers meaningless).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from common import fmt_mean_sd  # benchmarks/common.py (the script's folder is on the path)

from genunlearn.io.weights import atomic_write_text

QUICK = {"steps": 2, "n": 4, "images": 2, "batch_size": 2}


def pct(values: list[float]) -> str:
    """ "mean ± sample std" in % (``common.fmt_mean_sd``), the std left out for one value."""
    return fmt_mean_sd([100 * v for v in values], ".1f")


def label_of(arg: str) -> tuple[str, str]:
    """ "LABEL=FOLDER" or FOLDER (labelled by the method its record names, else the folder's name)."""
    if "=" in arg:
        label, folder = arg.split("=", 1)
        return label, folder
    record = Path(arg) / "genunlearn.json"
    method = json.loads(record.read_text()).get("info", {}).get("method") if record.is_file() else None
    return f"{method} ({Path(arg).name})" if method else Path(arg).name, arg


def main() -> None:
    from genunlearn.config import parse_overrides
    from genunlearn.errors import GenUnlearnError
    from genunlearn.eval.probes import probe_config
    from genunlearn.eval.probes.prompt import (
        attack_model,
        check_prompt_request,
        concept_judge,
        concept_latents,
        concept_prompts,
    )
    from genunlearn.eval.probes.prompt_attack import AttackTarget
    from genunlearn.families import open_model
    from genunlearn.forget.request import parse_forget

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="unlearned pipeline folders, optionally LABEL=FOLDER")
    ap.add_argument(
        "--base", required=True, help="the original pipeline (draws the concept images; its row comes first)"
    )
    ap.add_argument("--forget", required=True, help="the erased concept(s), e.g. 'concept=circle;anchor=object'")
    ap.add_argument("--judge", default=None, help="a genunlearn classifier or CLIP folder (default: the task's judge)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        help="prompt probe option key=value (steps, lr, tokens, n, images, batch_size)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run ({', '.join(f'{k}={v}' for k, v in QUICK.items())}); numbers meaningless",
    )
    ap.add_argument("--out", default=None, help="also write the per-seed numbers as JSON")
    args = ap.parse_args()

    try:
        request = parse_forget(args.forget)
        seeds = [int(s) for s in args.seeds.split(",")]
        options = {**(QUICK if args.quick else {}), **parse_overrides(args.sets)}
        base = open_model(args.base)[1]
        models = [(f"base ({Path(args.base).name})", base)] + [
            (label, open_model(folder)[1]) for label, folder in map(label_of, args.models)
        ]
        for _, m in models:
            check_prompt_request(m, request)
        prompts = concept_prompts(base, request)
        judge = concept_judge(base, request, args.judge)
    except (GenUnlearnError, ValueError) as e:
        sys.exit(f"error: {e}")

    runs: dict[str, list[dict]] = {label: [] for label, _ in models}
    for seed in seeds:
        cfg = probe_config("prompt", {**options, "seed": seed})
        targets = {c: AttackTarget(concept_latents(base, c, ps, cfg, base), ps) for c, ps in prompts.items()}
        for label, m in models:
            by_concept = attack_model(m, targets, judge, cfg)[0]
            runs[label].append(
                {k: statistics.mean(r[k] for r in by_concept.values()) for k in ("asr_no_attack", "asr_attack")}
                | {"by_concept": by_concept}
            )
            print(
                f"seed {seed} {label}: ASR {runs[label][-1]['asr_no_attack']:.3f} -> {runs[label][-1]['asr_attack']:.3f}",
                file=sys.stderr,
            )

    print(
        f"prompt attack on {request.spec()}: {cfg.steps} steps on {cfg.tokens} soft tokens, {cfg.images} base images per concept, n={cfg.n} per concept; judge: {judge.name}; seeds {args.seeds}, mean ± std, %"
    )
    width = max(len(label) for label in runs)
    print(f"{'model':<{width}}  {'UA':>12}  {'pre-attack ASR':>14}  {'post-attack ASR':>15}")
    for label, rows in runs.items():
        pre, post = [r["asr_no_attack"] for r in rows], [r["asr_attack"] for r in rows]
        print(f"{label:<{width}}  {pct([1 - p for p in pre]):>12}  {pct(pre):>14}  {pct(post):>15}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            Path(args.out),
            json.dumps({"forget": request.spec(), "seeds": seeds, "options": options, "runs": runs}, indent=1),
        )


if __name__ == "__main__":
    main()
