"""ContinualFlow's equations: the pool weights and the energy-reweighted flow-matching loss."""

from __future__ import annotations

import torch

from genunlearn.forget.energy import Energy


def pool_weights(energies: list[tuple[float, Energy]], x: torch.Tensor) -> torch.Tensor:
    """w = Π_k σ(−λ_k F_k(x)): the target q̃ ∝ q0·w, every energy in force; computed once, without gradient."""
    with torch.no_grad():
        w = torch.ones(x.shape[0], device=x.device)
        for lam, energy in energies:
            w = w * torch.sigmoid(-lam * energy(x))
    return w


def erfm_loss(per_sample: torch.Tensor, w: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Σ w·err / max(Σw, ε): the self-normalised energy-reweighted flow-matching loss."""
    return (w * per_sample).sum() / w.sum().clamp_min(eps)


def weighted_flow_loss(process, net, x1, w, cond=None, *, eps: float = 1e-8, **loss_kw) -> torch.Tensor:
    """The process's own per-sample loss, reweighted (equal weights give the plain mean)."""
    per_sample = process.loss(net, x1, cond, **loss_kw)
    return erfm_loss(per_sample, w.to(per_sample.device), eps)
