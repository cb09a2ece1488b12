"""f-divergences for concept erasure (f-DMU): Gaussian closed forms and the variational (f-GAN) pieces.

Closed forms: for two Gaussians with equal covariance every f-divergence is a monotone function g(K)
of the KL divergence K, so a closed-form loss is g applied to a per-sample K (spec §2.2):
``kl`` K, ``jeffreys`` 2K, ``hellinger`` 1 − e^{−K/4} (½ convention), ``chi2`` e^{2K} − 1 (Pearson),
``alpha:a`` (e^{a(a−1)K} − 1)/(a(a−1)) for a ∉ {0, 1}. ``mse`` is Concept Ablation's loss (it is
applied to the per-sample MSE m, of which K = m/2). Exponents are clamped at ``max_exponent``.

Variational (f-GAN, Nowozin et al. 2016): D_f(P‖Q) ≥ sup_T E_P[T] − E_Q[f*(T)], T = g_f(V) with an
output activation g_f that keeps T inside the conjugate's domain (spec §2.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from genunlearn.errors import GenUnlearnError

CLOSED = ("mse", "kl", "jeffreys", "hellinger", "chi2", "alpha:A")
EPS = 1e-6


@dataclass(frozen=True)
class ClosedForm:
    """A closed-form divergence: ``name`` and, for the α family, its order ``a``."""

    name: str
    a: float | None = None

    def __call__(self, k: torch.Tensor, max_exponent: float = 30.0) -> torch.Tensor:
        """g(K), elementwise on per-sample KL values (for ``mse`` pass the per-sample MSE instead)."""
        if self.name in ("mse", "kl"):
            return k
        if self.name == "jeffreys":
            return 2 * k
        if self.name == "hellinger":
            return 1 - torch.exp(-k / 4)
        if self.name == "chi2":
            return torch.expm1((2 * k).clamp(max=max_exponent))
        c = self.a * (self.a - 1)
        return torch.expm1((c * k).clamp(max=max_exponent)) / c


def closed_form(name: str) -> ClosedForm:
    """Parse ``mse|kl|jeffreys|hellinger|chi2|alpha:A``."""
    if name in CLOSED[:-1]:
        return ClosedForm(name)
    if name.startswith("alpha:"):
        try:
            a = float(name.split(":", 1)[1])
        except ValueError:
            raise GenUnlearnError(
                f"bad alpha divergence {name!r}: expected alpha:A with a number A (e.g. alpha:0.5)"
            ) from None
        if not math.isfinite(a) or a in (0.0, 1.0):
            raise GenUnlearnError(
                f"alpha divergence order must be finite and not 0 or 1 (those are the KL limits), got {a}"
            )
        return ClosedForm("alpha", a)
    raise GenUnlearnError(f"unknown closed-form divergence {name!r}; expected one of {', '.join(CLOSED)}")


@dataclass(frozen=True)
class FGan:
    """Output activation g_f (critic value → T in the conjugate's domain) and conjugate f*."""

    activation: Callable[[torch.Tensor], torch.Tensor]
    conjugate: Callable[[torch.Tensor], torch.Tensor]


VARIATIONAL: dict[str, FGan] = {
    "kl": FGan(lambda v: v, lambda t: torch.exp(t - 1)),
    "rkl": FGan(lambda v: -torch.exp(-v), lambda t: -1 - torch.log(-t + EPS)),
    # squared Hellinger with f = (√u − 1)², i.e. 2 × the ½-convention closed form
    "hellinger": FGan(lambda v: 1 - torch.exp(-v), lambda t: t / (1 - t + EPS)),
    "js": FGan(lambda v: math.log(2) - torch.nn.functional.softplus(-v), lambda t: -torch.log(2 - torch.exp(t) + EPS)),
    "chi2": FGan(lambda v: v, lambda t: t.pow(2) / 4 + t),
    "tv": FGan(lambda v: 0.5 * torch.tanh(v), lambda t: t),
}


def variational(name: str) -> FGan:
    if name not in VARIATIONAL:
        raise GenUnlearnError(f"unknown variational divergence {name!r}; expected one of {', '.join(VARIATIONAL)}")
    return VARIATIONAL[name]


def critic_loss(fgan: FGan, v_real: torch.Tensor, v_fake: torch.Tensor) -> torch.Tensor:
    """Minimised by the critic: mean f*(g(V(fake))) − mean g(V(real)) (the negated lower bound)."""
    return fgan.conjugate(fgan.activation(v_fake)).mean() - fgan.activation(v_real).mean()


def generator_loss(fgan: FGan, v_fake: torch.Tensor) -> torch.Tensor:
    """Minimised by the trainable model (Q side): −mean f*(g(V(fake)))."""
    return -fgan.conjugate(fgan.activation(v_fake)).mean()
