"""One-step generation for distilled generators (SFD): x = G(z, c) = f(b_{t*} z, t*, c).

The generator is a copy of a diffusion or flow network read as a denoiser f on the teacher's VP
schedule (ᾱ_t from linear β over T steps; a_t = √ᾱ_t, b_t = √(1 − ᾱ_t)). ``net_kind`` says how
the network reads its input:
* ``diffusion``: ε-prediction, f(y, t, c) = (y − b_t ε(y, t, c)) / a_t (the Diffusion process's own
  ``predict_x0``);
* ``flow``: a velocity field in genunlearn's convention (τ = 0 noise, τ = 1 data). A VP point
  y = a x_0 + b ε is x_τ = y / (a + b) at τ = a / (a + b), and f = x_τ + (1 − τ) v(x_τ, τ, c).
The same view serves teachers and fake-score networks during distillation: ``corrupt`` (the VP
forward process), ``predict`` (ε̂ of the view), ``denoise`` (x̂_0) and ``score_loss`` (their
per-sample denoising score matching). Sampling is exactly one network call, without guidance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

import torch

from genunlearn import device
from genunlearn.errors import GenUnlearnError
from genunlearn.processes.conditioning import guided
from genunlearn.processes.diffusion import Diffusion

NET_KINDS = ("diffusion", "flow")


@dataclass
class OneStep:
    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    t_star: int = 440  # σ_{t*} ≈ 2.5 on the default schedule
    net_kind: str = "diffusion"
    beta_schedule: str = "linear"  # the teacher's (diffusion teachers)
    prediction_type: str = "epsilon"  # what the network predicts (diffusion teachers)

    name = "one_step"

    def __post_init__(self):
        if self.net_kind not in NET_KINDS:
            raise GenUnlearnError(
                f"one_step: unknown net_kind {self.net_kind!r}; expected one of {', '.join(NET_KINDS)}"
            )
        if not 0 <= self.t_star < self.num_train_timesteps:
            raise GenUnlearnError(f"one_step: t_star must be in [0, {self.num_train_timesteps}), got {self.t_star}")

    @classmethod
    def for_teacher(cls, process, t_star: int) -> "OneStep":
        """The one-step process matching a teacher's process (flow teachers use the default VP schedule)."""
        if isinstance(process, Diffusion):
            return cls(
                process.num_train_timesteps,
                process.beta_start,
                process.beta_end,
                t_star,
                "diffusion",
                process.beta_schedule,
                process.prediction_type,
            )
        if getattr(process, "name", None) == "flow":
            return cls(t_star=t_star, net_kind="flow")
        raise GenUnlearnError(
            f"cannot distil a {getattr(process, 'name', type(process).__name__)!r} model into one step (diffusion or flow only)"
        )

    def config(self) -> dict:
        return {"name": self.name, **asdict(self)}

    @cached_property
    def schedule(self) -> Diffusion:
        return Diffusion(
            self.num_train_timesteps,
            self.beta_start,
            self.beta_end,
            beta_schedule=self.beta_schedule,
            prediction_type=self.prediction_type,
        )

    def coef(self, t: torch.Tensor, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(a_t, b_t) on ``t``'s device, shaped to broadcast over a batch of ``ndim``-dimensional tensors."""
        ab = self.schedule.alphas_cumprod.to(t.device)[t].view(-1, *([1] * (ndim - 1)))
        return ab.sqrt(), (1 - ab).sqrt()

    def add_noise(self, x0, t, noise):
        return self.schedule.add_noise(x0, t, noise)

    def corrupt(self, x0, generator=None, *, t=None, noise=None, antithetic: bool = False):
        """(y_t, t, ε, target = ε) on the VP schedule (the teacher's forward process)."""
        y, t, noise, _ = self.schedule.corrupt(x0, generator, t=t, noise=noise, antithetic=antithetic)
        return y, t, noise, noise

    def denoise(self, net, y: torch.Tensor, t: torch.Tensor, cond=None, guidance: float = 1.0) -> torch.Tensor:
        """x̂_0 from the VP point ``y`` at integer time ``t`` (one network call; guidance s ≠ 1 batches two)."""
        if self.net_kind == "diffusion":
            return self.schedule.predict_x0(net, y, t, cond, guidance)
        y, t = y.to(device.of(net)), t.to(device.of(net))
        a, b = self.coef(t, y.dim())
        tau = a / (a + b)
        x_tau = y / (a + b)
        return x_tau + (1 - tau) * guided(net, x_tau, tau.flatten(), cond, guidance)

    def predict(self, net, y: torch.Tensor, t: torch.Tensor, cond=None, guidance: float = 1.0) -> torch.Tensor:
        """ε̂ of the VP view (converted from the network's own prediction type)."""
        if self.net_kind == "diffusion":
            return self.schedule.predict_eps(net, y, t, cond, guidance)
        y = y.to(device.of(net))
        a, b = self.coef(t.to(y.device), y.dim())
        return (y - a * self.denoise(net, y, t, cond, guidance)) / b

    def score_loss(self, net, x0, cond=None, *, t=None, noise=None, generator=None) -> torch.Tensor:
        """Per-sample denoising score matching Σ ‖ε̂(y_t, t, c) − ε‖², summed over elements (SiD's scale)."""
        y, t, _, target = self.corrupt(x0, generator, t=t, noise=noise)
        return (self.predict(net, y, t, cond) - target).pow(2).flatten(1).sum(1)

    def generate(self, net, z: torch.Tensor, cond=None) -> torch.Tensor:
        """G(z, c) = f(b_{t*} z, t*, c), differentiable (no signal term in the input)."""
        z = z.to(device.of(net))
        t = torch.full((z.shape[0],), self.t_star, dtype=torch.long, device=z.device)
        _, b = self.coef(t, z.dim())
        return self.denoise(net, b * z, t, cond)

    def loss(self, net, x1, cond=None, **kw):
        raise GenUnlearnError(
            "a one-step generator has no training loss of its own; distil it again from its teacher (method sfd)"
        )

    @torch.no_grad()
    def sample(self, net, n, cond=None, *, shape, generator=None, z=None, steps=None, guidance=None):
        """One network call per batch; ``steps`` may only be 1 and guidance is not available."""
        if steps not in (None, 1):
            raise GenUnlearnError(f"a one-step generator samples in exactly 1 step, not {steps}")
        if guidance not in (None, 1.0):
            raise GenUnlearnError("a one-step generator has no classifier-free guidance (it was distilled without it)")
        z = device.randn((n, *shape), generator, device=device.of(net)) if z is None else z
        return self.generate(net, z, cond)
