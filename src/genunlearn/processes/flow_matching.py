"""Flow matching on the straight (CondOT) path. Convention: t = 0 noise, t = 1 data.

x_t = (1 − t) x_0 + t x_1, target velocity u = x_1 − x_0. The loss is per sample (mean over
elements, never averaged over the batch) so that methods can reweight or mask it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from genunlearn.processes.conditioning import drop_condition, guided

SOLVERS = ("euler", "midpoint", "heun")


@dataclass
class FlowMatching:
    solver: str = "midpoint"
    steps: int = 20
    guidance: float = 1.0
    cond_dropout: float = 0.1
    attr_dropout: float = 0.0

    name = "flow"

    def config(self) -> dict:
        return {"name": self.name, **asdict(self)}

    @staticmethod
    def path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_t, target velocity) on the straight path."""
        tt = t.view(-1, *([1] * (x1.dim() - 1)))
        return (1 - tt) * x0 + tt * x1, x1 - x0

    def loss(self, net, x1, cond=None, *, x0=None, t=None, generator=None, drop_cond: bool = True) -> torch.Tensor:
        n = x1.shape[0]
        x0 = torch.randn(x1.shape, generator=generator) if x0 is None else x0
        t = torch.rand(n, generator=generator) if t is None else t
        if drop_cond:
            cond = drop_condition(net, cond, self.cond_dropout, self.attr_dropout, generator)
        xt, u = self.path(x0, x1, t)
        return (net(xt, t, cond) - u).pow(2).flatten(1).mean(1)

    def velocity(self, net, x, t: float | torch.Tensor, cond=None, guidance: float | None = None):
        t = torch.full((x.shape[0],), float(t)) if not torch.is_tensor(t) else t
        return guided(net, x, t, cond, self.guidance if guidance is None else guidance)

    @torch.no_grad()
    def sample(self, net, n, cond=None, *, shape, steps=None, solver=None, guidance=None, generator=None, x0=None):
        """Integrate from noise (or a given ``x0``) at t = 0 to data at t = 1 on a uniform grid."""
        steps, solver = steps or self.steps, solver or self.solver
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; expected one of {SOLVERS}")
        x = torch.randn((n, *shape), generator=generator) if x0 is None else x0.clone()
        v = lambda x, t: self.velocity(net, x, t, cond, guidance)  # noqa: E731
        h = 1.0 / steps
        for i in range(steps):
            t = i * h
            if solver == "euler":
                x = x + h * v(x, t)
            elif solver == "midpoint":
                x = x + h * v(x + 0.5 * h * v(x, t), t + 0.5 * h)
            else:
                k1 = v(x, t)
                k2 = v(x + h * k1, t + h)
                x = x + 0.5 * h * (k1 + k2)
        return x
