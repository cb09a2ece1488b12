"""The one classifier trainer: judges, energy proxies and the classifier family all fit through it.

A batch source ``batches(generator, update) -> (x, y, w, epoch)`` feeds the shared loop: ``y`` holds one
column per head (or is ``(N,)`` for one head), ``w`` optional per-sample weights (``None``: the
plain mean; −1 makes gradient ascent), ``epoch`` is passed to an optional regulariser
``extra(model, epoch)``. Random minibatches (``random_batches``) and precomputed epoch schedules
(``scheduled``) are the two sources in use.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn.functional as F

from genunlearn.device import place
from genunlearn.errors import GenUnlearnError


def shift(x: torch.Tensor, g: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels (replicate padding): cheap augmentation."""
    _, _, h, w = x.shape
    pad = F.pad(x, [max_shift] * 4, mode="replicate")
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2,), generator=g).tolist()
    return pad[:, :, dy : dy + h, dx : dx + w]


def random_batches(data, batch: int, *, augment: bool) -> Callable:
    """Uniform minibatches of ``data`` (every attribute a head), optionally shifted: ``draw(g, update)``."""
    x, y = data.x, data.cond()
    batch = min(batch, len(data))

    def draw(g, _update):
        idx = torch.randint(len(x), (batch,), generator=g)
        return (shift(x[idx], g) if augment else x[idx]), y[idx], None, 0

    return draw


def scheduled(batches: Iterable) -> Callable:
    """A precomputed list of ``(epoch, x, y, w)`` minibatches, one per step, in order (indexed by
    the loop's update count, so a resumed run continues where it stopped)."""
    batches = list(batches)

    def draw(_g, update):
        epoch, x, y, w = batches[update]
        return x, y, w, epoch

    return draw


def fit_classifier(
    net,
    batches: Callable,
    cfg,
    *,
    extra: Callable | None = None,
    grad_mask=None,
    desc: str = "classifier",
    progress: bool = False,
    callbacks=(),
):
    """Cross-entropy on every head of ``net`` for ``cfg.steps`` steps (a ``TrainConfig``), through
    the shared loop (``callbacks`` go to it). Returns its ``TrainResult``."""
    from genunlearn.training import train

    if cfg.steps < 1:
        raise GenUnlearnError(f"{desc}: nothing to train on (empty schedule)")

    def step_loss(model, g, update):
        x, y, w, epoch = batches(g, update)
        x, y, w = place(model, x, y, w)
        heads = net.split_heads(model(x))
        ys = y[:, None] if y.dim() == 1 else y
        if w is None:
            loss = sum(F.cross_entropy(h, ys[:, a]) for a, h in enumerate(heads))
        else:
            loss = sum((w * F.cross_entropy(h, ys[:, a], reduction="none")).mean() for a, h in enumerate(heads))
        return loss + extra(model, epoch) if extra is not None else loss

    return train(
        net, step_loss, cfg, grad_mask=grad_mask, desc=desc, progress=progress, takes_update=True, callbacks=callbacks
    )


def fit_on_data(net, data, cfg: dict, *, seed: int, augment: bool, progress: bool = False, desc: str = "classifier"):
    """Judges and energy proxies: ``cfg`` = {steps, lr, batch, optimizer, weight_decay, lr_schedule},
    uniform (optionally shifted) minibatches of ``data``."""
    from genunlearn.training import TrainConfig

    tc = TrainConfig(
        steps=cfg["steps"],
        lr=cfg["lr"],
        optimizer=cfg["optimizer"],
        weight_decay=cfg["weight_decay"],
        lr_schedule=cfg["lr_schedule"],
        seed=seed,
        log_every=100,
    )
    return fit_classifier(net, random_batches(data, cfg["batch"], augment=augment), tc, desc=desc, progress=progress)
