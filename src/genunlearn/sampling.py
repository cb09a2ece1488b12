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


def conditions(model, n: int, labels: str | None = None, prompt: str | None = None) -> tuple[torch.Tensor | None, np.ndarray]:
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
        row = prompt_to_cond(attrs, prompt)
        cond = row.repeat(n, 1)
        return cond, cond[:, 0].numpy()
    k = len(attrs[0].values)
    if labels:
        ids = torch.tensor([class_id(attrs, t.strip()) for t in labels.split(",") if t.strip()])
    else:
        ids = torch.arange(k)
    lab = ids.repeat((n + len(ids) - 1) // len(ids))[:n]
    return model.cond_for_labels(lab), lab.numpy()


def write_npz(out, arrays: dict) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".npz", dir=out.parent)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
