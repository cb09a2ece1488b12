"""The library's ``.npz`` exchange format: uint8 images or float32 points, labels, atomic writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from genunlearn.errors import GenUnlearnError


def to_uint8_images(x: torch.Tensor) -> np.ndarray:
    """``(N, C, H, W)`` in [-1, 1] → ``(N, H, W, C)`` uint8."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def conditions(
    model, n: int, labels: str | None = None, prompt: str | None = None
) -> tuple[torch.Tensor | None, np.ndarray]:
    """(conditioning rows, labels to record) for ``n`` samples; -1 labels for unconditional models."""
    from genunlearn.data.dataset import class_id, prompt_to_cond

    attrs = model.attributes
    if not model.conditional:
        if labels or prompt:
            raise GenUnlearnError("this model is unconditional: --labels/--prompt do not apply")
        return None, np.full(n, -1, dtype=np.int64)
    if prompt is not None:
        if labels:
            raise GenUnlearnError("give --labels or --prompt, not both")
        try:
            row = prompt_to_cond(attrs, prompt)
        except GenUnlearnError:  # not the task's words: a text-to-image pipeline takes any text
            if not hasattr(model, "prompt_cond"):
                raise
            row = model.prompt_cond([prompt])[0]
        cond = row.repeat(n, 1)
        return cond, cond[:, 0].clamp_min(-1).numpy()  # -1: a free-text prompt, no class

    k = len(attrs[0].values)
    if labels:
        ids = torch.tensor([class_id(attrs, t.strip()) for t in labels.split(",") if t.strip()], dtype=torch.long)
        if not len(ids):
            raise GenUnlearnError(
                f"--labels {labels!r} names no class; give ids or names, e.g. 0,3 or {attrs[0].values[0]}"
            )
    else:
        ids = torch.arange(k)
    lab = ids.repeat((n + len(ids) - 1) // len(ids))[:n]
    return model.cond_for_labels(lab), lab.numpy()


MAX_SAMPLES = 10_000_000  # beyond this, ask for several files


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_sample_request(model, n: int, out) -> None:
    """Refuse, before sampling, a request whose arrays cannot fit in memory or on disk (one line,
    with the numbers)."""
    import math
    import shutil

    from genunlearn.io.weights import resolve_out

    if n > MAX_SAMPLES:
        raise GenUnlearnError(
            f"--n must be between 1 and {MAX_SAMPLES:,}, got {n:,} (draw several files with different --seed)"
        )
    per = math.prod(model.sample_shape)
    arrays = 4 if getattr(model, "family", "") == "i2i" else 1  # I2I files also hold originals, inputs and masks
    file_bytes = n * (per * arrays * (1 if model.data.get("kind") == "images" else 4) + 8)
    memory_bytes = n * per * 4 * (2 + arrays)  # float32 samples, their conversion, the arrays written
    free_disk = shutil.disk_usage(resolve_out(out).parent if resolve_out(out).parent.exists() else Path.cwd()).free
    if file_bytes > free_disk:
        raise GenUnlearnError(
            f"--n {n:,} would write {file_bytes / 1e9:.2f} GB, but only {free_disk / 1e9:.2f} GB are free there"
        )
    mem = _available_memory()
    if mem is not None and memory_bytes > mem:
        raise GenUnlearnError(
            f"--n {n:,} needs about {memory_bytes / 1e9:.2f} GB of memory, but {mem / 1e9:.2f} GB are available; ask for fewer samples"
        )


def write_npz(out, arrays: dict) -> Path:
    """Write ``arrays`` to ``out`` through a temporary file and a rename (a symlinked ``out`` is
    followed; the file gets the user's umask)."""
    from genunlearn.io.weights import _chmod_default, _mkdirs, resolve_out

    out = Path(out)
    target = resolve_out(out)
    _mkdirs(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".npz", dir=target.parent)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        _chmod_default(Path(tmp), False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
