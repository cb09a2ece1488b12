"""f-DMU's and Concept Ablation's options, checked when built (before any work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genunlearn.config import check_bounds
from genunlearn.errors import GenUnlearnError
from genunlearn.methods import divergences
from genunlearn.methods.common import ParamGroup

DEFAULT_LR = {"all": 1e-4, "conditioning": 1e-3, "non_conditioning": 1e-4}


@dataclass
class FDivConfig:
    # closed: mse|kl|jeffreys|hellinger|chi2|alpha:A; variational: kl|rkl|js|hellinger|chi2|tv
    divergence: str = "hellinger"
    form: Literal["closed", "variational"] = "closed"
    # mean: K = per-element-mean MSE / 2 (reference) | exact: Gaussian KL ω_t Σ Δε²
    div_scale: Literal["mean", "exact"] = "mean"
    # all | conditioning (condition embeddings, FiLM projections, cross-attention K/V) | non_conditioning (the rest)
    params: ParamGroup = "all"
    steps: int = 400
    lr: float | None = None  # None: 1e-3 for params=conditioning, else 1e-4
    batch_size: int = 32
    weight_decay: float = 1e-2  # AdamW
    grad_clip: float | None = 1.0
    max_exponent: float = 30.0  # clamp of the exponent in chi2 / alpha closed forms
    t_sampling: Literal["uniform", "importance"] = "uniform"  # importance: mostly t in [0.2T, 0.4T]
    # in all, drawn from the original model, spread evenly over the anchor prompts (at least one each)
    anchor_images: int = 1000
    anchor_sampler_steps: int = 25
    anchor_guidance: float = 3.0
    anchor_from_live_model: bool = False  # Concept Ablation's diffusers code: target from the live model (no_grad)
    critic_lr: float = 1e-4
    critic_channels: int = 32
    critic_warmup: int = 30
    critic_steps: int = 1  # critic updates per model update (each on a fresh batch; the model uses the last)
    critic_conditioning: Literal["none", "xt_t"] = "none"  # xt_t: concatenate x_t and a t/T channel
    seed: int = 0

    def __post_init__(self):
        self.divergence = self.divergence.strip().lower()
        if self.form == "closed":
            divergences.closed_form(self.divergence)
        else:
            divergences.variational(self.divergence)
        check_bounds(
            "fdiv",
            steps=(self.steps, 1, None),
            batch_size=(self.batch_size, 1, None),
            anchor_images=(self.anchor_images, 1, None),
            anchor_sampler_steps=(self.anchor_sampler_steps, 1, None),
            critic_channels=(self.critic_channels, 1, None),
            critic_warmup=(self.critic_warmup, 0, None),
            critic_steps=(self.critic_steps, 1, None),
        )
        check_bounds(
            "fdiv",
            lr=(1.0 if self.lr is None else self.lr, 0, None, "()"),
            critic_lr=(self.critic_lr, 0, None, "()"),
            max_exponent=(self.max_exponent, 0, None, "()"),
        )
        if self.lr is None:
            self.lr = DEFAULT_LR[self.params]


@dataclass
class ConceptAblationConfig(FDivConfig):
    """Concept Ablation (model-based): the ``mse`` closed form of f-DMU, nothing else."""

    divergence: str = "mse"

    def __post_init__(self):
        if self.divergence != "mse" or self.form != "closed":
            raise GenUnlearnError(
                "concept_ablation is the closed-form mse case; use --method fdiv for other divergences"
            )
        super().__post_init__()
