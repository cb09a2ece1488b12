"""Where each condition's targets x1 come from in fine-tune mode: a retained condition from its own
pool items; a vanishing one (and the null condition) from the fallback, the whole reweighted pool
(the marginal) or one retained class."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genunlearn.errors import GenUnlearnError
from genunlearn.methods.continualflow.pool import Pool, vanishing


@dataclass
class ConditionSources:
    own: list[torch.Tensor]  # per condition: the indices of its pool items
    vanishing: torch.Tensor  # per condition: whether it vanishes
    fallback: torch.Tensor  # the pool items vanishing conditions learn from


def condition_sources(pool: Pool, tau_c: float, fallback: str) -> ConditionSources:
    """Each condition's pool items, which conditions vanish, and the fallback's items (``fallback``:
    ``marginal`` or ``class:k``)."""
    labels = pool.cond[:, 0]
    gone = vanishing(pool, tau_c)
    own = [(labels == c).nonzero().squeeze(1) for c in range(len(gone))]
    if fallback == "marginal":
        return ConditionSources(own, gone, torch.arange(labels.shape[0]))
    k = int(fallback[6:])
    if not 0 <= k < len(gone) or gone[k]:
        raise GenUnlearnError(f"fallback class {k} is not a retained condition of this model")
    return ConditionSources(own, gone, own[k])


def share_batch(sources: ConditionSources, share: float, batch: int, g) -> torch.Tensor:
    """Pool items with ``share`` of the batch from vanishing conditions. Each condition keeps its own
    target; only how often the loss visits it changes (the forgotten conditions have the furthest to
    move, the retained ones are near their target already)."""
    own = sources.own
    groups = [
        torch.cat([own[c] for c in range(len(own)) if sources.vanishing[c] == v] or [torch.zeros(0, dtype=torch.long)])
        for v in (True, False)
    ]
    if not len(groups[0]) or not len(groups[1]):
        return torch.cat(groups)[torch.randint(sum(map(len, groups)), (batch,), generator=g)]
    n_v = round(share * batch)
    return torch.cat([grp[torch.randint(len(grp), (n,), generator=g)] for grp, n in zip(groups, (n_v, batch - n_v))])


def redirect(sources: ConditionSources, labels: torch.Tensor, null: torch.Tensor, g) -> torch.Tensor:
    """Pool indices of x1 per batch item: same-condition items, or (vanishing or null) the fallback set."""
    out = torch.empty(labels.shape[0], dtype=torch.long)
    to_fallback = null | sources.vanishing[labels]
    fb = sources.fallback
    out[to_fallback] = fb[torch.randint(len(fb), (int(to_fallback.sum()),), generator=g)]
    for c, own in enumerate(sources.own):
        sel = (labels == c) & ~to_fallback
        out[sel] = own[torch.randint(len(own), (int(sel.sum()),), generator=g)]
    return out
