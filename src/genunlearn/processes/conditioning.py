"""Condition dropout (to train classifier-free guidance), guided network calls, and ``unwrap``."""

from __future__ import annotations

import torch

from genunlearn import device

WRAPPERS = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)


def unwrap(net):
    """The network inside a data-parallel wrapper (the loop hands ``DistributedDataParallel`` to losses
    under ``accelerate launch``); read attributes such as ``.config`` on this, never on the wrapper."""
    while isinstance(net, WRAPPERS):
        net = net.module
    return net


def null_cond(net, n: int, device=None) -> torch.Tensor | None:
    vocab = tuple(unwrap(net).config.cond_vocab)
    if not vocab:
        return None
    return torch.tensor(vocab, dtype=torch.long, device=device).expand(n, -1).clone()


def drop_condition(net, cond, p_null: float, p_attr: float, generator=None):
    """Replace whole rows (prob. ``p_null``) or single attributes (prob. ``p_attr``) by "unspecified"."""
    if cond is None or (p_null <= 0 and p_attr <= 0):
        return cond
    if cond.dim() == 1:
        cond = cond[:, None]
    null = null_cond(net, cond.shape[0], cond.device)
    drop = device.rand(cond.shape, generator, device=cond.device) < p_attr
    drop |= device.rand((cond.shape[0], 1), generator, device=cond.device) < p_null
    return torch.where(drop, null, cond)


def guided(net, x: torch.Tensor, t: torch.Tensor, cond, scale: float) -> torch.Tensor:
    """out_∅ + s (out_c − out_∅); one batched call. s = 1 (or no condition) is the plain output.
    Inputs are placed on the network's device."""
    x, t, cond = device.place(net, x, t, cond)
    if cond is None or scale == 1.0:
        return net(x, t, cond)
    if cond.dim() == 1:
        cond = cond[:, None]
    null = null_cond(net, x.shape[0], x.device)
    out = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, null]))
    out_c, out_u = out.chunk(2)
    return out_u + scale * (out_c - out_u)
