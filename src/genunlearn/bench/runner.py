"""Run a suite: base and retrain models, every method, all judged the same way per family.

Under ``accelerate launch`` every process trains (the loop averages their gradients); only the
main process evaluates, writes cell folders and logs.

Each cell writes ``<out>/<task>/<cell>/{model/, metrics.json, samples.npz, log.jsonl}`` in one
atomic rename, keyed by a config hash: a rerun skips finished cells, and an interrupted cell
leaves nothing behind and reruns cleanly.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from genunlearn.bench.cells import TaskCells
from genunlearn.bench.tasks import Task, suite_tasks
from genunlearn.io.weights import atomic_dir, write_json
from genunlearn.eval.renamed import current_names
from genunlearn.distributed import is_main_process
from genunlearn.io.cache import config_hash


PROBES_VERSION = 2  # bump when the suite's probe budgets (eval.probes.suite_probes) change


def cell_key(task: Task, cell: str, base_key: str, config: dict, budget: int | None, probes: bool = True) -> str:
    return config_hash(
        {
            "task": task.name,
            "cell": cell,
            "base": base_key,
            "config": config,
            "budget": budget,
            "n": task.n_per_prompt,
            "probes": PROBES_VERSION if probes else None,
        }
    )


def finished(folder: Path, key: str) -> bool:
    path = folder / "metrics.json"
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("key") == key
    except json.JSONDecodeError:
        return False


def check_runs_folder(out: str | Path, tasks) -> Path:
    """Before any work: ``out`` must be writable and new, empty, or a runs folder (its entries are
    task folders, reports and figures); anything else is refused in one line."""
    from genunlearn.io.weights import check_writable
    from genunlearn.errors import GenUnlearnError

    out = Path(out)
    check_writable(out, folder=True)
    if out.is_dir():
        names = {t.name for t in tasks}
        foreign = [
            p.name
            for p in out.iterdir()
            if not (
                p.name in names
                or p.name.startswith(("report", "."))
                or p.suffix == ".png"
                or (p.is_dir() and any((c / "metrics.json").is_file() for c in p.iterdir() if c.is_dir()))
            )
        ]
        if foreign:
            raise GenUnlearnError(
                f"--out {out} holds {foreign[0]!r}, which is not a genunlearn run; choose a new or empty folder"
            )
    return out


def write_cell(folder: Path, result, metrics: dict) -> None:
    with atomic_dir(folder) as tmp:  # leftovers of interrupted saves are cleaned by atomic_dir
        result.write(tmp)
        write_json(tmp / "metrics.json", metrics)
        (tmp / "log.jsonl").write_text(
            json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}) + "\n"
        )


def run_suite(suite: str, out: str | Path, *, progress: bool = True, log=print, probes: bool = True) -> list[dict]:
    """Run (or resume) every cell of ``suite`` under ``out``; returns one summary row per cell.
    ``probes``: run the robustness probes on every cell (relearning and the family's attack)."""
    from tqdm.auto import tqdm

    scale, tasks = suite_tasks(suite)
    out = check_runs_folder(out, tasks)
    total = sum(2 + len(t.methods) for t in tasks)
    main = is_main_process()  # under accelerate launch every rank trains; the main one judges and writes
    bar = tqdm(total=total, desc=f"suite {suite}", disable=None if progress and main else True, dynamic_ncols=True)
    rows = []
    for task in tasks:
        family = TaskCells(task, scale, progress, probes)
        retrain_seconds = None
        cells = [("base", None, {}), ("retrain", None, {})] + [
            (m, m, task.method_config.get(m, {})) for m in task.methods
        ]
        for cell, method_name, config in cells:
            folder = out / task.name / cell
            if method_name:  # a cell may name its method: {"fdiv-chi2": {"method": "fdiv", ...}}
                options = {k: v for k, v in config.items() if k != "method"}
                method, budget = family.method(config.get("method", method_name), options)
            else:
                method, budget = None, None
            settings = asdict(method.config) if method is not None else config
            key = cell_key(task, cell, family.base_key, settings, budget, probes)  # a new pick reruns the cell
            if finished(folder, key):
                metrics = current_names(json.loads((folder / "metrics.json").read_text()))
                log(f"[{task.name}] {cell}: done already (skipped)")
            else:
                t0 = time.perf_counter()
                result = family.run(cell, method, budget)
                wall = time.perf_counter() - t0  # the cell's cost including evaluation
                metrics = {
                    **result.metrics,
                    "key": key,
                    "task": task.name,
                    "cell": cell,
                    "seconds": result.seconds,
                    "wall_seconds": wall,
                    "forget": task.forget,
                    "suite": suite,
                }
                if main:
                    write_cell(folder, result, metrics)
                    log(f"[{task.name}] {cell}: {_summary(metrics)}")
            if cell == "retrain":
                retrain_seconds = metrics["seconds"]
            rows.append(
                {
                    **{k: v for k, v in metrics.items() if not isinstance(v, (dict, list))},
                    "time_ratio": metrics["seconds"] / retrain_seconds if retrain_seconds else None,
                }
            )
            bar.update(1)
    bar.close()
    return rows


def _summary(m: dict) -> str:
    keys = (
        "forgotten_class_still_drawn",
        "forget_mass",
        "concept_still_shown",
        "attribute_preservation",
        "retain_accuracy",
        "fd_retain",
        "mmd_retain",
        "off_support",
        "UA",
        "RA",
        "TA",
        "MIA",
        "inpaint_forget_accuracy",
        "inpaint_retain_accuracy",
        "attack_asr",
        "relearn_ratio",
        "seconds",
    )
    return ", ".join(f"{k} {m[k]:.4g}" for k in keys if isinstance(m.get(k), (int, float)))
