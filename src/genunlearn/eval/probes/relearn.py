"""Relearning probe: how fast does the forgotten content come back?

A copy of the model is fine-tuned on ``k`` forget samples with the model family's own training loss
(``process.loss``, through the one training loop ``genunlearn.training.train``; the base recipe's
optimiser settings when the model records them, a constant learning rate, no EMA, a fixed seed),
and the judged share of forgotten content drawn (``forgotten_content_drawn``) is recorded after
each of ``checkpoints`` steps (default 0, 10, 25, 50). The area under that curve (trapezoid,
divided by the last step: the mean share over the fine-tune) compared with the same curve of a
reference model (the retrain model, which never saw the class) gives ``auc_ratio`` =
AUC(model) / AUC(reference): > 1 means the forgotten content came back faster than from scratch
(knowledge hidden, not removed).

On an I2I model the relearning acts on the encoder (the decoder stays frozen, as I2I unlearning
leaves it) with the masked reconstruction loss of its recipe, and the curve holds the judged
share of forgotten classes among inpainting completions of held-out forget images.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from genunlearn.device import place
from genunlearn.errors import GenUnlearnError
from genunlearn.eval.probes.common import Counter, forget_data, forgotten_content_drawn


@dataclass
class RelearnConfig:
    k: int = 10  # forget samples the attacker holds
    checkpoints: tuple[int, ...] = (0, 10, 25, 50)
    n: int = 100  # samples judged at each checkpoint
    batch_size: int = 10
    lr: float | None = None  # default: the recipe's learning rate (1e-3 if the model records none)
    seed: int = 0

    def check(self) -> None:
        cps = tuple(self.checkpoints)
        if not cps or any(c < 0 for c in cps) or list(cps) != sorted(set(cps)):
            raise GenUnlearnError(f"relearning checkpoints must be distinct, increasing steps >= 0, got {cps}")
        if cps[-1] < 1:
            raise GenUnlearnError("relearning needs at least one step after 0")
        for name in ("k", "n", "batch_size"):
            if getattr(self, name) < 1:
                raise GenUnlearnError(f"relearn {name} must be >= 1, got {getattr(self, name)}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise GenUnlearnError(f"relearn lr must be a finite number > 0, got {self.lr}")


OPTIM_KEYS = ("optimizer", "lr", "betas", "momentum", "weight_decay", "grad_clip", "clip_mode")


def auc(steps, rates) -> float:
    """Trapezoid area under (steps, rates), divided by the span: the mean rate over the fine-tune."""
    span = steps[-1] - steps[0]
    if span <= 0:
        return float(rates[0])
    area = sum((b - a) * (ra + rb) / 2 for a, b, ra, rb in zip(steps, steps[1:], rates, rates[1:]))
    return area / span


def _generative_parts(model, request, cfg: RelearnConfig, counter: Counter):
    """(network copy, trainable params, step loss, forgotten content drawn by a network): the whole
    network, the process's own loss on k forget samples, the judged share of forgotten content in
    samples."""
    data, forget = forget_data(model, request)
    idx = torch.randperm(len(forget), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.k]
    x = forget.x[idx]
    cond = forget.cond()[idx] if model.conditional else None
    net = copy.deepcopy(model.net)
    batch = min(cfg.batch_size, len(x))

    def step_loss(m, gen):
        i = torch.randint(len(x), (batch,), generator=gen)
        return model.process.loss(m, x[i], None if cond is None else cond[i], generator=gen).mean()

    return (
        net,
        None,
        step_loss,
        lambda n: forgotten_content_drawn(model, request, counter, cfg.n, cfg.seed + 7919, net=n),
        len(x),
    )


def _i2i_parts(model, request, cfg: RelearnConfig, counter: Counter):
    """The same for an I2I model: the encoder only (the decoder frozen), the masked reconstruction
    loss (training-mix masks) on k forget training images, the judged share of forgotten content
    among inpainting completions of ``n`` held-out forget images."""
    from genunlearn.eval.probes.complete import held_out_forget, inpaint_rate
    from genunlearn.i2i.masks import training_mask
    from genunlearn.i2i.model import masked_mse

    _, forget = forget_data(model, request)
    x = forget.x[torch.randperm(len(forget), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.k]]
    test, _ = held_out_forget(model, request, cfg.n, cfg.seed)
    net = copy.deepcopy(model.net)
    net.requires_grad_(False)
    net.encoder.requires_grad_(True)
    batch = min(cfg.batch_size, len(x))

    def step_loss(m, gen):
        xb = x[torch.randint(len(x), (batch,), generator=gen)]
        xb, visible = place(m, xb, training_mask(batch, net.grid, gen))
        return masked_mse(m(xb, visible), xb, net.hidden_pixels(visible)).mean()

    return net, list(net.encoder.parameters()), step_loss, lambda n: inpaint_rate(model, test, counter, net=n), len(x)


def _recipe_optim(model, cfg: RelearnConfig) -> dict:
    """The model's own recipe optimiser (at ``cfg.lr`` when given), constant rate, no warm-up, no EMA."""
    recipe = (model.info.get("recipe") or {}).get("train") or {}
    optim = {k: recipe[k] for k in OPTIM_KEYS if k in recipe}
    if isinstance(optim.get("betas"), list):
        optim["betas"] = tuple(optim["betas"])
    return {**optim, "lr": cfg.lr or optim.get("lr", 1e-3), "lr_schedule": "constant", "warmup": 0, "ema_decay": None}


def relearn_curve(
    model, request, cfg: RelearnConfig | None = None, *, counter: Counter | None = None, progress: bool = False
) -> dict:
    """{"steps", "forgotten_content_drawn" (one per checkpoint), "auc", "k", "n", "seconds"} for one model."""
    import time

    from genunlearn.training import TrainConfig, train

    cfg = cfg or RelearnConfig()
    cfg.check()
    family = getattr(model, "family", None)
    if family not in ("generative", "i2i"):
        raise GenUnlearnError(
            f"the relearn probe runs on generative and I2I models; this is a {family or type(model).__name__} model"
        )
    counter = counter or Counter(model, request)
    net, params, step_loss, rate, k = (_i2i_parts if family == "i2i" else _generative_parts)(
        model, request, cfg, counter
    )
    t0 = time.perf_counter()
    rates: dict[int, float] = {}
    cps = tuple(cfg.checkpoints)

    def measure(step: int) -> None:
        was = net.training
        rates[step] = rate(net)
        net.train(was)

    if cps[0] == 0:
        measure(0)
    if cps[-1] > 0:
        every = math.gcd(*[c for c in cps if c > 0])
        tc = TrainConfig(**_recipe_optim(model, cfg), steps=cps[-1], seed=cfg.seed, log_every=every)
        net.train()
        train(
            net,
            step_loss,
            tc,
            params=params,
            desc="relearn",
            progress=progress,
            callbacks=(lambda step, _rec: measure(step) if step in cps else None,),
        )
    net.requires_grad_(True)
    steps = [c for c in cps if c in rates]
    curve = [rates[c] for c in steps]
    return {
        "steps": steps,
        "forgotten_content_drawn": curve,
        "auc": auc(steps, curve),
        "k": int(k),
        "n": cfg.n,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def relearn_probe(model, request, *, reference=None, cfg: RelearnConfig | None = None, progress: bool = False) -> dict:
    """The model's relearning curve; with ``reference`` (the retrain model) its curve too and
    ``auc_ratio`` = AUC(model) / AUC(reference) (the reference's AUC floored at 1/n, one sample)."""
    cfg = cfg or RelearnConfig()
    cfg.check()
    counter = Counter(model, request)
    out = {
        "probe": "relearn",
        "forget": request.spec(),
        "model": relearn_curve(model, request, cfg, counter=counter, progress=progress),
    }
    if reference is not None:
        out["reference"] = relearn_curve(reference, request, cfg, counter=counter, progress=progress)
        out["auc_ratio"] = out["model"]["auc"] / max(out["reference"]["auc"], 1 / cfg.n)
    return out
