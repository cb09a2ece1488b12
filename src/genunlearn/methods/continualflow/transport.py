"""Composed mode (the reference code): a new network transports pool samples to reweighted pool
samples (independent pairs); the model becomes a ``ComposedNet`` sampled by the ``ComposedFlow``
process (unconditional models only). Its base stage q0 never changes, so restoring an energy is exact."""

from __future__ import annotations

import torch

from genunlearn.methods.continualflow.config import ContinualFlowConfig
from genunlearn.methods.continualflow.loss import weighted_flow_loss
from genunlearn.methods.continualflow.pool import Pool


def transport(model, pool: Pool, cfg: ContinualFlowConfig, steps: int, lr: float, callbacks):
    """(the composed network q0 → transport, the loop's result), trained on ``pool`` of ``model`` (q0)."""
    from genunlearn.models import build_network, network_config
    from genunlearn.models.composed import ComposedNet
    from genunlearn.processes.flow_matching import FlowMatching
    from genunlearn.training import TrainConfig, train

    torch.manual_seed(cfg.seed)
    flow_net = build_network({**network_config(model.net), "cond_vocab": []})
    flow, m = FlowMatching(solver="midpoint", steps=cfg.transport_steps), pool.x.shape[0]

    def step_loss(net, g):
        i = torch.randint(m, (cfg.batch,), generator=g)  # x0: pool draws
        j = torch.randint(m, (cfg.batch,), generator=g)  # x1: independent pool draws
        return weighted_flow_loss(
            flow, net, pool.x[j], pool.w[j], None, eps=cfg.eps, x0=pool.x[i], generator=g, drop_cond=False
        )

    tc = TrainConfig(
        steps=steps,
        lr=lr,
        optimizer="adam",
        grad_clip=None,
        lr_schedule=cfg.lr_schedule,
        seed=cfg.seed,
        log_every=max(1, min(50, steps)),
    )
    result = train(flow_net, step_loss, tc, desc="continualflow (composed)", callbacks=callbacks, progress=False)
    return ComposedNet.of(model.net, flow_net), result
