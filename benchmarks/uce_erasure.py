"""What UCE and RECE erase on the Stable-Diffusion-format shapes pipeline: "circle" towards "shape",
through ``genunlearn unlearn`` as a user runs it, judged as ``diffusers_interop.py --sd-methods``
judges the training-based erasers (same evaluator, columns and diffusers check), so the rows compare
with that table. Closed forms have no seed and no learning rate: each variant is one edit, judged on
val (sampling seed 1) and/or test (sampling seed 0).

    python benchmarks/uce_erasure.py --base FOLDER [--n 40] [--splits test] [--out runs/uce]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from diffusers_interop import (  # noqa: E402 (the benchmarks folder is put on the path first)
    ANCHOR,
    CONCEPT,
    genunlearn,
    kept_drop,
    pipeline_circle_rate,
)

COLOURS = ("red", "green", "blue", "yellow")
ROWS = [f"a {c} {CONCEPT}" for c in COLOURS] + [f"a {CONCEPT}"]  # the prompts that draw the concept
GUIDES = [p.replace(CONCEPT, ANCHOR) for p in ROWS]
OTHERS = [f"a {c} {s}" for s in ("square", "triangle", "cross") for c in COLOURS]
VARIANTS = {  # label → (method, concept, anchor, options)
    "uce, last token": ("uce", CONCEPT, ANCHOR, {}),
    "uce, all tokens": ("uce", CONCEPT, ANCHOR, {"tokens": "all"}),
    "uce, all tokens, the 5 circle prompts": ("uce", "; ".join(ROWS), "; ".join(GUIDES), {"tokens": "all"}),
    "  + the 12 other prompts preserved": (
        "uce",
        "; ".join(ROWS),
        "; ".join(GUIDES),
        {"tokens": "all", "--preserve": ";".join(OTHERS)},
    ),
    "rece, all tokens, the 5 circle prompts": ("rece", "; ".join(ROWS), "; ".join(GUIDES), {"tokens": "all"}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--base", required=True, help="the shapes sd pipeline folder (genunlearn train --task shapes --model sd)"
    )
    ap.add_argument("--n", type=int, default=40, help="samples per prompt")
    ap.add_argument("--splits", default="test", help="val, test or val,test")
    ap.add_argument("--out", default="runs/uce")
    args = ap.parse_args()
    import genunlearn as gu
    from genunlearn.eval.judge import load_judge
    from genunlearn.families import get_family

    out = Path(args.out)
    request = gu.request(f"concept={CONCEPT};anchor={ANCHOR}")
    base = gu.load(args.base)
    judge = load_judge("shapes", verbose=False)
    evaluators = {
        split: get_family("generative").evaluator(
            "shapes", request, reference=base, n_per_prompt=args.n, seed=seed, split=split, progress=False
        )
        for split, seed in (("val", 1), ("test", 0))
        if split in args.splits.split(",")
    }
    print(f"erase '{CONCEPT}' → '{ANCHOR}' from {args.base}; {args.n} samples per prompt")
    print(
        "| variant | split | concept still shown % | attributes kept % | kept prompts' drop (pts) | FD vs base (floor) | circles (diffusers) % | erase residual | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, (method, concept, anchor, options) in {"original": (None, None, None, None), **VARIANTS}.items():
        folder = Path(args.base) if method is None else out / label.strip(" +").replace(", ", "_").replace(" ", "-")
        if method is not None and not (folder / "genunlearn.json").is_file():
            sets = [a for k, v in options.items() for a in ((k, v) if k.startswith("--") else ("--set", f"{k}={v}"))]
            genunlearn(
                "unlearn",
                args.base,
                "--method",
                method,
                "--concept",
                concept,
                "--anchor",
                anchor,
                *sets,
                "--out",
                str(folder),
                quiet=True,
            )
        info = json.loads((folder / "genunlearn.json").read_text())["info"].get("unlearn", {})
        model = gu.load(folder)
        circles = pipeline_circle_rate(folder, max(1, args.n // 5), judge)
        for split, evaluate in evaluators.items():
            m = evaluate(model)
            residual = f"{info['erase_residual']:.3f}" if info else "–"
            print(
                f"| {label} | {split} | {100 * m['concept_still_shown']:.1f} | {100 * m['attribute_preservation']:.1f} | {kept_drop(m):.1f} | {m['fd_vs_base']:.2f} ({m['fd_vs_base_floor']:.2f}) | {100 * circles:.1f} | {residual} | {info.get('seconds', '–')} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
