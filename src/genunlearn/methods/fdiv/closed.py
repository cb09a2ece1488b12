"""f-DMU's closed form: per-sample m_b = mean (pred − target)², K_b = m_b / 2 (``div_scale="mean"``, the
reference) or K_b = ω_t Σ (pred − target)² with ω_t = β_t / (2 α_t (1 − ᾱ_t)) (``"exact"``: the true
Gaussian KL for σ_t² = β_t); loss = mean_b g(K_b) with g from ``divergences``."""

from __future__ import annotations

import torch

from genunlearn.methods import divergences
from genunlearn.methods.fdiv.config import FDivConfig


def kl_weights(process) -> torch.Tensor:
    """ω_t = β_t / (2 α_t (1 − ᾱ_t)): KL per squared ε error between the two reverse kernels, σ_t² = β_t."""
    ab = process.alphas_cumprod.double()
    alpha = ab / torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])
    return ((1 - alpha) / (2 * alpha * (1 - ab))).float()


def closed_loss(cfg: FDivConfig, pred: torch.Tensor, target: torch.Tensor, t: torch.Tensor, omega: torch.Tensor):
    """Per-sample closed-form loss g(K_b), with K_b and the per-sample MSE m_b (reduce first, then g)."""
    diff2 = (pred - target).pow(2).flatten(1)
    mse = diff2.mean(1)
    k = mse / 2 if cfg.div_scale == "mean" else omega.to(t.device)[t] * diff2.sum(1)
    g_of_k = divergences.closed_form(cfg.divergence)
    return g_of_k(mse if cfg.divergence == "mse" else k, cfg.max_exponent), k, mse


def importance_timesteps(process, n: int, generator) -> torch.Tensor:
    """t ∝ σ(0.05(t − 0.2T)) − σ(0.05(t − 0.4T)) (the reference's option)."""
    T = process.num_train_timesteps
    t = torch.arange(T, dtype=torch.float64)
    w = torch.sigmoid(0.05 * (t - 0.2 * T)) - torch.sigmoid(0.05 * (t - 0.4 * T))
    return torch.multinomial(w.clamp_min(0), n, replacement=True, generator=generator)
