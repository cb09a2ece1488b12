"""Classifier unlearning: SalUn (masked random labelling) and the baselines FT, RL, GA, ℓ1-sparse,
Retrain (``classify/methods.py``) — one shared loop, the methods differ only in their per-epoch passes (spec §3.2, §7).

Each epoch runs the method's passes in order (sequential, not summed): ``relabel`` = D_f with a
random label ≠ the true one, ``retain`` = α·CE on D_r, ``ascent`` = −CE on D_f. SalUn adds the
saliency mask (masked weights never move: zero grads, restored values, zeroed SGD momentum); with
``mask="soft"`` (SalUn-soft) no hard mask: after every step the update θ − θ_o is soft-thresholded
(``methods/saliency.soft_threshold_``) at the k-th smallest |θ − θ_o|, k = ``mask_ratio`` ·
(1 − epoch/E) · N, as the reference's ``RL_proximal``. BatchNorm runs in train mode during unlearning, as in the reference.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Literal

import torch

from genunlearn.classify.model import Batch, epoch_batches, fit
from genunlearn.config import check_bounds
from genunlearn.device import place


@dataclass(frozen=True)
class Plan:
    passes: tuple[str, ...]
    epochs: int
    masked: bool = False
    l1: bool = False


PLANS = {
    "salun": Plan(("relabel", "retain"), epochs=3, masked=True),
    "random_label": Plan(("relabel", "retain"), epochs=3),
    "finetune": Plan(("retain",), epochs=3),
    "grad_ascent": Plan(("ascent",), epochs=3),
    "l1_sparse": Plan(("retain",), epochs=3, l1=True),
}


@dataclass
class UnlearnConfig:
    lr: float = 1e-2
    epochs: int | None = None  # None: the method's default (PLANS)
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 5e-4
    mask_ratio: float = 0.5  # SalUn: fraction of weights updated; soft: fraction held at θ_o at the start
    # SalUn: hard (0/1 saliency mask) or soft (SalUn-soft, proximal soft-thresholding)
    mask: Literal["hard", "soft"] = "hard"
    mask_batch_size: int = 256
    alpha: float = 1.0  # weight of the retain term (SalUn, RL)
    l1: float = 1e-4  # ℓ1-sparse: α, decayed linearly to 0 over the epochs
    allow_true_label: bool = False  # the reference code's random labels may equal the true one
    # mixed: D_f (relabelled) and D_r in one shuffled loader
    schedule: Literal["sequential", "mixed"] = "sequential"
    seed: int = 0

    def __post_init__(self):
        check_bounds(
            "classifier unlearning",
            lr=(self.lr, 0, None, "()"),
            mask_ratio=(self.mask_ratio, 0, 1, "(]"),
            batch_size=(self.batch_size, 1, None),
            epochs=(1 if self.epochs is None else self.epochs, 1, None),
        )


def random_labels(y: torch.Tensor, num_classes: int, g: torch.Generator, allow_true: bool = False) -> torch.Tensor:
    """Uniform over the C − 1 wrong classes (or over all C with ``allow_true``)."""
    if allow_true:
        return torch.randint(num_classes, y.shape, generator=g)
    return (y + torch.randint(1, num_classes, y.shape, generator=g)) % num_classes


def schedule(plan: Plan, cfg: UnlearnConfig, forget, retain, num_classes: int, g: torch.Generator) -> list[Batch]:
    """Every minibatch of the run, in order."""
    out: list[Batch] = []
    for e in range(cfg.epochs or plan.epochs):
        parts = []
        for p in plan.passes:
            if p == "retain":
                parts.append((retain.x, retain.labels, torch.full((len(retain),), cfg.alpha)))
            elif p == "relabel":
                parts.append(
                    (
                        forget.x,
                        random_labels(forget.labels, num_classes, g, cfg.allow_true_label),
                        torch.ones(len(forget)),
                    )
                )
            else:
                parts.append((forget.x, forget.labels, -torch.ones(len(forget))))
        if cfg.schedule == "mixed":
            parts = [tuple(torch.cat(t) for t in zip(*parts))]
        for x, y, w in parts:
            out += [(e, x[i], y[i], w[i]) for i in epoch_batches(len(y), cfg.batch_size, g)]
    return out


def classifier_saliency(net, forget, ratio: float, batch_size: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """SalUn mask from CE on D_f at the original weights (eval mode, shuffled batches, summed)."""
    from genunlearn.methods.saliency import saliency_mask

    def loss(model, idx):
        x, y = place(model, forget.x[idx], forget.labels[idx])
        return torch.nn.functional.cross_entropy(model(x), y)

    return saliency_mask(net, loss, epoch_batches(len(forget), batch_size, g), ratio)


def l1_penalty(alpha: float, epochs: int):
    def extra(model, epoch):
        return alpha * (1 - epoch / epochs) * sum(p.abs().sum() for p in model.parameters())

    return extra


def soft_threshold_steps(net, batches: list[Batch], ratio: float, epochs: int):
    """SalUn-soft's proximal step after every update, as (``before``, ``finish``): the trainer has no
    post-step hook, so the step after update u − 1 runs before update u draws its batch (``before``)
    and ``finish()`` applies the one after the last update. θ_o = the weights now."""
    from genunlearn.methods.saliency import soft_threshold_

    init = {k: p.detach().clone() for k, p in net.named_parameters()}

    def prox(u: int) -> None:  # after update u, in that update's epoch
        soft_threshold_(net, init, ratio * (1 - batches[u][0] / epochs))

    def before(update: int):
        if update > 0:
            prox(update - 1)

    return before, lambda: prox(len(batches) - 1)


def unlearn_classifier(net, forget, retain, cfg: UnlearnConfig, plan_name: str, *, num_classes: int, callbacks=()):
    """Unlearn in place by the plan ``plan_name``. Returns (net, info) with the wall-clock seconds
    (mask included)."""
    plan = PLANS[plan_name]
    epochs = cfg.epochs or plan.epochs
    g = torch.Generator().manual_seed(cfg.seed)
    t0 = time.perf_counter()
    soft = plan.masked and cfg.mask == "soft"
    mask = (
        classifier_saliency(net, forget, cfg.mask_ratio, cfg.mask_batch_size, g)
        if plan.masked and not soft and cfg.mask_ratio < 1
        else None
    )
    batches = schedule(plan, cfg, forget, retain, num_classes, g)
    extra = l1_penalty(cfg.l1, epochs) if plan.l1 else None
    before, finish = soft_threshold_steps(net, batches, cfg.mask_ratio, epochs) if soft else (None, None)
    fit(
        net,
        batches,
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        grad_mask=mask,
        extra=extra,
        before=before,
        desc=plan_name,
        callbacks=callbacks,
    )
    if finish is not None:
        finish()
    info = {
        **asdict(cfg),
        "epochs": epochs,
        "steps": len(batches),
        "seconds": time.perf_counter() - t0,
        "bn_mode": "train",
    }
    if mask is not None:
        from genunlearn.methods.saliency import mask_density

        info["mask_density"] = mask_density(mask)
    return net.eval(), info
