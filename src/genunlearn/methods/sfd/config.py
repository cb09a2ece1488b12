"""SFD's options, checked when built (before any work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genunlearn.config import check_bounds
from genunlearn.errors import GenUnlearnError


@dataclass
class SFDConfig:
    steps: int = 1000  # iterations, each one fake-score and one generator update
    batch_size: int = 32  # retain and forget batches each
    alpha: float = 1.2  # SiD α; α = 1 keeps only the cross term (r − s)ᵀ(s − x_g)/ω
    t_star: int = 440  # generator time (σ ≈ 2.5 on linear β 1e-4..0.02, T = 1000)
    t_min: int = 38  # distillation times t ~ U{t_min, …, t_max − 1} (σ ≈ 0.137 .. 13.1)
    t_max: int = 712
    lambda_fake_retain: float = 1.0  # λψ_r
    lambda_fake_forget: float = 0.1  # λψ_f (paper: 0.01 for 50k iterations)
    lambda_gen_retain: float = 1.0  # λG_r
    lambda_gen_forget: float = 0.1  # λG_f (paper: 0.01 for 50k iterations)
    lr_fake: float = 1e-4
    lr_gen: float = 1e-4
    adam_beta2: float = 0.999  # Adam β1 is 0 (reference)
    grad_clip: float = 1.0  # by value (reference), both networks
    ema_decay: float | None = 0.99  # EMA of G (paper 0.9999 over 50k iterations)
    # guidance scale of the teacher f_φ only; None: the teacher's own sampler's; 1 = none (reference)
    guidance: float | None = None
    override: int | str | None = None  # c_o for mode "fixed"; None: 3 → 8 on digits, else the next retained class
    # fixed | random (uniform over retained classes per sample) | classifier
    override_mode: Literal["fixed", "random", "classifier"] = "fixed"
    override_classifier: str | None = None  # folder of a saved classifier (mode "classifier"; not the judge)
    forget_warmup: float = 0.0  # fraction of iterations whose forget branches draw t from [0.02T, 0.98T)
    # dropout of G and f_ψ while distilling; None: the networks' own, in train mode (reference)
    dropout: float | None = 0.0
    distill_only: bool = False  # plain SiD distillation of every class (no forgetting; the request is ignored)
    seed: int = 0

    def __post_init__(self):
        if self.override_mode == "classifier" and not self.override_classifier:
            raise GenUnlearnError("sfd: override_mode=classifier needs override_classifier (a saved classifier folder)")
        check_bounds(
            "sfd",
            steps=(self.steps, 1, None),
            batch_size=(self.batch_size, 1, None),
            lr_fake=(self.lr_fake, 0, None, "()"),
            lr_gen=(self.lr_gen, 0, None, "()"),
        )
        if not 0 <= self.t_min < self.t_max:
            raise GenUnlearnError(f"sfd needs 0 <= t_min < t_max, got t_min={self.t_min}, t_max={self.t_max}")
        if min(self.lambda_fake_retain, self.lambda_fake_forget, self.lambda_gen_retain, self.lambda_gen_forget) < 0:
            raise GenUnlearnError("sfd: loss weights (lambda_*) must be >= 0")
        if self.lambda_gen_forget > 0 and self.lambda_fake_forget == 0:
            raise GenUnlearnError(
                "sfd: lambda_gen_forget > 0 needs lambda_fake_forget > 0 (the fake score must track G's forget output)"
            )
        if not 0 <= self.forget_warmup <= 1:
            raise GenUnlearnError(f"sfd: forget_warmup is a fraction of the iterations, got {self.forget_warmup}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise GenUnlearnError(f"sfd: dropout must be in [0, 1) or none, got {self.dropout}")
