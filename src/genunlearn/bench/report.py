"""Reports: leaderboards with robustness columns, labelled sample grids, 2D scatter, trade-off
and relearning-curve plots, all read from run folders.

Numbers come from each cell's ``metrics.json`` and pictures from its ``samples.npz``; nothing is
retyped. ``build_report(runs)`` writes ``runs/report.md`` (PNGs beside it) and a self-contained
``runs/report.html`` (the PNGs embedded).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

COST = [("seconds", "time (s) ↓", "{:.1f}"), ("time_ratio", "time / retrain ↓", "{:.2f}")]
# the robustness probes bench runs on every cell (bench.cells.TaskCells.robustness)
ROBUSTNESS = [("attack_asr", "attack ASR ↓", "{:.1%}"), ("relearn_ratio", "relearn AUC / retrain ↓", "{:.2f}")]
CELL_ORDER = ("base", "retrain")
# (forget, retain) axes of the trade-off plot, the first pair every row has
TRADEOFF_KEYS = (
    ("forgotten_class_still_drawn", "forget_mass", "concept_still_shown", "UA", "inpaint_forget_accuracy"),
    ("fd_retain", "mmd_retain", "fd_vs_base", "RA", "inpaint_retain_accuracy"),
)


def metric_specs(rows: dict[str, dict]) -> list:
    """The columns of the families the rows come from (every family for rows that do not say)."""
    from genunlearn.families import FAMILIES, get_family

    names = {r.get("family") for r in rows.values()}
    names = list(FAMILIES) if None in names or not names else sorted(names)
    return [spec for n in names for spec in get_family(n).metrics]


def read_metrics(run_dir: Path) -> dict:
    """A cell's metrics, under the current names (``eval.renamed``); a corrupt or incomplete file is
    one line naming it."""
    import math

    from genunlearn.errors import GenUnlearnError
    from genunlearn.eval.renamed import current_names

    path = Path(run_dir) / "metrics.json"
    try:
        m = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise GenUnlearnError(
            f"{path}: corrupt metrics file ({e.__class__.__name__}); rerun the cell or delete its folder"
        ) from None
    if not isinstance(m, dict):
        raise GenUnlearnError(f"{path}: expected a JSON object of metrics")
    m = current_names(m)
    bad = [k for k, v in m.items() if isinstance(v, float) and not math.isfinite(v) and k != "time_ratio"]
    seconds = m.get("seconds")
    if seconds is not None and (not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0):
        bad.append("seconds")
    if bad:
        raise GenUnlearnError(f"{path}: bad value for {bad[0]!r} ({m[bad[0]]!r}); rerun the cell or delete its folder")
    return m


def leaderboard(rows: dict[str, dict]) -> str:
    """Markdown table, one row per model, only the columns some row has; adds time/retrain and
    the mean absolute gap to retrain, in percentage points, over the rate metrics present
    (``MetricSpec.gap`` of the rows' families)."""
    rows = {k: dict(v) for k, v in rows.items()}
    retrain = rows.get("retrain")
    if retrain and retrain.get("seconds"):
        for r in rows.values():
            if isinstance(r.get("seconds"), (int, float)):
                r.setdefault("time_ratio", r["seconds"] / retrain["seconds"])
    specs = metric_specs(rows)
    columns = [(s.key, s.label, s.fmt) for s in specs] + ROBUSTNESS + COST
    cols = [c for c in columns if any(isinstance(r.get(c[0]), (int, float)) for r in rows.values())]
    gap_keys = [s.key for s in specs if s.gap and retrain and isinstance(retrain.get(s.key), (int, float))]
    head = "| model | " + " | ".join(c[1] for c in cols) + (" | gap to retrain (pts) ↓ |" if gap_keys else " |")
    sep = "|---|" + "---|" * (len(cols) + bool(gap_keys))
    body = []
    for name, r in rows.items():
        cells = [c[2].format(r[c[0]]) if isinstance(r.get(c[0]), (int, float)) else "–" for c in cols]
        if gap_keys:
            gap = gap_to_retrain(r, retrain, specs)
            cells.append(f"{gap:.2f}" if gap is not None else "–")
        body.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join([head, sep, *body])


def gap_to_retrain(row: dict, retrain: dict, specs: list) -> float | None:
    """Mean absolute gap to retrain in points over the gap metrics (``MetricSpec.gap``) both rows
    have (for the classifier metrics, already in %, this is SalUn's Avg. Gap)."""
    gaps = [
        s.gap * abs(row[s.key] - retrain[s.key])
        for s in specs
        if s.gap and isinstance(row.get(s.key), (int, float)) and isinstance(retrain.get(s.key), (int, float))
    ]
    return float(np.mean(gaps)) if gaps else None


def summary(task_rows: dict[str, dict[str, dict]]) -> str:
    """One line per task: the method closest to retrain (gap in points) and its cost."""
    lines = [
        "| task | forget | closest to retrain | gap (pts) ↓ | time / retrain | base gap (pts) |",
        "|---|---|---|---|---|---|",
    ]
    for task, rows in task_rows.items():
        retrain = rows.get("retrain")
        methods = {c: r for c, r in rows.items() if c not in CELL_ORDER}
        specs = metric_specs(rows)
        scored = {c: gap_to_retrain(r, retrain, specs) for c, r in methods.items()} if retrain else {}
        scored = {c: g for c, g in scored.items() if g is not None}
        if not scored:
            continue
        best = min(scored, key=scored.get)
        ratio = (
            methods[best]["seconds"] / retrain["seconds"]
            if retrain.get("seconds") and isinstance(methods[best].get("seconds"), (int, float))
            else float("nan")
        )
        base_gap = gap_to_retrain(rows["base"], retrain, specs) if "base" in rows else None
        lines.append(
            f"| {task} | `{retrain.get('forget')}` | {best} | {scored[best]:.2f} | {ratio:.2f} | "
            + (f"{base_gap:.2f}" if base_gap is not None else "–")
            + " |"
        )
    return "\n".join(lines) if len(lines) > 2 else "No task has a gap-to-retrain metric yet."


def robustness_excess(row: dict, retrain: dict) -> float | None:
    """How far the probes bring a model back beyond the retrain model, in points: the mean of
    max(0, attack ASR − retrain's) × 100 and max(0, relearning AUC ratio − 1) × 100 over the probes
    both rows have (0: no more recoverable than a model that never saw the data)."""
    terms = []
    if isinstance(row.get("attack_asr"), (int, float)) and isinstance(retrain.get("attack_asr"), (int, float)):
        terms.append(100 * max(0.0, row["attack_asr"] - retrain["attack_asr"]))
    if isinstance(row.get("relearn_ratio"), (int, float)):
        terms.append(100 * max(0.0, row["relearn_ratio"] - 1))
    return float(np.mean(terms)) if terms else None


def most_robust(task_rows: dict[str, dict[str, dict]]) -> list[str]:
    """One line per task with probe results: the method least recoverable by the probes."""
    lines = []
    for task, rows in task_rows.items():
        retrain = rows.get("retrain")
        if not retrain:
            continue
        scored = {c: robustness_excess(r, retrain) for c, r in rows.items() if c not in CELL_ORDER}
        scored = {c: v for c, v in scored.items() if v is not None}
        if not scored:
            continue
        best = min(scored, key=scored.get)
        tied = [c for c in scored if c != best and scored[c] == scored[best]]
        r = rows[best]
        facts = []
        if isinstance(r.get("attack_asr"), (int, float)):
            facts.append(f"attack ASR {r['attack_asr']:.1%} (retrain {retrain.get('attack_asr', float('nan')):.1%})")
        if isinstance(r.get("relearn_ratio"), (int, float)):
            facts.append(f"relearning AUC ratio {r['relearn_ratio']:.2f} (retrain 1.00)")
        also = f" (tied with {', '.join(tied)})" if tied else ""
        lines.append(
            f"- Most robust on {task}: **{best}**{also} — {', '.join(facts)}; excess over retrain {scored[best]:.1f} pts (lower is better; {len(scored)} method{'s' if len(scored) > 1 else ''} probed)."
        )
    return lines


def _cells(task_dir: Path) -> dict[str, Path]:
    found = {p.name: p for p in task_dir.iterdir() if (p / "metrics.json").is_file()}
    order = [c for c in CELL_ORDER if c in found] + sorted(c for c in found if c not in CELL_ORDER)
    return {c: found[c] for c in order}


def _load_samples(cell: Path) -> dict:
    """A cell's preview: ``x`` (images in [-1, 1] or points), ``labels`` (or None), ``names`` (the
    class names, when the file has them) and ``forget_ids``; a corrupt or incomplete file is one
    line naming it."""
    import zipfile

    from genunlearn.errors import GenUnlearnError

    path = cell / "samples.npz"
    try:
        f = np.load(path, allow_pickle=False)
        if not hasattr(f, "files"):
            raise ValueError("not an .npz archive")
        with f:
            out = {
                "labels": f["labels"] if "labels" in f.files else None,
                "names": f["class_names"].tolist() if "class_names" in f.files else None,
                "forget_ids": f["forget_ids"].tolist() if "forget_ids" in f.files else [],
            }
            if "samples" in f.files:
                s = f["samples"]
                if s.ndim != 2 or s.shape[1] != 2 or not np.issubdtype(s.dtype, np.floating):
                    raise ValueError(f"'samples' must be float (N, 2), got {s.dtype} {s.shape}")
                return {**out, "x": torch.from_numpy(s)}
            if "images" not in f.files:
                raise ValueError("holds neither 'samples' nor 'images'")
            im = f["images"]
            if im.ndim != 4 or im.dtype != np.uint8 or im.shape[-1] not in (1, 3) or not len(im):
                raise ValueError(f"'images' must be uint8 (N, H, W, C), got {im.dtype} {im.shape}")
            return {**out, "x": torch.from_numpy(im).permute(0, 3, 1, 2).float() / 127.5 - 1}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise GenUnlearnError(
            f"{path}: corrupt samples file ({str(e).splitlines()[0] if str(e) else type(e).__name__}); rerun the cell or delete its folder"
        ) from None


def row_legend(preview: dict, rows: int) -> tuple[list[str] | None, list[bool]]:
    """(a label per grid row, whether the row shows only forgotten classes): the row's class name
    (or its classes joined), from the preview's labels and class names."""
    labels = preview["labels"]
    if labels is None or len(labels) % rows or (labels < 0).all():
        return None, [False] * rows
    names = preview["names"]
    out, marked = [], []
    for row in np.split(np.asarray(labels), rows):
        ids = list(dict.fromkeys(int(i) for i in row if i >= 0))
        out.append(",".join(names[i] if names and i < len(names) else str(i) for i in ids))
        marked.append(bool(ids) and all(i in preview["forget_ids"] for i in ids))
    return out, marked


def spec_forget_ids(spec: str | None, names: list[str] | None) -> list[int]:
    """The class ids a ``classes=`` spec forgets (for previews written before they recorded them)."""
    from genunlearn.errors import GenUnlearnError
    from genunlearn.forget.request import parse_forget

    try:
        request = parse_forget(spec) if spec else None
    except GenUnlearnError:
        return []
    if request is None or request.kind != "classes":
        return []
    return [
        c if isinstance(c, int) else names.index(c)
        for c in request.classes
        if isinstance(c, int) or (names and c in names)
    ]


def _tradeoff_plot(rows: dict[str, dict], path: Path) -> Path | None:
    """Forget (x) vs retain (y), colour and marker area by cost (time / retrain)."""
    from genunlearn.bench.figures import _plt, save_figure

    forget_key = next(
        (k for k in TRADEOFF_KEYS[0] if all(isinstance(r.get(k), (int, float)) for r in rows.values())), None
    )
    retain_key = next(
        (k for k in TRADEOFF_KEYS[1] if all(isinstance(r.get(k), (int, float)) for r in rows.values())), None
    )
    if forget_key is None or retain_key is None:
        return None
    better = {s.key: s.better for s in metric_specs(rows)}
    retrain_s = (rows.get("retrain") or {}).get("seconds") or max(r.get("seconds") or 1.0 for r in rows.values())
    cost = np.array([max(r.get("seconds") or 0.0, 1e-3) / retrain_s for r in rows.values()])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4))
    dots = ax.scatter(
        [r[forget_key] for r in rows.values()],
        [r[retain_key] for r in rows.values()],
        s=40 + 260 * cost / cost.max(),
        c=np.log10(cost),
        cmap="viridis",
        alpha=0.8,
        edgecolors="k",
        linewidths=0.5,
    )
    for name, r in rows.items():
        ax.annotate(name, (r[forget_key], r[retain_key]), fontsize=8, xytext=(5, 5), textcoords="offset points")
    fig.colorbar(dots, ax=ax).set_label("log10 time / retrain (cost)", fontsize=8)
    arrow = {
        "lower": "↓ better",
        "higher": "↑ better",
        "retrain": "closer to retrain is better",
        None: "no better side",
    }
    ax.set_xlabel(f"forget: {forget_key} ({arrow[better.get(forget_key)]})", fontsize=8)
    ax.set_ylabel(f"retain: {retain_key} ({arrow[better.get(retain_key)]})", fontsize=8)
    ax.set_title("forget vs retain vs cost (marker area and colour: time / retrain)", fontsize=9)
    return save_figure(fig, path)


def _relearn_plot(rows: dict[str, dict], path: Path) -> Path | None:
    """The relearning probe's curve of forgotten content drawn, every cell (retrain dashed: the reference)."""
    from genunlearn.bench.figures import _plt, save_figure

    curves = {
        c: r["probes"]["relearn"]["model"]
        for c, r in rows.items()
        if "model" in (r.get("probes") or {}).get("relearn", {})
    }
    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for cell, curve in curves.items():
        style = {"color": "k", "ls": "--", "lw": 2} if cell == "retrain" else {}
        ax.plot(curve["steps"], [100 * v for v in curve["forgotten_content_drawn"]], marker="o", label=cell, **style)
    k = next(iter(curves.values()))["k"]
    ax.set_xlabel(f"fine-tuning steps on k={k} forget samples")
    ax.set_ylabel("forgotten content drawn, judged (%) ↓")
    ax.set_ylim(-3, 103)
    ax.set_title("relearning: how fast the forgotten content comes back (retrain = from scratch)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    return save_figure(fig, path)


def _samples_figure(runs: Path, task: str, cells: dict, first: dict) -> list[str]:
    """The task's sample figure (2D scatter, or image grids with rows labelled and forgotten rows
    framed in red) and its markdown lines; none when no cell saved samples."""
    from genunlearn.bench.figures import save_sample_grids, save_scatter

    samples = {c: _load_samples(p) for c, p in cells.items() if (p / "samples.npz").is_file()}
    if not samples:
        return []
    fig = runs / f"{task}-samples.png"
    preview = next(iter(samples.values()))
    if preview["x"].dim() == 2:
        save_scatter({c: p["x"] for c, p in samples.items()}, fig)
        caption = "samples of every model, same seeds"
    else:
        rows_n = max(1, len(preview["x"]) // 8)
        preview["forget_ids"] = preview["forget_ids"] or spec_forget_ids(first.get("forget"), preview["names"])
        labels, marked = row_legend(preview, rows_n)
        grids = {c: p["x"] for c, p in samples.items()}
        save_sample_grids(grids, rows=rows_n, path=fig, row_labels=labels, marked=marked)
        framed = "; forgotten rows framed in red" if any(marked) else ""
        caption = "rows labelled with the classes they show, same seeds in every panel" + framed
    return [f"![{task} samples: {caption}]({fig.name})", ""]


def build_report(runs: str | Path) -> Path:
    """Write ``runs/report.md``, ``runs/report.html`` and the PNGs from every ``runs/<task>/<cell>/``
    folder found."""
    from genunlearn.bench.html import markdown_to_html
    from genunlearn.io.weights import atomic_write_text, check_writable
    from genunlearn.errors import GenUnlearnError

    runs = Path(runs)
    if not runs.is_dir():
        raise GenUnlearnError(f"{runs}: no such runs folder")
    tasks = sorted(
        p
        for p in runs.iterdir()
        if p.is_dir() and any((c / "metrics.json").is_file() for c in p.iterdir() if c.is_dir())
    )
    if not tasks:
        raise GenUnlearnError(
            f"{runs}: no runs to report (expected RUNS/<task>/<cell>/metrics.json, as `genunlearn bench --out RUNS` writes)"
        )
    check_writable(runs / "report.md", folder=False, what="")
    task_rows = {t.name: {c: read_metrics(p) for c, p in _cells(t).items()} for t in tasks}
    parts = [
        "# genunlearn benchmark report",
        "",
        "Every number below is read from the run folders' `metrics.json`; every picture uses the same seeds for every model.",
        "",
    ]
    parts += [
        "## Summary",
        "",
        "Gap = mean absolute difference to retrain-from-scratch in percentage points, over the forgotten class still drawn or the mass on the forgotten region, retained-prompt accuracy and off-support mass (generative tasks; concept still shown and attribute preservation for concept erasure) or UA, RA, TA, MIA (classifiers: SalUn's Avg. Gap). I2I tasks are judged against the noise reference S_noise instead (a retrained model may still complete forget images), so they appear only in their own leaderboards.",
        "",
        summary(task_rows),
        "",
    ]
    robust = most_robust(task_rows)
    if robust:
        parts += [
            "Robustness: each cell is attacked by the relearning probe (fine-tuning on a few forget samples; AUC of the curve of forgotten content drawn over the retrain model's) and by its family's attack (generative: the conditioning attack in the model's own vocabulary or a noise search; I2I: completion from a larger visible area); see `docs/probes.md`.",
            "",
            *robust,
            "",
        ]
    for task_dir in tasks:
        cells = _cells(task_dir)
        rows = task_rows[task_dir.name]
        first = next(iter(rows.values()))
        parts += [f"## {task_dir.name}", "", f"Forget request: `{first.get('forget')}`.", "", leaderboard(rows), ""]
        parts += _samples_figure(runs, task_dir.name, cells, first)
        for kind, plot in (("trade-off", _tradeoff_plot), ("relearning curves", _relearn_plot)):
            made = plot(rows, runs / f"{task_dir.name}-{kind.split()[0].replace('-', '')}.png")
            if made is not None:
                parts += [f"![{task_dir.name} {kind}]({made.name})", ""]
    report = runs / "report.md"
    atomic_write_text(report, "\n".join(parts))
    atomic_write_text(runs / "report.html", markdown_to_html("\n".join(parts), base=runs))
    return report
