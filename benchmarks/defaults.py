"""What a user gets: every method with no options on its built-in task(s), judged on the test split.

A method's defaults for a model are the settings its own benchmark picked on validation for that kind
of model (``src/genunlearn/methods/picks.json``); this script runs each one as ``genunlearn unlearn
MODEL --method M --forget F`` does with no ``--set``: the released or cached base model of the task,
the method from ``get_method(name, {"seed": s}, model=base)``, seeds 0, 1, 2 (the method's seed and
the evaluation's sampling noise), the family's own judge on the test split. It prints one table per
task: the forget figure, the retained-quality figures, and the method's wall time against retraining
(the retrain model's recorded training time; † where the task's retrain model is not trained here, the
base model's, which follows the same recipe), beside the original and (where trained) the retrain
model judged the same way. Rows are cached in ``--out``/rows.json (a rerun resumes).

    python benchmarks/defaults.py [--only digits-ddpm,digits-flow] [--seeds 0,1,2] [--out runs/defaults] [--cached]
"""

from __future__ import annotations

import argparse
import functools
import time
from dataclasses import dataclass, fields
from pathlib import Path

from common import Rows, fmt_mean_sd


@dataclass(frozen=True)
class Row:
    name: str
    task: str
    kind: str  # what `genunlearn train --model` trains
    forget: str
    methods: tuple[str, ...]
    metrics: tuple[str, ...]  # the forget figure first, then retained quality
    retrain: bool = True  # whether the task's retrain model is trained for its cost (else the base's, †)
    n_per_prompt: int = 100


_CLASSES = ("forgotten_class_still_drawn", "retain_accuracy", "fd_retain")
_CONCEPT = ("concept_still_shown", "attribute_preservation", "shape_accuracy_delta_points", "fd_vs_base")
# in the order they run: the rows the docs' headline claims rest on first; the text-to-image rows judge 25
# samples per prompt (their sampling is the costliest)
ROWS = (
    Row(
        "digits-ddpm", "digits", "diffusion", "classes=3", ("salun", "esd", "random_label", "sfd", "finetune"), _CLASSES
    ),
    Row("digits-flow", "digits", "flow", "classes=3", ("continualflow", "finetune"), _CLASSES),
    Row(
        "shapes-ddpm",
        "shapes",
        "diffusion",
        "concept=circle;anchor=square",
        ("concept_ablation", "fdiv", "esd"),
        _CONCEPT,
        False,
        50,
    ),
    Row("checkerboard", "checkerboard", "flow", "energy=quadrant", ("continualflow",), ("forget_mass", "mmd_retain")),
    Row(
        "digits-classifier",
        "digits",
        "classifier",
        "classes=3",
        ("salun", "random_label", "finetune", "grad_ascent", "l1_sparse"),
        ("UA", "RA", "TA", "MIA"),
    ),
    Row(
        "shapes-sd",
        "shapes",
        "sd",
        "concept=circle;anchor=shape",
        ("uce", "rece", "esd", "concept_ablation", "fdiv", "advunlearn"),
        _CONCEPT,
        False,
        25,
    ),
    Row(
        "digits-i2i",
        "digits",
        "i2i",
        "classes=0,1,2,3,4",
        ("i2i", "i2i_retain_label", "i2i_noisy_label"),
        ("inpaint_forget_accuracy", "inpaint_retain_accuracy", "outpaint_forget_accuracy", "outpaint_retain_accuracy"),
    ),
)


class Task:
    """A row's family, request, base model, retrain cost and one evaluator per seed."""

    def __init__(self, row: Row):
        from genunlearn.families import family_for_kind
        from genunlearn.forget.request import parse_forget

        self.row, self.family = row, family_for_kind(row.kind)
        self.request = parse_forget(row.forget)
        self.base = self.family.train(self.family.job(row.task, row.kind), progress=False)
        retrain = self.family.job(row.task, row.kind, forget=self.request)
        self.retrain = self.family.train(retrain, progress=False) if row.retrain else None
        self.retrain_seconds = (self.retrain or self.base).info["train_seconds"]
        self._evaluators = {}

    def evaluate(self, model, seed: int) -> dict:
        if seed not in self._evaluators:
            self._evaluators[seed] = self.family.evaluator(
                self.row.task,
                self.request,
                reference=self.base,
                n_per_prompt=self.row.n_per_prompt,
                seed=seed,
                progress=False,
            )
        return self._evaluators[seed](model)

    def unlearn(self, name: str, seed: int) -> dict:
        """The method with its defaults for this base model (and ``seed`` where it has one), run as
        ``gu.unlearn`` (and so ``genunlearn unlearn``) runs it, and judged."""
        import genunlearn as gu
        from genunlearn.methods.base import method_class

        config_class = method_class(name, self.family.name).Config
        options = {"seed": seed} if "seed" in {f.name for f in fields(config_class)} else {}
        t0 = time.perf_counter()
        model = gu.unlearn(self.base, name, self.request, **options)
        seconds = time.perf_counter() - t0
        return {**self.evaluate(model, seed), "seconds": seconds, "retrain_seconds": self.retrain_seconds}


def table(row: Row, results: dict[str, list[dict]]) -> list[str]:
    """Markdown: one line per method (and the base model), mean ± sample std over seeds."""
    from genunlearn.families import family_for_kind

    specs = {s.key: s for s in family_for_kind(row.kind).metrics}

    def cell(key: str, runs: list[dict]) -> str:
        """The metric's own format; shares print as percentages."""
        fmt = specs[key].fmt[2:-1]  # "{:.1%}" -> ".1%"
        scale, fmt = (100, fmt[:-1] + "f") if fmt.endswith("%") else (1, fmt)
        text = fmt_mean_sd([scale * r[key] for r in runs if key in r], fmt.lstrip("+"))
        signed = fmt.startswith("+") and text != "—" and not text.startswith("-")
        return ("+" if signed else "") + text + (" %" if scale == 100 and text != "—" else "")

    head = [specs[k].label for k in row.metrics]
    lines = [
        f"| {row.name} ({row.forget}) | "
        + " | ".join(head)
        + " | seconds | time / retrain"
        + ("†" if not row.retrain else "")
        + " |",
        "|---" * (len(head) + 3) + "|",
    ]
    for name, runs in results.items():
        cells = [cell(k, runs) for k in row.metrics]
        seconds = [r["seconds"] for r in runs if "seconds" in r]
        ratio = [r["seconds"] / r["retrain_seconds"] for r in runs if "retrain_seconds" in r]
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {fmt_mean_sd(seconds, '.0f')} | {fmt_mean_sd(ratio, '.3f')} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=None, help="comma-separated row names (default: all, in order)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="runs/defaults")
    ap.add_argument("--cached", action="store_true", help="print the rows already measured; compute nothing")
    args = ap.parse_args()
    names = [r.name for r in ROWS]
    unknown = [n for n in (args.only or "").split(",") if n and n not in names]
    if unknown:
        ap.error(f"--only: unknown row {unknown[0]!r}; expected some of {', '.join(names)}")
    if not all(s.strip().isdigit() for s in args.seeds.split(",")):
        ap.error(f"--seeds: expected comma-separated non-negative integers, got {args.seeds!r}")
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = [r for r in ROWS if args.only is None or r.name in args.only.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = Rows(out / "rows.json")
    tables = []
    for row in chosen:
        print(f"== {row.name}: {row.kind} on {row.task}, forget {row.forget}", flush=True)
        task = functools.cache(lambda row=row: Task(row))  # built (models loaded) only when a row is computed

        def measured(key: str, compute) -> list[dict]:
            """The rows of ``key`` for every seed (with ``--cached``, only those already measured)."""
            keys = [(f"{row.name}/{key}/{s}", s) for s in seeds]
            return [rows.get(k, lambda s=s: compute(task(), s)) for k, s in keys if not args.cached or k in rows.rows]

        results = {"original (no unlearning)": measured("base", lambda t, s: t.evaluate(t.base, s))}
        if row.retrain:  # the gold standard, judged the same way
            results["retrain (gold standard)"] = measured("retrain", lambda t, s: t.evaluate(t.retrain, s))
        for name in row.methods:
            results[name] = measured(name, lambda t, s, name=name: t.unlearn(name, s))
            for s, r in zip(seeds, results[name]):
                print(
                    f"  {name} seed {s}: " + ", ".join(f"{k} {r[k]:.4g}" for k in (*row.metrics, "seconds") if k in r)
                )
        measured_rows = {k: v for k, v in results.items() if v}
        done = len(measured_rows) > 1  # more than the original
        tables.append("\n".join(table(row, measured_rows)) if done else f"{row.name} ({row.forget}): not measured yet")
        print("\n" + tables[-1] + "\n", flush=True)
    print(f"\n## With no options, test split, seeds {args.seeds}, mean ± sample std\n")
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
