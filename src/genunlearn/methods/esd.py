"""ESD (Erased Stable Diffusion, Gandikota et al. 2023) for class- or prompt-conditioned diffusion.

Frozen copy θ*, trainable θ. Per step: pick conditions c that carry the concept, run θ*'s DDIM
sampler (guidance s) from noise to a random step t without gradients (``Diffusion.sample_until``), and regress
ε_θ(x_t, t, c) onto the negatively guided e* = ε*(x_t, t, ∅) − η [ε*(x_t, t, c) − ε*(x_t, t, ∅)]
(zero_grad → backward → clip → step). Conditions come from the data's condition rows, so the same
code serves class labels (digits) and multi-attribute prompts (shapes: every prompt with the word);
on a text-to-image pipeline a concept request may be free text (``methods.concepts``): its prompts,
several concepts mixed in each batch. ``guide="anchor"`` replaces ∅ by the request's anchor
(e* = ε*(x_t, a) − η [ε*(x_t, c) − ε*(x_t, a)], the guided variant of the ESD code), so the concept
becomes the anchor rather than nothing; ``guide="others"`` replaces ∅ by a random other class (or
other value of the concept's attribute) per row and step, the other classes' mean prediction in
expectation (the loss is quadratic in the target). Preserved prompts (``--preserve``) are mixed into
the batches with their own frozen prediction as the target, so their outputs stay where they were.

A model without a null class (a diffusers UNet with exactly one embedding per class) has no ∅ to
sample or guide with: the sampler then runs unguided and ``guide="null"`` becomes ``"others"``,
said in one line and recorded in ``info["unlearn"]`` (``sample_guidance``, ``guide``).
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
from genunlearn.methods.concepts import as_text, text_conditions, word_slots
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


def forget_conditions(data, request) -> torch.Tensor:
    """Distinct condition rows that carry what is forgotten: every row of the forget items, plus the
    row naming only the class/concept (other attributes unspecified)."""
    forget, _ = data.split(request)
    if request.kind == "classes":
        words = [data.class_names[data.class_id(c)] for c in request.classes]
    elif request.kind == "concept":
        words = list(request.concepts)
    else:
        raise GenUnlearnError(f"esd needs a 'classes' or 'concept' request, not {request.kind!r}")
    alone = torch.stack([data.prompt_to_cond(w) for w in words])
    return torch.unique(torch.cat([forget.cond(), alone]), dim=0)


@dataclass
class ESDConditions:
    """Rows to erase (``erase``), each one's guide row (∅, its anchor or another class), and rows to keep."""

    erase: torch.Tensor
    guide: torch.Tensor | None  # None: the null condition (classic ESD) or, with ``others``, a random other class
    keep: torch.Tensor
    record: list  # what info["unlearn"]["conditions"] records: rows, or the prompts
    others: tuple[int, torch.Tensor] | None = None  # guide=others: (attribute, the values a guide row draws from)

    def guides(self, i: torch.Tensor, c: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """The guide row of each batch row ``c`` (indices ``i`` into erase + keep rows): its anchor or
        a random other class; a kept row is its own guide."""
        if self.others is None:
            a = self.guide[i.clamp_max(len(self.erase) - 1)]
        else:
            attr, values = self.others
            a = c.clone()
            a[:, attr] = values[torch.randint(len(values), (len(c),), generator=g)]
        return torch.where((i < len(self.erase))[:, None], a, c)


def other_values(model, data, request) -> tuple[int, torch.Tensor]:
    """(attribute, its values that are not forgotten): what ``guide="others"`` guides towards."""
    if request.kind == "classes":
        attr, forgotten = 0, [data.class_id(c) for c in request.classes]
    else:
        attr, forgotten, _ = word_slots(model.attributes, request)
    others = [v for v in range(len(model.attributes[attr].values)) if v not in forgotten]
    if not others:
        raise GenUnlearnError(
            f"guide=others: every {model.attributes[attr].name} is forgotten, so there is no other to guide towards"
        )
    return attr, torch.tensor(others)


def esd_conditions(model, data, request, guide: str) -> ESDConditions:
    """The words route: the data's rows (anchor rows: the concept's value replaced by the anchor's);
    the text route: the request's prompts and anchor prompts, encoded by the model's text encoder."""
    if guide == "anchor" and request.kind != "concept":
        raise GenUnlearnError("guide=anchor needs a concept request with an anchor (--concept ... --anchor ...)")
    if as_text(model, request):
        c = text_conditions(model, request)
        return ESDConditions(
            c.target,
            c.anchor if guide == "anchor" else None,
            c.preserve,
            {"erase": list(c.prompts.target), "anchor": list(c.prompts.anchor), "preserve": list(c.prompts.preserve)},
        )
    if data is None:
        raise GenUnlearnError("esd on class ids needs the model's data: pass --task")
    conds = forget_conditions(data, request)
    anchors = None
    if guide == "anchor":
        attr, _, a_value = word_slots(model.attributes, request)
        anchors = conds.clone()
        anchors[:, attr] = len(model.attributes[attr].values) if a_value is None else a_value
    others = other_values(model, data, request) if guide == "others" else None
    return ESDConditions(conds, anchors, conds[:0], conds.tolist(), others)


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
        used = without_null(
            self,
            model,
            {
                "sample_guidance": (cfg.sample_guidance, 1.0),
                "guide": (cfg.guide, "others" if cfg.guide == "null" else cfg.guide),
            },
        )
        rows = esd_conditions(model, data, request, used["guide"])
        conds, n_erase = torch.cat([rows.erase, rows.keep]), len(rows.erase)
        frozen = copy_net(model.net, trainable=False).eval()
        params = select_params(net, cfg.params)

        def x_t(m, c, g):
            sampler = (
                frozen if cfg.sample_with == "frozen" else unwrap(m)
            )  # plain module: ranks sample different lengths
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
