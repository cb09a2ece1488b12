"""UnlearnDiffAtk's optimisation (Zhang et al., ECCV 2024), shared by the ``prompt`` probe and AdvUnlearn.

The attacker holds latents x₀ of the concept and the concept's prompts. It looks for the soft prefix
(``k`` free token embeddings before each prompt, through the model's text encoder:
``TextUNetView.prompt_states``) under which the frozen UNet explains those images best, i.e. the
diffusion classifier's loss E_{x₀,t,ε} ‖ε_θ(√ᾱ_t x₀ + √(1 − ᾱ_t) ε, t, c(prefix, prompt)) − ε‖²
(the target in the process's own parameterisation: ε, v or x₀). A model that hides the concept
behind its prompts rather than removing it is steered back by such a prefix.

Adam on the prefix alone (``torch.autograd.grad``: no weight collects a gradient, so a method may
run the attack between its own steps), step size ``lr`` × the vocabulary's RMS embedding entry.
Adam's first update is lr·sign(g), so one step is the fast sign-gradient attack AdvUnlearn allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genunlearn.models.soft_prompt import embedding_scale


@dataclass
class AttackTarget:
    """What the attacker holds: latents of the concept and the prompts they answer (cycled over them)."""

    x0: torch.Tensor
    prompts: list[str]

    def prompts_for(self, index: torch.Tensor) -> list[str]:
        return [self.prompts[int(i) % len(self.prompts)] for i in index]


def prefix_loss(
    view,
    process,
    target: AttackTarget,
    prefix,
    generator: torch.Generator,
    *,
    batch: int | None = None,
    text_encoder=None,
) -> torch.Tensor:
    """The diffusion classifier's loss of the prefixed prompts on ``batch`` drawn images (all of them,
    in order, without ``batch``), at drawn timesteps and noise."""
    index = (
        torch.arange(len(target.x0)) if batch is None else torch.randint(len(target.x0), (batch,), generator=generator)
    )
    states = view.prompt_states(target.prompts_for(index), prefix, text_encoder=text_encoder)
    xt, t, _, wanted = process.corrupt(target.x0[index.to(target.x0.device)], generator)
    return (view.denoise(xt, process.net_time(t), states) - wanted).pow(2).mean()


def held_out_loss(view, process, target: AttackTarget, prefix, seed: int) -> float:
    """``prefix_loss`` on every image at timesteps and noise fixed by ``seed`` (``prefix`` None: the plain prompts)."""
    with torch.no_grad():
        return float(prefix_loss(view, process, target, prefix, torch.Generator().manual_seed(seed)))


def optimise_prefix(
    view,
    process,
    target: AttackTarget,
    prefix: torch.Tensor,
    *,
    steps: int,
    lr: float,
    batch: int,
    generator: torch.Generator,
    text_encoder=None,
) -> torch.Tensor:
    """The prefix after ``steps`` Adam updates from ``prefix`` (detached)."""
    encoder = text_encoder or view.table.text_encoder
    prefix = prefix.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([prefix], lr=lr * embedding_scale(encoder))
    for _ in range(steps):
        loss = prefix_loss(view, process, target, prefix, generator, batch=batch, text_encoder=text_encoder)
        (prefix.grad,) = torch.autograd.grad(loss, [prefix])
        opt.step()
    return prefix.detach()
