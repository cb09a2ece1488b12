"""Weight saliency (SalUn): which weights a forget loss cares about most, as a 0/1 mask, or
implicitly through SalUn-soft's soft-thresholding of the update (``soft_threshold_``).

The gradient of a forget loss is taken at the original weights in eval mode, **summed** over
batches, then its magnitude is ranked **once over all parameters jointly** (never per layer); the
top ``ratio`` fraction is kept (1 = updated). The result plugs into ``training.train(grad_mask=...)``.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch

from genunlearn.device import of as device_of
from genunlearn.errors import GenUnlearnError


def forget_gradient(
    net: torch.nn.Module, loss_fn: Callable, batches: Iterable, *, clip: float | None = None
) -> dict[str, torch.Tensor]:
    """Σ_batches ∇ loss_fn(net, batch) per named parameter, at the current weights, in eval mode.

    ``clip`` clips each batch's gradient norm before it is added (the DDPM reference does).
    """
    was_training = net.training
    net.eval()
    params = {k: p for k, p in net.named_parameters() if p.requires_grad}
    total = {k: torch.zeros_like(p) for k, p in params.items()}
    try:
        for batch in batches:
            net.zero_grad(set_to_none=True)
            loss_fn(net, batch).backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(list(params.values()), clip)
            for k, p in params.items():
                if p.grad is not None:
                    total[k] += p.grad
    finally:
        net.zero_grad(set_to_none=True)
        net.train(was_training)
    return total


def top_fraction_mask(scores: dict[str, torch.Tensor], ratio: float) -> dict[str, torch.Tensor]:
    """Keep exactly round(ratio · N) entries with the largest score, ranked over all tensors jointly
    (stable: ties go to the earlier entry in parameter order)."""
    if not 0 < ratio <= 1:
        raise GenUnlearnError(f"mask ratio must be in (0, 1], got {ratio}")
    flat = torch.cat([s.detach().flatten().float() for s in scores.values()])
    k = round(ratio * flat.numel())
    keep = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    keep[torch.argsort(flat, descending=True, stable=True)[:k]] = True
    out, i = {}, 0
    for name, s in scores.items():
        out[name] = keep[i : i + s.numel()].view(s.shape).float()
        i += s.numel()
    return out


def saliency_mask(
    net: torch.nn.Module, loss_fn: Callable, batches: Iterable, ratio: float = 0.5, *, clip: float | None = None
) -> dict[str, torch.Tensor]:
    """SalUn mask m_S = 1(|Σ_b ∇ℓ_f| ranks in the global top ``ratio``); {param name: 0/1 tensor}."""
    grads = forget_gradient(net, loss_fn, batches, clip=clip)
    return top_fraction_mask({k: g.abs() for k, g in grads.items()}, ratio)


def diffusion_saliency(net, process, forget, cfg, g: torch.Generator, *, guidance: float) -> dict[str, torch.Tensor]:
    """SalUn's mask for a conditional diffusion model: from the guided ε-loss on the forget images
    (``guidance`` w; 0 = unguided), ``cfg``'s ``mask_batch_size``, ``mask_ratio`` and ``mask_clip``."""
    cond = forget.cond()

    def loss(net, idx):
        xt, t, _, target = process.corrupt(forget.x[idx].to(device_of(net)), g, antithetic=True)
        return (process.predict(net, xt, t, cond[idx], guidance=1 + guidance) - target).pow(2).mean()

    batches = torch.randperm(len(forget), generator=g).split(cfg.mask_batch_size)
    return saliency_mask(net, loss, batches, cfg.mask_ratio, clip=cfg.mask_clip)


def mask_density(mask: dict[str, torch.Tensor]) -> float:
    """Fraction of weights the mask lets move."""
    return float(sum(m.sum() for m in mask.values()) / sum(m.numel() for m in mask.values()))


@torch.no_grad()
def soft_threshold_(net: torch.nn.Module, init: dict[str, torch.Tensor], ratio: float) -> float:
    """SalUn-soft's proximal step, in place (the paper's soft-thresholding variant; reference
    ``RL_proximal``): with d = θ − θ_o over all parameters jointly and τ = the k-th smallest |d|,
    k = round(``ratio`` · N), set θ ← θ_o + sign(d) · max(|d| − τ, 0). At least k weights sit exactly
    at θ_o; every other one keeps its update shrunk by τ. Returns τ (0 when k = 0)."""
    params = [(k, p) for k, p in net.named_parameters() if k in init]
    d = torch.cat([(p - init[k]).flatten() for k, p in params])
    k = round(ratio * d.numel())
    if k < 1:
        return 0.0
    tau = d.abs().kthvalue(k).values
    for name, p in params:
        diff = p - init[name]
        p.copy_(init[name] + diff.sign() * (diff.abs() - tau).clamp_min(0))
    return float(tau)
