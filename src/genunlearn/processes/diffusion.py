"""DDPM diffusion. Convention: t = 0 data, t = T − 1 (almost) pure noise.

x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, with ᾱ from a ``beta_schedule`` (linear, scaled_linear,
squaredcos_cap_v2: diffusers' names). The network predicts in one ``prediction_type``: ``epsilon``
(ε), ``v_prediction`` (v = √ᾱ ε − √(1 − ᾱ) x_0) or ``sample`` (x_0); ``predict_eps`` and
``predict_x0`` convert. Networks see t / T ∈ [0, 1). Sampling uses diffusers' DDIM / DDPM
schedulers; classifier-free guidance is out_∅ + s (out_c − out_∅), in whichever parameterisation
(all three are affine in each other at fixed x_t, so guidance means the same in each).

Building blocks for methods: ``corrupt`` (clean batch → x_t, t, ε, target), ``predict`` (the network's
output, guided or not), the per-sample ``loss`` built on both, and sampling that starts from
(``sample(start=k)``) or stops at (``sample_until(stop=k)``) an intermediate sampler step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

import torch

from genunlearn import device
from genunlearn.processes.conditioning import drop_condition, guided

from genunlearn.errors import GenUnlearnError

SAMPLERS = ("ddim", "ddpm")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


@dataclass
class Diffusion:
    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    sampler: str = "ddim"
    steps: int = 50
    eta: float = 1.0
    guidance: float = 3.0
    clip_sample: bool = False  # clipping x̂0 while keeping ε̂ unclipped hurt small models (measured)
    cond_dropout: float = 0.1
    attr_dropout: float = 0.0
    beta_schedule: str = "linear"
    prediction_type: str = "epsilon"

    name = "diffusion"

    def __post_init__(self):
        if self.beta_schedule not in BETA_SCHEDULES:
            raise GenUnlearnError(
                f"unsupported beta_schedule {self.beta_schedule!r}; supported: {', '.join(BETA_SCHEDULES)}"
            )
        if self.prediction_type not in PREDICTION_TYPES:
            raise GenUnlearnError(
                f"unsupported prediction_type {self.prediction_type!r}; supported: {', '.join(PREDICTION_TYPES)}"
            )
        if self.sampler not in SAMPLERS:
            raise GenUnlearnError(f"unknown sampler {self.sampler!r}; expected one of {', '.join(SAMPLERS)}")
        if self.num_train_timesteps < 2 or self.steps < 1:
            raise GenUnlearnError(
                f"diffusion needs num_train_timesteps >= 2 and steps >= 1, got {self.num_train_timesteps} and {self.steps}"
            )

    def config(self) -> dict:
        return {"name": self.name, **asdict(self)}

    @cached_property
    def alphas_cumprod(self) -> torch.Tensor:
        if self.beta_schedule == "linear":
            betas = torch.linspace(
                self.beta_start, self.beta_end, self.num_train_timesteps, dtype=torch.float64, device="cpu"
            )  # _coef() places it
            return torch.cumprod(1 - betas, 0).float()
        return self.scheduler("ddpm").alphas_cumprod.float()  # diffusers' own schedule, bit for bit

    def _coef(self, t: torch.Tensor, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(√ᾱ_t, √(1 − ᾱ_t)) on ``t``'s device, shaped to broadcast over ``ndim``-dimensional tensors."""
        ab = self.alphas_cumprod.to(t.device)[t].view(-1, *([1] * (ndim - 1)))
        return ab.sqrt(), (1 - ab).sqrt()

    def add_noise(self, x0, t, noise):
        a, b = self._coef(t.to(x0.device), x0.dim())
        return a * x0 + b * noise

    def sample_timesteps(
        self, n: int, generator=None, antithetic: bool = False, *, where: torch.device | str = "cpu"
    ) -> torch.Tensor:
        T = self.num_train_timesteps
        if not antithetic:
            return device.randint(0, T, (n,), generator, device=where)
        half = device.randint(0, T, ((n + 1) // 2,), generator, device=where)
        return torch.cat([half, T - 1 - half])[:n]

    def net_time(self, t: torch.Tensor) -> torch.Tensor:
        return t.float() / self.num_train_timesteps

    def corrupt(self, x0, generator=None, *, t=None, noise=None, antithetic: bool = False):
        """(x_t, t, ε, target) for a clean batch: t drawn first (``antithetic``: t and T − 1 − t), then ε;
        the target is what the network predicts (ε, v or x_0)."""
        t = self.sample_timesteps(x0.shape[0], generator, antithetic, where=x0.device) if t is None else t.to(x0.device)
        noise = device.randn(x0.shape, generator, device=x0.device) if noise is None else noise.to(x0.device)
        xt = self.add_noise(x0, t, noise)
        if self.prediction_type == "epsilon":
            return xt, t, noise, noise
        if self.prediction_type == "sample":
            return xt, t, noise, x0
        a, b = self._coef(t, x0.dim())
        return xt, t, noise, a * noise - b * x0

    def predict(self, net, xt, t, cond=None, guidance: float = 1.0) -> torch.Tensor:
        """The network's output (ε̂, v̂ or x̂_0) at (x_t, t, c), classifier-free guided when ``guidance`` ≠ 1."""
        return guided(net, xt, self.net_time(t), cond, guidance)

    def predict_eps(self, net, xt, t, cond=None, guidance: float = 1.0) -> torch.Tensor:
        """ε̂ whatever the network predicts."""
        out = self.predict(net, xt, t, cond, guidance)
        if self.prediction_type == "epsilon":
            return out
        a, b = self._coef(t.to(out.device), out.dim())
        xt = xt.to(out.device)
        if self.prediction_type == "sample":
            return (xt - a * out) / b
        return a * out + b * xt  # v: ε = √ᾱ v + √(1 − ᾱ) x_t

    def loss(
        self,
        net,
        x0,
        cond=None,
        *,
        t=None,
        noise=None,
        generator=None,
        drop_cond: bool = True,
        antithetic: bool = False,
        guidance: float = 1.0,
    ) -> torch.Tensor:
        """Per-sample ‖ε̂ − ε‖² (mean over elements), with the process's condition dropout unless ``drop_cond`` is off."""
        x0, cond = device.place(net, x0, cond)
        xt, t, _, target = self.corrupt(x0, generator, t=t, noise=noise, antithetic=antithetic)
        if drop_cond:
            cond = drop_condition(net, cond, self.cond_dropout, self.attr_dropout, generator)
        return (self.predict(net, xt, t, cond, guidance) - target).pow(2).flatten(1).mean(1)

    def predict_x0(self, net, xt, t, cond=None, guidance: float = 1.0) -> torch.Tensor:
        xt = xt.to(device.of(net))
        a, b = self._coef(t.to(xt.device), xt.dim())
        if self.prediction_type == "sample":
            return self.predict(net, xt, t, cond, guidance)
        if self.prediction_type == "v_prediction":
            return a * xt - b * self.predict(net, xt, t, cond, guidance)
        return (xt - b * self.predict(net, xt, t, cond, guidance)) / a

    def scheduler(self, sampler: str):
        from diffusers import DDIMScheduler, DDPMScheduler

        if sampler not in SAMPLERS:
            raise GenUnlearnError(f"unknown sampler {sampler!r}; expected one of {', '.join(SAMPLERS)}")
        cls = DDIMScheduler if sampler == "ddim" else DDPMScheduler
        return cls(
            num_train_timesteps=self.num_train_timesteps,
            beta_start=self.beta_start,
            beta_end=self.beta_end,
            beta_schedule=self.beta_schedule,
            prediction_type=self.prediction_type,
            clip_sample=self.clip_sample,
        )

    @torch.no_grad()
    def sample(
        self,
        net,
        n,
        cond=None,
        *,
        shape,
        steps=None,
        sampler=None,
        eta=None,
        guidance=None,
        generator=None,
        x_T=None,
        start: int = 0,
    ):
        """Data from noise, or from ``x_T`` taken as the state after ``start`` sampler steps (see ``sample_until``)."""
        return self._run(net, n, cond, shape, steps, sampler, eta, guidance, generator, x_T, start, None)[0]

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
        sampler=None,
        eta=None,
        guidance=None,
        generator=None,
        x_T=None,
        start: int = 0,
    ):
        """(x_t, t): the state after the sampler's first ``stop`` steps and the integer timestep it is at, (n,)."""
        x, timesteps = self._run(net, n, cond, shape, steps, sampler, eta, guidance, generator, x_T, start, stop)
        return x, timesteps[stop].expand(n).to(x.device)

    def _run(self, net, n, cond, shape, steps, sampler, eta, guidance, generator, x_T, start, stop):
        sampler = sampler or self.sampler
        sched = self.scheduler(sampler)
        sched.set_timesteps(steps or self.steps)
        scale = self.guidance if guidance is None else guidance
        kwargs = {"eta": self.eta if eta is None else eta} if sampler == "ddim" else {}
        timesteps = sched.timesteps
        if not 0 <= start <= (len(timesteps) if stop is None else stop) or (
            stop is not None and stop >= len(timesteps)
        ):
            raise ValueError(
                f"sampler steps must satisfy 0 <= start <= stop < {len(timesteps)}, got start={start}, stop={stop}"
            )
        on = device.of(net)
        x = device.randn((n, *shape), generator, device=on) if x_T is None else x_T.to(on, copy=True)
        for t in timesteps[start:stop]:
            out = self.predict(net, x, t.expand(n), cond, scale)
            x = sched.step(out, t, x, generator=generator, **kwargs).prev_sample
        return x, timesteps
