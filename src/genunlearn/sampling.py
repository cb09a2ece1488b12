"""Sampling a saved model into the library's ``.npz`` exchange format."""

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
    from genunlearn.data.dataset import Dataset, prompt_to_cond

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
        lookup = Dataset("model", torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), attrs)
        ids = torch.tensor([lookup.class_id(t.strip()) for t in labels.split(",") if t.strip()])
    else:
        ids = torch.arange(k)
    lab = ids.repeat((n + len(ids) - 1) // len(ids))[:n]
    return model.cond_for_labels(lab), lab.numpy()


def sample_to_npz(model_dir, n: int, out, *, labels=None, prompt=None, steps=None, guidance=None, seed: int = 0) -> Path:
    from genunlearn.generative import GenerativeModel

    model = GenerativeModel.from_pretrained(model_dir)
    cond, lab = conditions(model, n, labels, prompt)
    kw = {k: v for k, v in {"steps": steps, "guidance": guidance}.items() if v is not None}
    x = model.sample(n, cond, generator=torch.Generator().manual_seed(seed), **kw)
    arrays = {"labels": lab}
    if model.data["kind"] == "points":
        arrays["samples"] = x.numpy().astype(np.float32)
    else:
        arrays["images"] = to_uint8_images(x)
    return write_npz(out, arrays)


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
