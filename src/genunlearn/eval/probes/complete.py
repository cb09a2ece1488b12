"""Completion attack for image-to-image models: are forget images completed once more is visible?

I2I unlearning trains the encoder on the training mix of masks (centre hidden, border hidden, or a
random 50–75 % hidden). The attacker shows the model a growing visible area of each held-out
forget image (a smaller hole), with the same random patch masks (seeded) for every model, and
the domain judge counts the completions it assigns to a forgotten class: the attack success rate (ASR) at each share. Because
the visible pixels alone may already show the class, every share is also judged with the hidden
pixels filled by the image's mean and no model at all (``fill``: the floor the visible area gives),
and the masked-region MSE measures what the model itself added. "No attack" is the smallest share
(by default 50 %, inside the training mix), "attack" the largest.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from genunlearn.errors import GenUnlearnError
from genunlearn.eval.probes.common import Counter, task_of


@dataclass
class CompleteConfig:
    visible: tuple[float, ...] = (0.5, 0.75, 0.875)  # shares of the patches the attacker shows, increasing
    n: int = 200  # held-out forget images
    seed: int = 0

    def check(self) -> None:
        v = tuple(self.visible)
        if not v or list(v) != sorted(set(v)) or not all(0 < s < 1 and math.isfinite(s) for s in v):
            raise GenUnlearnError(f"complete visible must be distinct, increasing shares in (0, 1), got {v}")
        if self.n < 1:
            raise GenUnlearnError(f"complete n must be >= 1, got {self.n}")


def check_i2i(model, probe: str) -> None:
    if getattr(model, "family", None) != "i2i":
        raise GenUnlearnError(
            f"the {probe} probe runs on I2I models; this is a {getattr(model, 'family', type(model).__name__)} model"
        )


def held_out_forget(model, request, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, class ids) of up to ``n`` held-out (test) forget images, a fixed seeded subset."""
    from genunlearn.eval.i2i import held_out_splits

    forget = held_out_splits(task_of(model), request)["forget"]
    idx = torch.randperm(len(forget), generator=torch.Generator().manual_seed(seed))[:n]
    return forget.x[idx], forget.labels[idx]


def patch_mask(n: int, grid: int, visible: float, g: torch.Generator) -> torch.Tensor:
    """``(n, L)`` visible patches: a random ``round(visible · L)`` of them per image (at least one hidden)."""
    L = grid * grid
    keep = min(L - 1, max(1, round(visible * L)))
    rank = torch.rand(n, L, generator=g, device="cpu").argsort(1).argsort(1)  # a mask, placed with its images
    return rank < keep


def inpaint_rate(model, x: torch.Tensor, counter: Counter, net=None) -> float:
    """The judged share of forgotten content among completions of ``x`` under the evaluation's
    inpainting mask (centre hidden)."""
    from genunlearn.i2i.masks import task_mask

    m = model if net is None else type(model)(net, model.data, model.info)
    return counter.rate(m.complete(x, task_mask("inpaint", len(x), m.net.grid)))


def complete_probe(model, request, cfg: CompleteConfig | None = None, *, counter: Counter | None = None) -> dict:
    """Per visible share: ASR of the completions, ASR of the mean fill (no model) and the masked MSE;
    the completions at the largest share (``arrays``: the ``sample`` format, labels = the originals'
    classes, plus ``hidden``, 255 = generated)."""
    import numpy as np

    from genunlearn.io.samples import to_uint8_images

    cfg = cfg or CompleteConfig()
    cfg.check()
    check_i2i(model, "complete")
    counter = counter or Counter(model, request)
    x, labels = held_out_forget(model, request, cfg.n, cfg.seed)
    t0 = time.perf_counter()
    out = {
        "probe": "complete",
        "forget": request.spec(),
        "n": int(len(x)),
        "visible": list(cfg.visible),
        "asr": [],
        "asr_fill": [],
        "mse": [],
    }
    g = torch.Generator().manual_seed(cfg.seed + 1)
    for share in cfg.visible:
        visible = patch_mask(len(x), model.net.grid, share, g)
        hidden = model.net.hidden_pixels(visible)
        comp = model.complete(x, visible)
        fill = hidden * x.mean((1, 2, 3), keepdim=True) + (1 - hidden) * x
        out["asr"].append(counter.rate(comp))
        out["asr_fill"].append(counter.rate(fill))
        out["mse"].append(float(((comp - x) ** 2 * hidden).sum() / hidden.sum() / x.shape[1]))
    out["asr_no_attack"], out["asr_attack"] = out["asr"][0], out["asr"][-1]
    out["seconds"] = round(time.perf_counter() - t0, 2)
    out["arrays"] = {
        "images": to_uint8_images(comp),
        "labels": labels.numpy().astype(np.int64),
        "hidden": (hidden.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8),
    }
    return out
