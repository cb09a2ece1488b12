"""``genunlearn sample`` on an I2I model: completions of held-out images next to their originals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genunlearn.errors import GenUnlearnError


def completions_to_npz(model_dir, n: int, out, *, mask: str = "inpaint", labels: str | None = None, seed: int = 0) -> Path:
    """Complete ``n`` seeded test images (of the ``labels`` classes, default all) under ``mask``.

    The ``.npz`` holds ``images`` (completions), ``originals``, ``masked`` (the input: hidden
    pixels grey), ``hidden`` (1 = generated pixel), all uint8 ``(N, H, W, C)``, and ``labels``.
    """
    from genunlearn.data import load_dataset
    from genunlearn.i2i.masks import task_mask
    from genunlearn.i2i.model import I2IModel
    from genunlearn.sampling import to_uint8_images, write_npz

    model = I2IModel.from_pretrained(model_dir)
    test = load_dataset(model.info.get("task", model.data["name"]), "test")
    pool = torch.arange(len(test))
    if labels:
        ids = torch.tensor([test.class_id(t.strip()) for t in labels.split(",") if t.strip()])
        pool = torch.isin(test.labels, ids).nonzero().squeeze(1)
        if not len(pool):
            raise GenUnlearnError(f"no test images of classes {labels}")
    g = torch.Generator().manual_seed(seed)
    idx = pool[torch.randperm(len(pool), generator=g).repeat((n + len(pool) - 1) // len(pool))[:n]]
    x = test.x[idx]
    visible = task_mask(mask, n, model.net.grid)
    hidden = model.net.hidden_pixels(visible)
    arrays = {
        "images": to_uint8_images(model.complete(x, visible)),
        "originals": to_uint8_images(x),
        "masked": to_uint8_images(x * (1 - hidden)),
        "hidden": (hidden.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8),
        "labels": test.labels[idx].numpy(),
    }
    return write_npz(out, arrays)
