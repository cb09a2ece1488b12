"""Reports: leaderboards, sample grids, 2D scatter and trade-off plots, all read from run folders.

Numbers come from each cell's ``metrics.json`` and pictures from its ``samples.npz``; nothing is
retyped. ``build_report(runs)`` writes ``runs/report.md`` (and PNGs beside it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

COST = [("seconds", "time (s)", "{:.1f}"), ("time_ratio", "time / retrain", "{:.2f}")]
CELL_ORDER = ("base", "retrain")


def metric_specs(rows: dict[str, dict]) -> list:
    """The columns of the families the rows come from (every family for rows that do not say)."""
    from genunlearn.families import FAMILIES, get_family

    names = {r.get("family") for r in rows.values()}
    names = list(FAMILIES) if None in names or not names else sorted(names)
    return [spec for n in names for spec in get_family(n).metrics]


def read_metrics(run_dir: Path) -> dict:
    """A cell's metrics; a corrupt or incomplete file is one line naming it."""
    import math

    from genunlearn.errors import GenUnlearnError

    path = Path(run_dir) / "metrics.json"
    try:
        m = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise GenUnlearnError(f"{path}: corrupt metrics file ({e.__class__.__name__}); rerun the cell or delete its folder") from None
    if not isinstance(m, dict):
        raise GenUnlearnError(f"{path}: expected a JSON object of metrics")
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
    columns = [(s.key, s.label, s.fmt) for s in specs] + COST
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
    gaps = [s.gap * abs(row[s.key] - retrain[s.key]) for s in specs if s.gap and isinstance(row.get(s.key), (int, float)) and isinstance(retrain.get(s.key), (int, float))]
    return float(np.mean(gaps)) if gaps else None


def summary(task_rows: dict[str, dict[str, dict]]) -> str:
    """One line per task: the method closest to retrain (gap in points) and its cost."""
    lines = ["| task | forget | closest to retrain | gap (pts) ↓ | time / retrain | base gap (pts) |", "|---|---|---|---|---|---|"]
    for task, rows in task_rows.items():
        retrain = rows.get("retrain")
        methods = {c: r for c, r in rows.items() if c not in CELL_ORDER}
        specs = metric_specs(rows)
        scored = {c: gap_to_retrain(r, retrain, specs) for c, r in methods.items()} if retrain else {}
        scored = {c: g for c, g in scored.items() if g is not None}
        if not scored:
            continue
        best = min(scored, key=scored.get)
        ratio = methods[best]["seconds"] / retrain["seconds"] if retrain.get("seconds") and isinstance(methods[best].get("seconds"), (int, float)) else float("nan")
        base_gap = gap_to_retrain(rows["base"], retrain, specs) if "base" in rows else None
        lines.append(f"| {task} | `{retrain.get('forget')}` | {best} | {scored[best]:.2f} | {ratio:.2f} | " + (f"{base_gap:.2f}" if base_gap is not None else "–") + " |")
    return "\n".join(lines) if len(lines) > 2 else "No task has a gap-to-retrain metric yet."


def _cells(task_dir: Path) -> dict[str, Path]:
    found = {p.name: p for p in task_dir.iterdir() if (p / "metrics.json").is_file()}
    order = [c for c in CELL_ORDER if c in found] + sorted(c for c in found if c not in CELL_ORDER)
    return {c: found[c] for c in order}


def _load_samples(cell: Path) -> torch.Tensor:
    """A cell's preview arrays; a corrupt or incomplete file is one line naming it."""
    import zipfile

    from genunlearn.errors import GenUnlearnError

    path = cell / "samples.npz"
    try:
        f = np.load(path, allow_pickle=False)
        if not hasattr(f, "files"):
            raise ValueError("not an .npz archive")
        with f:
            if "samples" in f.files:
                s = f["samples"]
                if s.ndim != 2 or s.shape[1] != 2 or not np.issubdtype(s.dtype, np.floating):
                    raise ValueError(f"'samples' must be float (N, 2), got {s.dtype} {s.shape}")
                return torch.from_numpy(s)
            if "images" not in f.files:
                raise ValueError("holds neither 'samples' nor 'images'")
            im = f["images"]
            if im.ndim != 4 or im.dtype != np.uint8 or im.shape[-1] not in (1, 3) or not len(im):
                raise ValueError(f"'images' must be uint8 (N, H, W, C), got {im.dtype} {im.shape}")
            return torch.from_numpy(im).permute(0, 3, 1, 2).float() / 127.5 - 1
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise GenUnlearnError(f"{path}: corrupt samples file ({str(e).splitlines()[0] if str(e) else type(e).__name__}); rerun the cell or delete its folder") from None


def _tradeoff_plot(rows: dict[str, dict], path: Path) -> Path | None:
    from genunlearn.bench.figures import _plt, save_figure

    forget_key = next((k for k in ("forget_rate", "forget_mass", "erased_rate") if all(k in r for r in rows.values())), None)
    retain_key = next((k for k in ("fd_retain", "mmd_retain", "fd_vs_base") if all(k in r for r in rows.values())), None)
    if forget_key is None or retain_key is None:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    secs = np.array([max(r.get("seconds", 1.0), 1e-3) for r in rows.values()])
    sizes = 30 + 300 * secs / secs.max()
    for (name, r), s in zip(rows.items(), sizes):
        ax.scatter(r[forget_key], r[retain_key], s=s, alpha=0.6)
        ax.annotate(name, (r[forget_key], r[retain_key]), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel(f"{forget_key} (↓ better)")
    ax.set_ylabel(f"{retain_key} (↓ better)")
    ax.set_title("forget vs retain (marker area ∝ wall time)", fontsize=9)
    return save_figure(fig, path)


def build_report(runs: str | Path) -> Path:
    """Write ``runs/report.md``, ``runs/report.html`` and the PNGs from every ``runs/<task>/<cell>/``
    folder found."""
    from genunlearn.bench.figures import save_sample_grids, save_scatter
    from genunlearn.bench.html import markdown_to_html
    from genunlearn.checkpoint import atomic_write_text

    from genunlearn.checkpoint import check_writable
    from genunlearn.errors import GenUnlearnError

    runs = Path(runs)
    if not runs.is_dir():
        raise GenUnlearnError(f"{runs}: no such runs folder")
    check_writable(runs / "report.md", folder=False, what="")
    tasks = sorted(p for p in runs.iterdir() if p.is_dir() and any((c / "metrics.json").is_file() for c in p.iterdir() if c.is_dir()))
    task_rows = {t.name: {c: read_metrics(p) for c, p in _cells(t).items()} for t in tasks}
    parts = ["# genunlearn benchmark report", "", "Every number below is read from the run folders' `metrics.json`; every picture uses the same seeds for every model.", ""]
    parts += ["## Summary", "", "Gap = mean absolute difference to retrain-from-scratch in percentage points, over forget rate or mass, retain accuracy and off-support mass (generative tasks; erased-concept rate and attribute preservation for concept erasure) or UA, RA, TA, MIA (classifiers: SalUn's Avg. Gap). I2I tasks are judged against the noise reference S_noise instead (a retrained model may still complete forget images), so they appear only in their own leaderboards.", "", summary(task_rows), ""]
    for task_dir in tasks:
        cells = _cells(task_dir)
        rows = task_rows[task_dir.name]
        first = next(iter(rows.values()))
        parts += [f"## {task_dir.name}", "", f"Forget request: `{first.get('forget')}`.", "", leaderboard(rows), ""]
        samples = {c: _load_samples(p) for c, p in cells.items() if (p / "samples.npz").is_file()}
        if samples:
            fig = runs / f"{task_dir.name}-samples.png"
            if next(iter(samples.values())).dim() == 2:
                save_scatter(samples, fig)
            else:
                n = next(iter(samples.values())).shape[0]
                save_sample_grids(samples, rows=max(1, n // 8), path=fig)
            parts += [f"![{task_dir.name} samples]({fig.name})", ""]
        trade = _tradeoff_plot(rows, runs / f"{task_dir.name}-tradeoff.png")
        if trade is not None:
            parts += [f"![{task_dir.name} trade-off]({trade.name})", ""]
    report = runs / "report.md"
    atomic_write_text(report, "\n".join(parts))
    atomic_write_text(runs / "report.html", markdown_to_html("\n".join(parts)))
    return report
