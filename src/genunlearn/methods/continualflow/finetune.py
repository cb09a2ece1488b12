"""Fine-tune mode (the default, a project choice): the pretrained network is trained in place from
noise to the reweighted pool, so sampling is unchanged."""

from __future__ import annotations

import copy

import torch

from genunlearn import device
from genunlearn.methods.continualflow.conditions import condition_sources, redirect, share_batch
from genunlearn.methods.continualflow.config import ContinualFlowConfig
from genunlearn.methods.continualflow.loss import weighted_flow_loss
from genunlearn.methods.continualflow.pool import Pool


def finetune(model, pool: Pool, cfg: ContinualFlowConfig, steps: int, lr: float, callbacks):
    """(a trained copy of ``model.net``, the loop's result). Conditional models: each batch item keeps
    its condition (or the null one, at the base's dropout rate) and takes x1 from ``conditions``."""
    from genunlearn.processes.conditioning import null_cond
    from genunlearn.training import TrainConfig, train

    process = model.process
    net = copy.deepcopy(model.net)
    batch, m = cfg.batch, pool.x.shape[0]
    sources = condition_sources(pool, cfg.tau_c, cfg.fallback) if pool.cond is not None else None
    p_null = getattr(process, "cond_dropout", 0.0)

    def step_loss(model_net, g):
        i = (
            torch.randint(m, (batch,), generator=g)
            if sources is None or cfg.vanishing_share is None
            else share_batch(sources, cfg.vanishing_share, batch, g)
        )
        if sources is None:
            return weighted_flow_loss(
                process, model_net, pool.x[i], pool.w[i], None, eps=cfg.eps, generator=g, drop_cond=False
            )
        cond = pool.cond[i]
        null = device.rand(batch, g, device=pool.cond.device) < p_null
        cond = torch.where(null[:, None], null_cond(model_net, batch, cond.device), cond)
        j = redirect(sources, pool.cond[i, 0], null, g)
        return weighted_flow_loss(
            process, model_net, pool.x[j], pool.w[j], cond, eps=cfg.eps, generator=g, drop_cond=False
        )

    tc = TrainConfig(
        steps=steps,
        lr=lr,
        optimizer="adam",
        grad_clip=1.0,
        lr_schedule=cfg.lr_schedule,
        ema_decay=cfg.ema_decay,
        seed=cfg.seed,
        log_every=max(1, min(50, steps)),
    )
    result = train(net, step_loss, tc, desc="continualflow", callbacks=callbacks, progress=False)
    return net, result
