"""Initial-noise search: can the forgotten content be reached from well-chosen starting noise?

For models without a forget condition to steer (unconditional flows, ContinualFlow's region
forgetting, one-step and composed models), the attacker holds the forget samples and searches the
sampler's starting noise (x_T / x_0 / z) for samples close to them, at a fixed budget: ``rounds``
rounds of ``n`` samples each. Round 0 is plain sampling (the "no attack" baseline); in each later
round every slot proposes a variance-preserving perturbation of its best noise,
√(1 − s²) z + s ε (so proposals stay standard normal), and keeps it when the generated sample lies
closer (Euclidean, on pixels or points) to its nearest forget sample. The sampler's own randomness
(DDPM / DDIM η > 0) is held fixed by reseeding, so a slot's sample is a function of its noise. The
score never looks at the judge; the domain judge (or the request's region) counts the result: ASR.
Conditional models are sampled with the forget prompt (the search then adds to it).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from genunlearn.errors import GenUnlearnError
from genunlearn.eval.probes.common import Counter, check_generative, forget_conditions, forget_data, npz_arrays

NOISE_ARG = {"diffusion": "x_T", "flow": "x0", "one_step": "z"}


@dataclass
class NoiseConfig:
    rounds: int = 10  # the budget: rounds × n generated samples
    n: int = 100
    step: float = 0.5  # s, the perturbation's share of fresh noise
    seed: int = 0

    def check(self) -> None:
        for name in ("rounds", "n"):
            if getattr(self, name) < 1:
                raise GenUnlearnError(f"noise {name} must be >= 1, got {getattr(self, name)}")
        if not (0 < self.step <= 1 and math.isfinite(self.step)):
            raise GenUnlearnError(f"noise step must lie in (0, 1], got {self.step}")


def noise_argument(process) -> str:
    name = process.name
    if name == "composed":
        name = process.base.name
    if name not in NOISE_ARG:
        raise GenUnlearnError(f"the noise probe does not know how to start a {name} sampler from given noise")
    return NOISE_ARG[name]


def nearest_distance(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """(N,) Euclidean distance of each sample to its nearest reference sample."""
    return torch.cdist(x.flatten(1), ref.flatten(1)).min(1).values


def noise_probe(model, request, cfg: NoiseConfig | None = None, *, counter: Counter | None = None) -> dict:
    cfg = cfg or NoiseConfig()
    cfg.check()
    check_generative(model, "noise")
    arg = noise_argument(model.process)
    data, forget = forget_data(model, request)
    counter = counter or Counter(model, request, data=data)
    g = torch.Generator().manual_seed(cfg.seed)
    ref = forget.x[torch.randperm(len(forget), generator=g)[:2000]]
    cond, asked = forget_conditions(model, request, cfg.n)
    shape = (cfg.n, *model.sample_shape)
    sampler_seed = cfg.seed + 15485863
    t0 = time.perf_counter()

    def generate(z):
        return model.sample(
            cfg.n, cond, generator=torch.Generator().manual_seed(sampler_seed), batch_size=cfg.n, **{arg: z}
        )

    z = torch.randn(shape, generator=g, device="cpu")  # the sampler places it on the network's device
    x = generate(z)
    d = nearest_distance(x, ref)
    out = {
        "probe": "noise",
        "forget": request.spec(),
        "rounds": cfg.rounds,
        "n": cfg.n,
        "budget_samples": cfg.rounds * cfg.n,
    }
    out["asr_no_attack"] = counter.rate(x)
    out["distance_no_attack"] = float(d.mean())
    s = cfg.step
    for _ in range(cfg.rounds - 1):
        z_new = math.sqrt(1 - s * s) * z + s * torch.randn(shape, generator=g, device="cpu")
        x_new = generate(z_new)
        d_new = nearest_distance(x_new, ref)
        better = d_new < d
        z = torch.where(better.view(-1, *[1] * (z.dim() - 1)), z_new, z)
        x = torch.where(better.view(-1, *[1] * (x.dim() - 1)), x_new, x)
        d = torch.minimum(d, d_new)
    out["asr_attack"] = counter.rate(x)
    out["distance_attack"] = float(d.mean())
    out["seconds"] = round(time.perf_counter() - t0, 2)
    out["arrays"] = npz_arrays(model, x, asked)
    return out
