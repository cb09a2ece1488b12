"""Flow matching on the straight (CondOT) path. Convention: t = 0 noise, t = 1 data.

x_t = (1 − t) x_0 + t x_1, target velocity u = x_1 − x_0. The loss is per sample (mean over
elements, never averaged over the batch) so that methods can reweight or mask it. Building blocks
as in ``Diffusion``: ``corrupt`` (data batch → x_t, t, x_0, target velocity), ``predict`` (v̂, guided
or not), ``loss``, ``sample(start=k)`` / ``sample_until(stop=k)`` on the solver's grid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from genunlearn import device
from genunlearn.errors import GenUnlearnError
from genunlearn.processes.conditioning import drop_condition, guided

SOLVERS = ("euler", "midpoint", "heun")


@dataclass
class FlowMatching:
    solver: str = "midpoint"
    steps: int = 20
    guidance: float = 1.0
    cond_dropout: float = 0.1
    attr_dropout: float = 0.0
    shift: float = 1.0  # time shift of the sampling grid (SD3 / FlowMatchEulerDiscreteScheduler); 1 = none
    grid: str = "uniform"  # or "diffusers": FlowMatchEulerDiscreteScheduler's own σ grid
    num_train_timesteps: int = 1000  # the diffusers grid's σ_min = shifted(1 / T)

    name = "flow"

    def __post_init__(self):
        if self.grid not in ("uniform", "diffusers"):
            raise GenUnlearnError(f"flow grid must be 'uniform' or 'diffusers', got {self.grid!r}")
        if not self.shift > 0 or self.steps < 1:
            raise GenUnlearnError(
                f"flow matching needs shift > 0 and steps >= 1, got shift={self.shift}, steps={self.steps}"
            )

    def _shifted(self, sigma: float) -> float:
        return self.shift * sigma / (1 + (self.shift - 1) * sigma)

    def grid_time(self, i: int, steps: int) -> float:
        """Solver time of grid point ``i`` of ``steps`` (t = 1 − σ). ``uniform``: σ = 1 − i / steps,
        shifted σ' = sσ / (1 + (s − 1)σ). ``diffusers``: as FlowMatchEulerDiscreteScheduler.set_timesteps,
        σ from 1 to shifted(1/T) evenly, shifted, then 0 at the end."""
        if self.grid == "uniform":
            if self.shift == 1.0:
                return i * (1.0 / steps)
            return 1 - self._shifted(1 - i / steps)
        if i == steps:
            return 1.0
        sigma_min = self._shifted(1 / self.num_train_timesteps)
        return 1 - self._shifted(1 + (sigma_min - 1) * i / max(steps - 1, 1))

    def config(self) -> dict:
        return {"name": self.name, **asdict(self)}

    @staticmethod
    def path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_t, target velocity) on the straight path."""
        tt = t.view(-1, *([1] * (x1.dim() - 1)))
        return (1 - tt) * x0 + tt * x1, x1 - x0

    def corrupt(self, x1, generator=None, *, t=None, noise=None, antithetic: bool = False):
        """(x_t, t, x_0, target velocity) for a data batch: the noise x_0 drawn first, then t ~ U[0, 1)
        (``antithetic``: t and 1 − t)."""
        n = x1.shape[0]
        noise = device.randn(x1.shape, generator, device=x1.device) if noise is None else noise.to(x1.device)
        if t is None:
            t = device.rand((n + 1) // 2 if antithetic else n, generator, device=x1.device)
            t = torch.cat([t, 1 - t])[:n] if antithetic else t
        t = t.to(x1.device)
        xt, u = self.path(noise, x1, t)
        return xt, t, noise, u

    def predict(self, net, xt, t, cond=None, guidance: float = 1.0) -> torch.Tensor:
        """v̂(x_t, t, c), classifier-free guided when ``guidance`` ≠ 1."""
        return guided(net, xt, t, cond, guidance)

    def loss(
        self,
        net,
        x1,
        cond=None,
        *,
        x0=None,
        t=None,
        generator=None,
        drop_cond: bool = True,
        antithetic: bool = False,
        guidance: float = 1.0,
    ) -> torch.Tensor:
        """Per-sample ‖v̂ − (x_1 − x_0)‖² (mean over elements), with the process's condition dropout unless ``drop_cond`` is off."""
        x1, cond = device.place(net, x1, cond)
        xt, t, _, target = self.corrupt(x1, generator, t=t, noise=x0, antithetic=antithetic)
        if drop_cond:
            cond = drop_condition(net, cond, self.cond_dropout, self.attr_dropout, generator)
        return (self.predict(net, xt, t, cond, guidance) - target).pow(2).flatten(1).mean(1)

    def velocity(self, net, x, t: float | torch.Tensor, cond=None, guidance: float | None = None):
        t = torch.full((x.shape[0],), float(t), device=x.device) if not torch.is_tensor(t) else t
        return self.predict(net, x, t, cond, self.guidance if guidance is None else guidance)

    @torch.no_grad()
    def sample(
        self,
        net,
        n,
        cond=None,
        *,
        shape,
        steps=None,
        solver=None,
        guidance=None,
        generator=None,
        x0=None,
        start: int = 0,
    ):
        """Integrate from noise (or a given ``x0``, the state after ``start`` steps) to data at t = 1 on the
        (uniform or shifted) grid."""
        return self._run(net, n, cond, shape, steps, solver, guidance, generator, x0, start, None)

    @torch.no_grad()
    def sample_until(
        self,
        net,
        n,
        cond=None,
        stop: int = 0,
        *,
        shape,
        steps=None,
        solver=None,
        guidance=None,
        generator=None,
        x0=None,
        start: int = 0,
    ):
        """(x_t, t): the state after the first ``stop`` solver steps, at t = stop / steps, (n,)."""
        x = self._run(net, n, cond, shape, steps, solver, guidance, generator, x0, start, stop)
        return x, torch.full((n,), self.grid_time(stop, steps or self.steps), device=x.device)

    def _run(self, net, n, cond, shape, steps, solver, guidance, generator, x0, start, stop):
        steps, solver = steps or self.steps, solver or self.solver
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; expected one of {SOLVERS}")
        stop = steps if stop is None else stop
        if not 0 <= start <= stop <= steps:
            raise ValueError(f"solver steps must satisfy 0 <= start <= stop <= {steps}, got start={start}, stop={stop}")
        on = device.of(net)
        x = device.randn((n, *shape), generator, device=on) if x0 is None else x0.to(on, copy=True)
        v = lambda x, t: self.velocity(net, x, t, cond, guidance)  # noqa: E731
        for i in range(start, stop):
            t = self.grid_time(i, steps)
            h = 1.0 / steps if self.shift == 1.0 else self.grid_time(i + 1, steps) - t
            if solver == "euler":
                x = x + h * v(x, t)
            elif solver == "midpoint":
                x = x + h * v(x + 0.5 * h * v(x, t), t + 0.5 * h)
            else:
                k1 = v(x, t)
                k2 = v(x + h * k1, t + h)
                x = x + 0.5 * h * (k1 + k2)
        return x
