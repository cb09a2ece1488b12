"""Concept erasure on the canvas text-to-image pipeline, UnlearnCanvas's protocol (``eval/erasure.py``).

Erase an object ("circle"), a style ("striped") and a colour ("red") from the canvas pipeline
(``genunlearn train --task canvas --model sd``), each method run as a user runs it (``genunlearn
unlearn BASE --method M --concept C --anchor A [--set k=v] --out F``, one process each, its wall time
and peak memory read from the process), and report UA, IRA, CRA, generality (UA on held-out
paraphrases), FD against the base on retained prompts, seconds, peak memory and the bytes of the
change (the UNet tensors that differ from the base's).

Tuning (equal budget): every method has the same number of candidate settings (its ``GRID``),
each run once (seed 0) per concept and judged on the validation prompts; the rule picks, per method,
the setting with the highest mean UA over the three concepts among those whose IRA and CRA stay
within ``--slack`` points of the base's on every concept (none does: the highest mean of UA, IRA
and CRA). The picks are then run with seeds 0, 1, 2 and reported on the test prompts, mean ± std.
A closed-form editor has no seed: its three test rows differ only in the sampling noise.
The ``-sibling`` rows send the concept to a specific other value of its attribute instead of the generic
word (replacement erasure; ``UA unnamed`` of the base bounds the generic guide's UA).

    python benchmarks/t2i_erasure.py [--methods esd,uce] [--quick] [--out runs/t2i]

Rows are cached in OUT/rows.json (a rerun resumes); pipelines in OUT/models.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import Rows, fmt_mean_sd, pick_setting, record_pick


CONCEPTS = {"object": "circle", "style": "striped", "colour": "red"}
# method label → (method, options every run gets, candidate settings tuned on validation). The options
# every run gets are cost rules for this kind of model, recorded with the picks as its defaults: ESD draws
# x_t with the pipeline's own 25 sampler steps (not 50).
CLOSED_FORM = {"tokens": "tail", "templates": "captions", "preserve": "siblings"}
GRID_PRESERVE = [{"preserve_scale": 1.0}, {"preserve_scale": 0.3}, {"preserve_scale": 0.1}]
GRID = {
    "esd": (
        "esd",
        {"sample_steps": 25},
        [{"params": "conditioning"}, {"params": "non_conditioning"}, {"params": "all"}],
    ),  # ESD-x, ESD-u, every weight
    "concept_ablation": (
        "concept_ablation",
        {},
        [{"params": "all"}, {"params": "conditioning"}, {"params": "all", "lr": 3e-4}],
    ),
    "fdiv": ("fdiv", {}, [{"params": "all"}, {"params": "conditioning"}, {"params": "all", "lr": 3e-4}]),
    "advunlearn": ("advunlearn", {"sample_steps": 25}, [{"lr": 1e-4}, {"lr": 3e-4}, {"lr": 1e-3}]),
    # the closed forms as UCE's erasing script runs them: the prompts from the concept's last token to the end
    # (tokens=tail), the concept in the task's caption forms (templates=captions, its prompt augmentation)
    # and the attribute's other values preserved (preserve=siblings); tuned: the weight of preservation
    "uce": ("uce", CLOSED_FORM, GRID_PRESERVE),
    "rece": ("rece", CLOSED_FORM, GRID_PRESERVE),
    # replacement: the concept sent to a specific other value of its attribute (circle → square, striped →
    # solid, red → yellow) instead of the generic word, whose prompts the base draws as the concept at the
    # rate 1 − base UA unnamed; the defaults are not picked from these rows (the anchor is the request's)
    **{f"{m}-sibling": (m, {**CLOSED_FORM, "guide": "sibling"}, GRID_PRESERVE) for m in ("uce", "rece")},
}
# many concepts at once (MACE's setting): objects, styles and colours mixed, one generic guide
MULTI = {
    1: ["circle"],
    5: ["circle", "square", "striped", "red", "green"],
    10: ["circle", "square", "triangle", "striped", "dotted", "checkered", "red", "green", "blue", "yellow"],
}
MULTI_ANCHOR = "shape"
SEEDED = {"esd", "concept_ablation", "fdiv", "advunlearn"}
REPORTED = ("UA", "IRA", "CRA", "generality", "UA_unnamed")  # the test tables' columns, in percent


def run_cli(args: list[str]) -> tuple[float, float]:
    """``genunlearn ARGS`` in its own process: (wall seconds, peak resident MiB of that process)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "genunlearn", *args], stdout=log, stderr=subprocess.STDOUT, text=True
        )
        _, status, usage = os.wait4(proc.pid, 0)  # reaped here, so the child's own rusage
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            log.seek(0)
            sys.exit(f"genunlearn {' '.join(args)} failed:\n{log.read()}")
    return wall, usage.ru_maxrss / 1024


def anchor_args(method: str, kind: str, concept: str, settings: dict) -> list[str]:
    """The guide: the generic word of the concept's kind (a row with that attribute unspecified) for the
    methods that read the task's rows; the closed forms encode text, where only "object" (and "shape")
    is a word the canvas pipeline knows, so a style or colour is sent to the empty prompt (UCE's own
    default guide); a multi-concept ``kind`` is the guide itself; ``guide=sibling``: ``sibling(concept)``."""
    if settings.get("guide") == "sibling":
        return ["--anchor", "; ".join(sibling(c, concept.split("; ")) for c in concept.split("; "))]
    if method in SEEDED or kind in ("object", MULTI_ANCHOR):
        return ["--anchor", kind]
    return []


def sibling(concept: str, erased: list[str] = ()) -> str:
    """The first value of the concept's attribute that is neither the concept nor erased (circle → square)."""
    from genunlearn.data.canvas import ATTRIBUTES

    return next(v for a in ATTRIBUTES if concept in a.values for v in a.values if v != concept and v not in erased)


def changed_bytes(folder: Path, base: Path) -> int:
    """Bytes of the tensors ``folder``'s components hold with other values than ``base``'s (the UNet for
    the UNet methods, the text encoder for advunlearn): what shipping only the change costs."""
    from genunlearn.io.weights import load_tensors

    total = 0
    for f in sorted(Path(base).glob("*/*.safetensors")):
        old, new = load_tensors(f), load_tensors(Path(folder) / f.relative_to(base))
        total += sum(
            v.numel() * v.element_size()
            for k, v in new.items()
            if k not in old or old[k].shape != v.shape or not old[k].equal(v)
        )
    return total


def siblings(concepts: str) -> str:
    """The values of the erased concepts' attributes that are not erased, as a --preserve list."""
    from genunlearn.data.canvas import ATTRIBUTES

    erased = set(concepts.split("; "))
    kinds = [a for a in ATTRIBUTES if erased & set(a.values)]
    return "; ".join(v for a in kinds for v in a.values if v not in erased)


def caption_templates(concepts: str) -> str:
    """The canvas caption forms with the concepts' slot left open ("a {style} {colour} {}" for an object,
    every style and colour), as a --templates list; none when the concepts are of several kinds."""
    import itertools

    from genunlearn.data.canvas import ATTRIBUTES

    objects, styles, colours = (a.values for a in ATTRIBUTES)
    forms = {
        "object": [f"a {s} {c} {{}}" for s, c in itertools.product(styles, colours)],
        "style": [f"a {{}} {c} {o}" for c, o in itertools.product(colours, objects)],
        "colour": [f"a {s} {{}} {o}" for s, o in itertools.product(styles, objects)],
    }
    kinds = {a.name for a in ATTRIBUTES for c in concepts.split("; ") if c in a.values}
    return "; ".join(["{}", *forms[kinds.pop()]]) if len(kinds) == 1 else ""


def options(settings: dict, seed: int | None, concept: str) -> list[str]:
    """The CLI options of one setting: ``--set`` for the method's options, ``--preserve`` for
    ``preserve=siblings``, ``--templates`` for ``templates=captions``."""
    request = {"preserve", "templates", "guide"}
    values = {k: v for k, v in settings.items() if k not in request} | ({"seed": seed} if seed is not None else {})
    erased = concept.split("; ")
    guides = {sibling(c, erased) for c in erased} if settings.get("guide") == "sibling" else set()
    kept = [v for v in siblings(concept).split("; ") if v not in guides]
    preserve = ["--preserve", "; ".join(kept)] if settings.get("preserve") == "siblings" else []
    templates = caption_templates(concept) if settings.get("templates") == "captions" else ""
    return (
        preserve
        + (["--templates", templates] if templates else [])
        + [a for k, v in values.items() for a in ("--set", f"{k}={v}")]
    )


def setting_key(settings: dict) -> str:
    """A row key's name for a setting (so a changed grid never reads another setting's rows)."""
    return ",".join(f"{k}={v}" for k, v in sorted(settings.items())) or "defaults"


def percent(values: list[float]) -> str:
    """mean ± sample standard deviation, in percent (``common.fmt_mean_sd``)."""
    return fmt_mean_sd([100 * v for v in values], ".1f")


def reported(ms: list[dict]) -> str:
    """The ``REPORTED`` cells of rows ``ms`` ("–" where a metric does not apply or a row predates it)."""
    return " | ".join(percent([m[k] for m in ms]) if ms[0].get(k) is not None else "–" for k in REPORTED)


def pick(rows: dict, base: dict, slack: float) -> int:
    """The selection rule (module docstring) over ``rows[i][concept]``, by ``common.pick_setting``."""

    def mean(i, keys):
        return statistics.fmean(rows[i][c][k] for c in CONCEPTS.values() for k in keys if rows[i][c][k] is not None)

    def keeps(i):
        return all(r[k] is None or r[k] >= base[c][k] - slack / 100 for c, r in rows[i].items() for k in ("IRA", "CRA"))

    return pick_setting(rows, lambda i: -mean(i, ("UA",)), [keeps], fallback=lambda i: -mean(i, ("UA", "IRA", "CRA")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default=",".join(GRID), help=f"comma-separated, of {', '.join(GRID)}")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--slack", type=float, default=5.0, help="points of IRA / CRA a pick may lose against the base")
    ap.add_argument(
        "--multi",
        default="",
        help="methods (comma-separated) that also erase 1, 5 and 10 concepts at once with their picks",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: a 40-step base, 5-step methods, few samples (numbers meaningless)",
    )
    ap.add_argument("--out", default="runs/t2i")
    args = ap.parse_args()
    import genunlearn as gu
    from genunlearn.eval.erasure import ErasureEvaluator
    from genunlearn.eval.judge import load_judge

    out = Path(args.out) / ("quick" if args.quick else "full")
    (out / "models").mkdir(parents=True, exist_ok=True)
    rows = Rows(out / "rows.json")
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(GRID))
    if unknown:
        sys.exit(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(GRID)}")
    base_dir = out / "models" / "base"
    if not (base_dir / "genunlearn.json").is_file():
        run_cli(
            [
                "train",
                "--task",
                "canvas",
                "--model",
                "sd",
                "--out",
                str(base_dir),
                *(["--steps", "40"] if args.quick else []),
            ]
        )
    base = gu.load(base_dir)
    judge = load_judge("canvas", verbose=False)
    size = {"rows_per_concept": 4, "retained_rows": 8, "n_per_row": 1} if args.quick else {}
    evaluators = {}

    def judged(folder: Path, key: str, concept: str, split: str, noise: int) -> dict:
        def compute():
            if (concept, split, noise) not in evaluators:
                evaluators[concept, split, noise] = ErasureEvaluator(
                    base, concept.split("; "), judge, split=split, noise=noise, **size
                )
            return evaluators[concept, split, noise](gu.load(folder))

        return rows.get(f"{key}/{split}/noise{noise}", compute)

    def run(label: str, i: int, concept: str, kind: str, seed: int | None) -> tuple[Path, str, dict]:
        """The unlearned folder of one setting and seed, its row key and its cost (cached)."""
        method, fixed, grid = GRID[label]
        guide = "" if kind in CONCEPTS else f"/guide={kind}"  # a many-concept run names its guide
        key = f"{label}/{setting_key({**fixed, **grid[i]})}/{concept.replace('; ', '+')}{guide}/{seed}"
        folder = out / "models" / key.replace("/", "-")

        def compute():
            extra = ["--steps", "5"] if args.quick and method in SEEDED else []
            wall, peak = run_cli(
                [
                    "unlearn",
                    str(base_dir),
                    "--method",
                    method,
                    "--concept",
                    concept,
                    *anchor_args(method, kind, concept, {**fixed, **grid[i]}),
                    *options({**fixed, **grid[i]}, seed, concept),
                    *extra,
                    "--out",
                    str(folder),
                ]
            )
            return {"seconds": wall, "peak_mib": peak, "changed_mb": changed_bytes(folder, base_dir) / 2**20}

        return folder, key, rows.get(key, compute)

    seeds = [int(s) for s in args.seeds.split(",")]
    base_val = {c: judged(base_dir, f"base/{c}", c, "val", 0) for c in CONCEPTS.values()}
    picked = {}
    print(
        "## Validation (seed 0): mean over the three concepts\n\n| method | setting | UA % | IRA % | CRA % | generality % |\n|---|---|---|---|---|---|"
    )
    for label in methods:
        method, fixed, grid = GRID[label]
        seed0 = 0 if method in SEEDED else None
        tuned = {
            i: {c: judged(*run(label, i, c, k, seed0)[:2], c, "val", 0) for k, c in CONCEPTS.items()}
            for i in range(len(grid))
        }
        picked[label] = pick(tuned, base_val, args.slack)
        for i, r in tuned.items():
            cells = [
                statistics.fmean(r[c][k] for c in CONCEPTS.values() if r[c][k] is not None)
                for k in ("UA", "IRA", "CRA", "generality")
            ]
            print(
                f"| {label} | {json.dumps(grid[i])}{' ←' if i == picked[label] else ''} | "
                + " | ".join(f"{100 * v:.1f}" for v in cells)
                + " |",
                flush=True,
            )
    if not args.quick:  # the methods' defaults for Stable-Diffusion-layout pipelines
        for m, i in picked.items():
            if m != GRID[m][0]:  # a variant row (uce-sibling) picks no default
                continue
            # preserve, templates and the guide belong to the request (--preserve, --templates, --anchor)
            setting = {
                k: v for k, v in {**GRID[m][1], **GRID[m][2][i]}.items() if k not in ("preserve", "templates", "guide")
            }
            record_pick("sd", GRID[m][0], setting, "benchmarks/t2i_erasure.py (canvas)")
    print(
        f"\n## Test: the picks, seeds {args.seeds} (a closed form has no seed: the same edit, sampled with other noise), mean ± std"
    )
    for kind, concept in CONCEPTS.items():
        b = [judged(base_dir, f"base/{concept}", concept, "test", s) for s in seeds]
        floor = statistics.fmean(m["fd_vs_base_floor"] for m in b)
        print(
            f"\n### erase the {kind} '{concept}' (guide: '{kind}'; the closed forms: {'object' if kind == 'object' else 'the empty prompt'}; -sibling rows: '{sibling(concept)}')\n\n| method | setting | UA % | IRA % | CRA % | generality % | UA unnamed % | FD vs base (floor {floor:.2f}) | seconds | peak MiB | changed MB |\n|---|---|---|---|---|---|---|---|---|---|---|"
        )
        print(f"| base | – | {reported(b)} | – | – | – | – |")
        for label in methods:
            method, fixed, grid = GRID[label]
            i = picked[label]
            runs = [run(label, i, concept, kind, s if method in SEEDED else None) for s in seeds]
            ms = [judged(folder, key, concept, "test", s) for (folder, key, _), s in zip(runs, seeds)]
            cost = [r[2] for r in runs]
            print(
                f"| {label} | {json.dumps(grid[i])} | {reported(ms)}"
                + f" | {statistics.fmean(m['fd_vs_base'] for m in ms):.2f} | {statistics.fmean(c['seconds'] for c in cost):.0f} | {statistics.fmean(c['peak_mib'] for c in cost):.0f} | {cost[0]['changed_mb']:.2f} |",
                flush=True,
            )

    multi = [m for m in args.multi.split(",") if m]
    if multi:
        print(f"\n## Many concepts at once (guide '{MULTI_ANCHOR}'), test prompts, seeds {args.seeds}, mean ± std\n")
        print(
            "| method | concepts | UA % | IRA % | CRA % | generality % | UA unnamed % | seconds | changed MB |\n|---|---|---|---|---|---|---|---|---|"
        )
    for label in multi:
        method, fixed, grid = GRID[label]
        i = picked.get(label, 0)
        for count, concepts in MULTI.items():
            names = "; ".join(concepts)
            runs = [run(label, i, names, MULTI_ANCHOR, s if method in SEEDED else None) for s in seeds]
            ms = [judged(folder, key, names, "test", s) for (folder, key, _), s in zip(runs, seeds)]
            print(
                f"| {label} | {count} | {reported(ms)}"
                + f" | {statistics.fmean(r[2]['seconds'] for r in runs):.0f} | {runs[0][2]['changed_mb']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
