"""Metrics as plain functions over samples, judge outputs and references.

Fréchet distance and KID run in a judge's feature space through torchmetrics with a custom
feature extractor; subsets are drawn from seeded generators, never "the first n".
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


class _Features(nn.Module):
    """Adapter giving torchmetrics a feature extractor with ``num_features``."""

    def __init__(self, judge):
        super().__init__()
        self.judge = judge
        self.num_features = judge.net.num_features

    def forward(self, x):
        return self.judge.features(x).double()


def frechet_distance(judge, real: torch.Tensor, fake: torch.Tensor) -> float:
    """FD = ‖μ_r − μ_f‖² + Tr(Σ_r + Σ_f − 2(Σ_r Σ_f)^½) in the judge's feature space, clamped at 0."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=_Features(judge), reset_real_features=True)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    return max(0.0, float(fid.compute()))


def kernel_distance(
    judge, real: torch.Tensor, fake: torch.Tensor, *, subsets: int = 20, subset_size: int = 200, seed: int = 0
) -> tuple[float, float]:
    """KID (unbiased MMD², cubic polynomial kernel) mean ± std over seeded feature subsets."""
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, real.shape[0], fake.shape[0])
    with warnings.catch_warnings():  # "features kept in a buffer": intended, our sets are small
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=_Features(judge), subsets=subsets, subset_size=size)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        mean, std = kid.compute()
    return float(mean), float(std)


def halves(x: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint, seeded random halves (for the real-vs-real floor)."""
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    h = x.shape[0] // 2
    return x[perm[:h]], x[perm[h : 2 * h]]


def prompt_accuracy(pred: torch.Tensor, cond: torch.Tensor, vocab: tuple[int, ...]) -> torch.Tensor:
    """Per sample: 1 if every *specified* attribute of its prompt is what the judge sees."""
    specified = cond < torch.tensor(vocab)
    return ((pred == cond) | ~specified).all(1).float()


def class_rate(pred: torch.Tensor, classes) -> float:
    """Share of samples whose first judged attribute is one of ``classes`` (the forgotten class
    still drawn)."""
    return float(torch.isin(pred[:, 0], torch.as_tensor(list(classes))).float().mean())


def component_mass(components: torch.Tensor, on_support: torch.Tensor, k: int) -> list[float]:
    """Fraction of all samples on the support of each of ``k`` components."""
    n = components.shape[0]
    return [float(((components == c) & on_support).sum()) / n for c in range(k)]


def mmd2(x: torch.Tensor, y: torch.Tensor, bandwidth: float, *, max_n: int = 5000, seed: int = 0) -> float:
    """Unbiased MMD² with a Gaussian kernel of fixed bandwidth, on seeded subsets of at most ``max_n``."""
    g = torch.Generator().manual_seed(seed)
    x = x[torch.randperm(x.shape[0], generator=g)[:max_n]].double()
    y = y[torch.randperm(y.shape[0], generator=g)[:max_n]].double()

    def k(a, b):
        return torch.exp(-torch.cdist(a, b).pow(2) / (2 * bandwidth**2))

    m, n = x.shape[0], y.shape[0]
    kxx = (k(x, x).sum() - m) / (m * (m - 1))
    kyy = (k(y, y).sum() - n) / (n * (n - 1))
    return float(kxx + kyy - 2 * k(x, y).mean())
