"""Fine-tune baseline: keep training the pretrained model on the retain split with its normal loss.

Generic over processes (flow matching, diffusion): it calls the process's own per-sample loss,
with the base model's condition dropout. The paper gives no details of its fine-tuning baseline;
this definition (Adam, base lr / 10, EMA optional) is a project choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genunlearn.methods.lifecycle import Plan, TrainedMethod
from genunlearn.training.loop import Objective, Optim, check_schedule


@dataclass
class FinetuneConfig:
    steps: int = 1000  # optimiser steps (the CLI's --steps overrides)
    lr: float | None = None  # None: the base recipe's lr / 10 (1e-4 when unknown)
    batch: int = 512
    lr_schedule: str = "constant"  # or "cosine" (decay to 0 over the steps)
    ema_decay: float | None = None  # sample from an EMA of the fine-tuned weights
    seed: int = 0

    def __post_init__(self):
        check_schedule(self.lr_schedule, self.ema_decay)


class Finetune(TrainedMethod):
    Config = FinetuneConfig

    def plan(self, model, request, data, net, steps):
        cfg, process = self.config, model.process
        _, retain = data.split(request)
        x = retain.x
        cond = retain.cond() if model.conditional else None
        batch = min(cfg.batch, len(retain))

        def loss(m, g):
            """The base model's own training loss on a batch of retained data."""
            i = torch.randint(len(x), (batch,), generator=g)
            return process.loss(m, x[i], None if cond is None else cond[i], generator=g).mean()

        base_lr = model.info.get("recipe", {}).get("train", {}).get("lr")
        lr = cfg.lr if cfg.lr is not None else (base_lr / 10 if base_lr else 1e-4)
        optim = Optim(lr=lr, optimizer="adam", grad_clip=1.0, lr_schedule=cfg.lr_schedule)
        return Plan(
            Objective("model", net, loss, optim, ema_decay=cfg.ema_decay),
            log_every=max(1, min(50, steps)),
            record={"lr": lr},
            progress=False,
        )
