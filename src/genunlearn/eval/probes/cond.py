"""White-box conditioning attack (in the spirit of UnlearnDiffAtk): can the model be steered back?

The conditioning lookup of the forgotten value (the class-embedding row of the forget class, in
every condition-embedding table of the network) is replaced by a free vector, which is optimised
(Adam, ``steps`` updates, the network frozen) to minimise the model's own per-sample training loss
(``process.loss``: denoising or flow matching, no condition dropout) on forget-class images. The
model then samples with the optimised conditioning, and the domain judge counts the forgotten
class: the attack success rate (ASR). Baselines at the same sample budget: "no attack" (the
model's own forget prompt) and "random conditioning" (a random vector drawn with the embedding
table's per-dimension mean and spread). ``space="mix"`` (the default) restricts the vector to
convex combinations of the table's rows (softmax weights over the model's own vocabulary, starting
on the forget row); ``space="free"`` lets it be any vector. Measured on digits (docs/probes.md),
the free vector brings the class back even from a retrain-from-scratch model (94 %), so its reading
cannot tell removal from hiding; the mix attacker stays at the retrain floor there, which is why
it is the default.

The network is reached only through ``torch.nn.Embedding`` lookups of the condition id (forward
hooks on a copy), so every network with the library's ``net(x, t, cond)`` call and an embedding
table per attribute (``MLPNet``, ``ConvUNet``, diffusers' class embedding) is attacked the same way.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from genunlearn.device import randn
from genunlearn.errors import GenUnlearnError
from genunlearn.eval.probes.common import (
    Counter,
    check_generative,
    forget_conditions,
    forget_data,
    forget_values,
    npz_arrays,
)


@dataclass
class CondConfig:
    steps: int = 100  # the attack's budget (optimiser updates)
    lr: float | None = None  # None: the measured setting of the space (mix 0.5 on the row logits, free 0.05)
    batch_size: int = 64
    n: int = 100  # samples judged per arm
    seed: int = 0
    space: str = "mix"  # mix: a convex combination of the table's rows (a soft prompt in the model's own vocabulary); free: any vector

    def __post_init__(self):
        if self.lr is None:
            self.lr = {"mix": 0.5, "free": 0.05}.get(self.space, 0.05)

    def check(self) -> None:
        if self.space not in ("free", "mix"):
            raise GenUnlearnError(f"cond space must be free or mix, got {self.space!r}")
        for name in ("steps", "batch_size", "n"):
            if getattr(self, name) < 1:
                raise GenUnlearnError(f"cond {name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise GenUnlearnError(f"cond lr must be a finite number > 0, got {self.lr}")


def condition_tables(net, attr: int, vocab: int) -> list[nn.Embedding]:
    """The embedding tables that look up attribute ``attr`` (vocabulary ``vocab`` plus its null id):
    ``ConditionEmbedding.tables[attr]`` wherever one sits in the network (composed networks hold
    several), else diffusers' ``class_embedding`` for the first attribute."""
    from genunlearn.models.embeddings import ConditionEmbedding

    tables = [m.tables[attr] for m in net.modules() if isinstance(m, ConditionEmbedding) and len(m.tables) > attr]
    if not tables and attr == 0:
        tables = [
            m
            for name, m in net.named_modules()
            if isinstance(m, nn.Embedding)
            and name.endswith("class_embedding")
            and m.num_embeddings in (vocab, vocab + 1)
        ]
    if not tables:
        raise GenUnlearnError(
            "the conditioning attack needs the network's condition-embedding table; this network has none it can find"
        )
    return tables


class FreeConditioning:
    """Forward hooks replacing the lookup of chosen ids by free vectors (one per id and table)."""

    def __init__(
        self, tables: list[nn.Embedding], ids: list[int], init: str = "row", generator=None, space: str = "free"
    ):
        self.ids = list(ids)
        self.space = space
        self.vectors: list[dict[int, nn.Parameter]] = []
        for table in tables:
            w = table.weight.detach()
            rows = {}
            for i in self.ids:
                if space == "mix":  # logits over the table's rows, starting on row i (weight ≈ 0.97)
                    v = torch.zeros(w.shape[0], device=w.device)
                    v[i] = math.log(30 * (w.shape[0] - 1))
                elif init == "row":
                    v = w[i].clone()
                else:  # random: the table's per-dimension mean and spread
                    v = w.mean(0) + w.std(0) * randn(w.shape[1], generator, device=w.device)
                rows[i] = nn.Parameter(v)
            self.vectors.append(rows)
        self.handles = [t.register_forward_hook(self._hook(t, rows)) for t, rows in zip(tables, self.vectors)]

    def _hook(self, table, rows):
        mix = self.space == "mix"

        def hook(_module, inputs, out):
            ids = inputs[0]
            for i, v in rows.items():
                vec = torch.softmax(v, 0) @ table.weight if mix else v
                out = torch.where((ids == i).unsqueeze(-1), vec.to(out.dtype), out)
            return out

        return hook

    def parameters(self) -> list[nn.Parameter]:
        return [v for rows in self.vectors for v in rows.values()]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _frozen_copy(net):
    net = copy.deepcopy(net).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def forget_loss(model, net, x, cond, seed: int) -> float:
    """The model's mean training loss on (x, cond) at fixed timesteps and noise (no condition dropout)."""
    with torch.no_grad():
        return float(
            model.process.loss(net, x, cond, generator=torch.Generator().manual_seed(seed), drop_cond=False).mean()
        )


def cond_probe(model, request, cfg: CondConfig | None = None, *, counter: Counter | None = None) -> dict:
    """ASR of no attack, random conditioning and the optimised conditioning; the forget-image loss
    before and after the attack; the attacked samples (``arrays``, the ``sample`` command's format)."""
    cfg = cfg or CondConfig()
    cfg.check()
    check_generative(model, "cond")
    if not model.conditional:
        raise GenUnlearnError(
            "the conditioning attack needs a conditional model; use --probe noise on unconditional models"
        )
    if request.kind not in ("classes", "concept"):
        raise GenUnlearnError(
            f"the conditioning attack needs a classes or concept request (a condition to steer), not {request.kind}; use --probe noise"
        )
    if model.process.name in ("one_step", "composed"):
        raise GenUnlearnError(
            f"a {model.process.name} model has no training loss of its own to attack; use --probe noise"
        )
    data, forget = forget_data(model, request)
    counter = counter or Counter(model, request, data=data)
    attr, values = forget_values(model, request)
    vocab = len(model.attributes[attr].values)
    net = _frozen_copy(model.net)
    tables = condition_tables(net, attr, vocab)
    g = torch.Generator().manual_seed(cfg.seed)
    fx = forget.x
    fcond = torch.tensor([len(a.values) for a in model.attributes]).repeat(len(forget), 1)
    fcond[:, attr] = forget.cond()[:, attr]  # the attacked value only; the others unspecified (as a forget prompt)
    held = torch.randperm(len(fx), generator=g)[: min(256, len(fx))]
    cond_n, asked = forget_conditions(model, request, cfg.n)
    sample_seed = cfg.seed + 104729
    t0 = time.perf_counter()

    def judged(m_net) -> tuple[float, torch.Tensor]:
        x = model.with_net(m_net).sample(cfg.n, cond_n, generator=torch.Generator().manual_seed(sample_seed))
        return counter.rate(x), x

    out = {"probe": "cond", "forget": request.spec(), "steps": cfg.steps, "n": cfg.n, "space": cfg.space}
    out["asr_no_attack"], _ = judged(net)
    loss_before = forget_loss(model, net, fx[held], fcond[held], cfg.seed)
    rnd = FreeConditioning(tables, values, init="random", generator=torch.Generator().manual_seed(cfg.seed + 1))
    out["asr_random"], _ = judged(net)
    out["loss_random"] = forget_loss(model, net, fx[held], fcond[held], cfg.seed)
    rnd.remove()
    free = FreeConditioning(tables, values, init="row", space=cfg.space)
    opt = torch.optim.Adam(free.parameters(), lr=cfg.lr)
    batch = min(cfg.batch_size, len(fx))
    for _ in range(cfg.steps):
        i = torch.randint(len(fx), (batch,), generator=g)
        loss = model.process.loss(net, fx[i], fcond[i], generator=g, drop_cond=False).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out["loss_no_attack"] = loss_before
    out["loss_attack"] = forget_loss(model, net, fx[held], fcond[held], cfg.seed)
    out["asr_attack"], x = judged(net)
    free.remove()
    out["seconds"] = round(time.perf_counter() - t0, 2)
    out["arrays"] = npz_arrays(model, x, asked)
    return out
