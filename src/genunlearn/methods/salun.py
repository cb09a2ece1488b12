"""SalUn for class-conditional diffusion (Fan et al., ICLR 2024): saliency-masked random labelling.

1. Mask: gradient of the *guided* forget loss ‖ε − ε̂(x_t | c_f)‖², ε̂ = (1+w) ε_c − w ε_∅ (w = 2),
   at the original weights (eval mode), one shuffled pass over D_f, each batch's gradient clipped to
   norm 1 and summed; one global top-``mask_ratio`` ranking (``methods/saliency.py``).
2. Unlearn: L = ‖ε_θ(x_t | c_f) − sg ε_θ(x_t | c′)‖² (same x_t, t, ε; c′ = the next retained class)
   + β · the ordinary retain loss (with condition dropout). Adam, clip-then-mask, EMA off.
   Per-sample losses are per-element means, so β = 3 matches the reference's β = 1e-3 on a summed
   loss. ``mask_ratio = 1`` is plain random labelling (registered as ``random_label``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genunlearn.config import check_bounds
from genunlearn.errors import GenUnlearnError
from genunlearn.methods.common import check_conditional, without_null
from genunlearn.methods.lifecycle import Plan, TrainedMethod
from genunlearn.processes.conditioning import drop_condition
from genunlearn.training.loop import Objective


@dataclass
class SalUnConfig:
    steps: int = 300
    lr: float = 2e-4
    batch_size: int = 64  # forget and retain batches each
    beta: float = 3.0  # retain weight on a per-element-mean loss (reference β=1e-3 on a pixel sum)
    mask_ratio: float = 0.5  # fraction of weights updated; 1.0 = no mask
    mask_guidance: float = 2.0  # w of the guided mask loss, (1 + w) form (scale s = 1 + w)
    mask_batch_size: int = 64
    mask_clip: float = 1.0  # per-batch gradient-norm clip while summing mask gradients
    grad_clip: float = 1.0
    forget_cond_dropout: bool = False  # reference: condition dropout on the forget branch too
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.mask_ratio <= 1:
            raise GenUnlearnError(f"mask_ratio must be in (0, 1], got {self.mask_ratio}")
        check_bounds(
            "salun",
            beta=(self.beta, 0, None),
            steps=(self.steps, 1, None),
            lr=(self.lr, 0, None, "()"),
            batch_size=(self.batch_size, 1, None),
        )


def relabel_targets(cond: torch.Tensor, forgotten: set[int], num_classes: int) -> torch.Tensor:
    """c′: each row's class replaced by the next class (cyclically) that is not being forgotten."""
    if len(forgotten) >= num_classes:
        raise GenUnlearnError("cannot forget every class: no class is left to relabel to")
    out = cond.clone()
    for i, c in enumerate(cond[:, 0].tolist()):
        k = (c + 1) % num_classes
        while k in forgotten:
            k = (k + 1) % num_classes
        out[i, 0] = k
    return out


class SalUn(TrainedMethod):
    Config = SalUnConfig

    def check(self, model, request) -> None:
        super().check(model, request)
        check_conditional(self, model)

    def plan(self, model, request, data, net, steps):
        from genunlearn.methods.saliency import diffusion_saliency, mask_density

        cfg, process = self.config, model.process
        forget, retain = data.split(request)
        forgotten = {data.class_id(c) for c in request.classes} if request.kind == "classes" else set()
        f_x, f_c = forget.x, forget.cond()
        f_target = relabel_targets(f_c, forgotten, data.num_classes)
        r_x, r_c = retain.x, retain.cond()
        g = torch.Generator().manual_seed(cfg.seed)
        guidance = (
            without_null(self, model, {"mask_guidance": (cfg.mask_guidance, 0.0)})["mask_guidance"]
            if cfg.mask_ratio < 1
            else cfg.mask_guidance
        )
        mask = diffusion_saliency(net, process, forget, cfg, g, guidance=guidance) if cfg.mask_ratio < 1 else None
        p_null = process.cond_dropout if cfg.forget_cond_dropout else 0.0

        def loss(m, gen):
            """Eq. (8): ‖ε_θ(x_t | c_f) − sg ε_θ(x_t | c′)‖² on forget images (c′ a retained class)
            + β · the model's own loss on retained images."""
            ri = torch.randint(len(r_x), (cfg.batch_size,), generator=gen)
            fi = torch.randint(len(f_x), (cfg.batch_size,), generator=gen)
            retain_loss = process.loss(m, r_x[ri], r_c[ri], generator=gen, antithetic=True).mean()
            xt, t, _, _ = process.corrupt(f_x[fi], gen, antithetic=True)
            c_f = drop_condition(m, f_c[fi], p_null, 0.0, gen)
            c_new = drop_condition(m, f_target[fi], p_null, 0.0, gen)
            with torch.no_grad():
                relabelled = process.predict(m, xt, t, c_new)
            forget_loss = (process.predict(m, xt, t, c_f) - relabelled).pow(2).mean()
            return forget_loss + cfg.beta * retain_loss, {
                "forget_loss": forget_loss.item(),
                "retain_loss": retain_loss.item(),
                "beta": cfg.beta,
            }

        extra = {"mask_density": mask_density(mask), "mask_guidance": guidance} if mask is not None else {}
        return Plan(
            Objective("model", net, loss, self.adam(), grad_mask=mask),
            record={"retain_loss_reduction": "per-element mean", **extra},
        )
