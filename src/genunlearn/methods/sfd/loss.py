"""SiD's generator loss (Zhou et al. 2024), as SFD uses it with the cross-condition forgetting term."""

from __future__ import annotations

import torch


def sid_loss(r: torch.Tensor, s: torch.Tensor, x_g: torch.Tensor, alpha: float) -> torch.Tensor:
    """Per-sample SiD generator loss Σ (r − s) ⊙ [(r − x_g) − α (r − s)] / ω, ω = sg mean|r − x_g| ≥ 1e-5."""
    omega = (r - x_g).abs().flatten(1).mean(1).clamp_min(1e-5).detach()
    d = r - s
    return (d * ((r - x_g) - alpha * d)).flatten(1).sum(1) / omega


def sid_terms(
    process, teacher, fake, x_g, t, eps, cond, teacher_cond, alpha: float, guidance: float = 1.0
) -> torch.Tensor:
    """Per-sample SiD loss of generated ``x_g`` at one shared (x_t, t, ε): s = f_ψ(x_t, t, ``cond``) and
    r = f_φ(x_t, t, ``teacher_cond``) (the override where ``cond`` is the forget class). Both nets are
    called with gradients so that the loss reaches x_g through their inputs."""
    x_t = process.corrupt(x_g, t=t, noise=eps)[0]
    s = process.denoise(fake, x_t, t, cond)
    r = process.denoise(teacher, x_t, t, teacher_cond, guidance)
    return sid_loss(r, s, x_g, alpha)
