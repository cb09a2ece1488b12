"""ContinualFlow's options, checked when built (before any work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genunlearn.config import check_bounds
from genunlearn.errors import GenUnlearnError
from genunlearn.training.loop import check_schedule


@dataclass
class ContinualFlowConfig:
    lam: float = 5.0  # suppression strength λ (paper/reference: 5)
    # finetune (in place, default) or composed (a new transport flow, the reference code)
    mode: Literal["finetune", "composed"] = "finetune"
    # logodds (F = logit P(forget)) or neglogretain (reference: −log P(retain))
    energy: Literal["logodds", "neglogretain"] = "logodds"
    pool: int = 10000  # M samples drawn once from the frozen pretrained model
    steps: int = 1000  # optimiser steps (the CLI's --steps overrides)
    lr: float | None = None  # None: the base recipe's lr / 10 (finetune) or 1e-2 (composed, reference)
    batch: int = 512
    lr_schedule: str = "constant"  # or "cosine" (decay to 0 over the steps)
    ema_decay: float | None = None  # finetune mode: sample from an EMA of the fine-tuned weights
    eps: float = 1e-8  # clamp of Σw in the normaliser
    # conditional models: c vanishes when Z_c / max Z < tau_c (½: the energy removes most of its mass; docs)
    tau_c: float = 0.5
    fallback: str = "marginal"  # vanishing conditions learn the reweighted marginal, or "class:k"
    # share of each batch given to vanishing conditions (None: their pool share, 1/K each)
    vanishing_share: float | None = None
    keep_previous: bool = True  # multiply in the energies of earlier ContinualFlow requests
    pool_steps: int | None = None  # sampler steps for the pool (None: the model's own)
    transport_steps: int = 10  # composed mode: midpoint steps of the transport flow (reference: 10)
    seed: int = 0

    def __post_init__(self):
        check_bounds(
            "continualflow",
            lam=(self.lam, 0, None, "()"),
            pool=(self.pool, 2, None),
            steps=(self.steps, 1, None),
            batch=(self.batch, 1, None),
            tau_c=(self.tau_c, 0, 1, "[)"),
        )
        if self.vanishing_share is not None:
            check_bounds("continualflow", vanishing_share=(self.vanishing_share, 0, 1, "()"))
        check_schedule(self.lr_schedule, self.ema_decay)
        if self.fallback != "marginal" and not (self.fallback.startswith("class:") and self.fallback[6:].isdigit()):
            raise GenUnlearnError(f"bad fallback {self.fallback!r}: expected 'marginal' or 'class:K'")
