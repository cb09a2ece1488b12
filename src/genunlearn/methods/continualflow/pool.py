"""The pool ContinualFlow learns from: samples of the frozen model, drawn once and weighted once, with
its effective sample size and, for conditional models, which conditions the energy makes vanish."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from genunlearn.forget.energy import Energy
from genunlearn.methods.continualflow.loss import pool_weights
from genunlearn.progress import stage

ESS_WARN = 0.05  # warn below this effective share of the pool


@dataclass
class Pool:
    x: torch.Tensor
    w: torch.Tensor
    cond: torch.Tensor | None  # (M, A) conditions that produced each sample, or None


def draw_pool(model, energies: list[tuple[float, Energy]], size: int, seed: int, steps: int | None) -> Pool:
    """``size`` samples of the frozen current model (balanced per condition), weighted once."""
    g = torch.Generator().manual_seed(seed)
    kw = {"steps": steps} if steps else {}
    cond = None
    if model.conditional:
        k = len(model.attributes[0].values)
        labels = torch.arange(k).repeat_interleave(math.ceil(size / k))
        cond = model.cond_for_labels(labels)
        kw["guidance"] = 1.0  # q0(x|c) as the network models it: guidance applies once, when sampling later
    n = size if cond is None else cond.shape[0]
    stage(
        f"continualflow: sampling a pool of {n} from the frozen model",
        "the samples the reweighted loss trains on; drawn once",
    )
    x = model.generate(
        n, cond, generator=g, **kw
    ).cpu()  # the model itself is never trained (a copy is); the pool lives with the data
    return Pool(x, pool_weights(energies, x), cond)


def z_ratio_test(pool: Pool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per condition: Z_c, Z_c / max Z (the share of its mass the target keeps, relative to the
    least-touched condition) and that ratio's standard error over the condition's pool items."""
    labels = pool.cond[:, 0]
    k = int(labels.max()) + 1
    z = torch.zeros(k).index_add_(0, labels, pool.w) / torch.bincount(labels, minlength=k).clamp_min(1)
    n = torch.bincount(labels, minlength=z.shape[0]).clamp_min(2)
    var = torch.zeros_like(z).index_add_(0, labels, (pool.w - z[labels]).pow(2)) / (n - 1)
    top = z.max().clamp_min(1e-30)
    return z, z / top, (var / n).sqrt() / top


def vanishing(pool: Pool, tau_c: float) -> torch.Tensor:
    """Which conditions vanish: Z_c / max Z < ``tau_c``."""
    return z_ratio_test(pool)[1] < tau_c


def pool_stats(pool: Pool, tau_c: float) -> dict:
    """Z, the effective sample size (warned when small) and, per condition, the Z-ratio test."""
    w, m = pool.w, pool.w.shape[0]
    ess = float(w.sum() ** 2 / (w.pow(2).sum().clamp_min(1e-30)))
    stats = {"Z": float(w.mean()), "ess": ess, "ess_fraction": ess / m, "pool": m}
    if ess / m < ESS_WARN:
        warnings.warn(
            f"continualflow: effective sample size {ess:.0f} of {m} pool samples (< {ESS_WARN:.0%}); lower lam or enlarge the pool",
            stacklevel=3,
        )
    if pool.cond is None:
        return stats
    z, ratio, se = z_ratio_test(pool)
    stats.update(
        Z_per_condition=z.tolist(),
        Z_ratio=ratio.tolist(),
        Z_ratio_se=se.tolist(),
        vanishing_conditions=(ratio < tau_c).nonzero().squeeze(1).tolist(),
    )
    stage(
        f"continualflow: Z_c / max Z per condition {[round(r, 3) for r in ratio.tolist()]}; vanishing (< {tau_c}): {stats['vanishing_conditions']}",
        "conditions whose mass the energy mostly removes learn the fallback",
    )
    close = ((ratio - tau_c).abs() < 2 * se).nonzero().squeeze(1).tolist()
    if close:
        warnings.warn(
            f"continualflow: conditions {close} have Z_c / max Z within 2 standard errors of {tau_c}; the pool is too small to tell forgotten from retained, enlarge it",
            stacklevel=3,
        )
    return stats
