"""ESD (Erased Stable Diffusion, Gandikota et al. 2023) for class- or prompt-conditioned diffusion.

Per step: conditions c that carry the concept (``esd_conditions``: class rows, prompts with the word,
or a pipeline's free-text prompts), x_t from the frozen model's DDIM sampler stopped at a random step,
and ε_θ(x_t, c) regressed onto e* = ε*(x_t, g) − η [ε*(x_t, c) − ε*(x_t, g)], g = ∅ (ESD), the
request's anchor (``guide="anchor"``) or a random other class (``guide="others"``). Preserved prompts
are mixed into the batches with their own frozen prediction as the target. A model without a null
class samples unguided and guides towards other classes, said in one line and recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from genunlearn.config import check_bounds
from genunlearn.errors import GenUnlearnError
from genunlearn.methods.common import (
    ParamGroup,
    check_conditional,
    copy_net,
    partly_sampled,
    select_params,
    without_null,
)
from genunlearn.methods.concepts import as_text, text_conditions
from genunlearn.methods.esd_conditions import esd_conditions
from genunlearn.methods.lifecycle import Plan, TrainedMethod
from genunlearn.processes.conditioning import unwrap
from genunlearn.training.loop import Objective


@dataclass
class ESDConfig:
    steps: int = 200
    lr: float = 1e-4
    batch_size: int = 16
    eta: float = 1.0  # negative-guidance strength
    sample_steps: int = 50  # DDIM steps of the sampler that produces x_t
    sample_guidance: float = 3.0
    sample_with: Literal["frozen", "trained"] = "frozen"  # frozen (ESD 2025) or trained (original ESD code)
    # all (every weight) | conditioning (ESD-x: the conditioning path, as fdiv's) | non_conditioning (ESD-u)
    params: ParamGroup = "all"
    # null (ESD: away from the concept, towards ∅) | anchor (towards the request's anchor) | others (towards a random other class)
    guide: Literal["null", "anchor", "others"] = "null"
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self):
        check_bounds(
            "esd",
            steps=(self.steps, 1, None),
            lr=(self.lr, 0, None, "()"),
            batch_size=(self.batch_size, 1, None),
            sample_steps=(self.sample_steps, 1, None),
        )


class ESD(TrainedMethod):
    Config = ESDConfig

    def reads_data(self, model, request) -> bool:
        """No training image is read on a text-to-image pipeline's prompts (``methods.concepts``)."""
        return not as_text(model, request)

    def check(self, model, request) -> None:
        """Also a text request's prompts (the file's concepts, the tokenizer's length), before any work."""
        super().check(model, request)
        check_conditional(self, model)
        if as_text(model, request):
            if self.config.guide == "others":
                raise GenUnlearnError(
                    "guide=others guides towards other classes: it needs class ids or words of the model's vocabulary, not prompts"
                )
            text_conditions(model, request)

    def plan(self, model, request, data, net, steps):
        cfg, process = self.config, model.process
        unguided = {
            "sample_guidance": (cfg.sample_guidance, 1.0),
            "guide": (cfg.guide, "others" if cfg.guide == "null" else cfg.guide),
        }
        used = without_null(self, model, unguided)  # no null class: sample unguided, guide towards others
        rows = esd_conditions(model, data, request, used["guide"])
        conds, n_erase = torch.cat([rows.erase, rows.keep]), len(rows.erase)
        frozen = copy_net(model.net, trainable=False).eval()
        params = select_params(net, cfg.params)

        def x_t(m, c, g):  # the trained sampler as its plain module: ranks sample different lengths
            sampler = frozen if cfg.sample_with == "frozen" else unwrap(m)
            return partly_sampled(model, sampler, c, cfg.sample_steps, used["sample_guidance"], g)

        @torch.no_grad()
        def target(xt, t, c, i, g):
            """ESD's target (Gandikota et al. 2023, eq. 2): ε_∅ − η (ε_c − ε_∅), the frozen model's
            prediction guided away from the concept; with a guide a (anchor or another class),
            ε_a − η (ε_c − ε_a); a kept row's target is its own prediction ε_c."""
            if rows.guide is None and rows.others is None:
                out = process.predict_eps(frozen, xt, t, c, guidance=-cfg.eta)
                keep = i >= n_erase
                if keep.any():
                    out[keep] = process.predict_eps(frozen, xt[keep], t[keep], c[keep])
                return out
            a = rows.guides(i, c, g)  # a kept row is its own guide, so its target is ε_c
            e_c, e_a = process.predict_eps(frozen, torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([c, a])).chunk(2)
            return e_a - cfg.eta * (e_c - e_a)

        def loss(m, g):
            """‖ε_θ(x_t, c, t) − target‖², over erased and kept rows mixed in each batch."""
            i = torch.randint(len(conds), (cfg.batch_size,), generator=g)
            c = conds[i]
            xt, t = x_t(m, c, g)
            return (process.predict_eps(m, xt, t, c) - target(xt, t, c, i, g)).pow(2).mean()

        return Plan(
            Objective("model", net, loss, self.adam(), params=params), record={"conditions": rows.record, **used}
        )
