"""Sampling through two flows in sequence: noise →(base process)→ x ~ q0 →(transport flow)→ target.

The network is a ``ComposedNet`` (``.base``, ``.flow``). The base stage runs with the base
model's own process and accepts the usual sampler options (steps, solver, guidance, x0); the
transport stage is unconditional flow matching from t = 0 (a base sample) to t = 1 with its own
solver and step count. A composed model is for sampling: it has no training loss of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from genunlearn.errors import GenUnlearnError
from genunlearn.processes.flow_matching import FlowMatching


@dataclass
class ComposedFlow:
    base: object = field(default_factory=FlowMatching)  # the base model's process
    solver: str = "midpoint"
    steps: int = 10

    name = "composed"

    def config(self) -> dict:
        return {"name": self.name, "base": self.base.config(), "solver": self.solver, "steps": self.steps}

    @property
    def transport(self) -> FlowMatching:
        return FlowMatching(solver=self.solver, steps=self.steps)

    def loss(self, net, x1, cond=None, **kw) -> torch.Tensor:
        raise GenUnlearnError(
            "a composed flow model is for sampling only; it has no training loss (unlearn it again with mode=composed)"
        )

    @torch.no_grad()
    def sample(self, net, n, cond=None, *, shape, generator=None, **kw):
        x = self.base.sample(net.base, n, cond, shape=shape, generator=generator, **kw)
        return self.transport.sample(net.flow, n, None, shape=shape, x0=x)
