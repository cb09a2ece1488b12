"""UCE and RECE on a Stable-Diffusion-layout pipeline: closed-form concept erasure in the UNet's
cross-attention keys and values (``closed_form``), data-free and training-free.

Prompts enter as the hidden states of their tokens (``edit_embeddings``: which positions, and where
each is sent). Concepts come from the request (``concept``: several separated by ';'), guides from its ``anchor``
(one for all or one per concept; none: the empty prompt), preserved prompts from its ``preserve``
(``--preserve "a; b"``). The text encoder and every other weight stay as they are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Literal


from genunlearn.config import check_bounds
from genunlearn.errors import GenUnlearnError
from genunlearn.forget.request import erase_prompts
from genunlearn.methods import closed_form
from genunlearn.methods.base import Method
from genunlearn.methods.common import copy_net
from genunlearn.methods.edit_embeddings import edit_embeddings, split_prompts


@dataclass
class UCEConfig:
    lam: float = 0.5  # λ: pull towards the original weights
    erase_scale: float = 1.0  # α_e
    preserve_scale: float = 1.0  # α_p (weighted mode)
    tokens: Literal["last", "tail", "all"] = "last"  # which token positions of a prompt enter the edit
    # weighted (UCE's α_p term) | nullspace (SPEED: preserved keys/values exactly kept)
    preserve_mode: Literal["weighted", "nullspace"] = "weighted"
    nullspace_tol: float = 1e-6  # nullspace: eigenvalues ≤ tol × the largest count as outside the preserved span

    def __post_init__(self):
        check_bounds(
            "uce",
            lam=(self.lam, 0, None, "()"),
            erase_scale=(self.erase_scale, 0, None, "()"),
            preserve_scale=(self.preserve_scale, 0, None),
            nullspace_tol=(self.nullspace_tol, 0, 1, "()"),
        )


class UCE(Method):
    Config = UCEConfig
    data_free = True  # prompts are free text for the pipeline's tokenizer, not the task's words
    closed_form = True
    needs_anchor = False  # no anchor: every concept is sent to the empty prompt, UCE's own default guide

    def check(self, model, request) -> None:
        super().check(model, request)
        if not {"tokenizer", "text_encoder"} <= set(getattr(model, "components", {})):
            raise GenUnlearnError(
                f"method {self.name!r} edits the cross-attention of a Stable-Diffusion-layout pipeline (UNet2DConditionModel + CLIP text encoder); this diffusion model has no text encoder"
            )

    def prompts(self, request) -> tuple[list[str], list[str], list[str]]:
        """(erased prompts, their guide prompts, preserved prompts): each concept with its guide (one
        anchor for all, or one per concept; none: the empty prompt), expanded by the request's templates
        and prompt file as ``forget.erase_prompts`` expands them."""
        concepts, guides = list(request.concepts), split_prompts(request.anchor) or [""]
        if len(guides) not in (1, len(concepts)):
            raise GenUnlearnError(
                f"{len(concepts)} concepts and {len(guides)} anchors: give one anchor, or one per concept (separated by ';')"
            )
        each = [replace(request, concept=c, anchor=g or None) for c, g in zip(concepts, guides * len(concepts))]
        pairs = [erase_prompts(r) for r in each]
        erased, guided = [p for e in pairs for p in e.target], [p for e in pairs for p in e.anchor]
        return erased, guided, list(erase_prompts(request).preserve)

    def rounds(self, budget) -> tuple[int, float]:
        """(RECE rounds, RECE's ridge weight): none for one UCE edit, which has no step budget."""
        if budget is not None:
            raise GenUnlearnError("uce is one closed-form edit: --steps does not apply (rece takes it as its rounds)")
        return 0, 0.0

    def unlearn(self, model, request, data, *, budget=None, callbacks=()):
        self.check(model, request)
        t0 = time.perf_counter()
        concepts, guides, preserve = self.prompts(request)
        rounds, reg = self.rounds(budget)
        cfg, components = self.config, model.components
        embeddings = edit_embeddings(
            components["tokenizer"], components["text_encoder"], concepts, guides, preserve, cfg.tokens
        )
        net = copy_net(model.net, trainable=True)
        nullspace_tol = cfg.nullspace_tol if cfg.preserve_mode == "nullspace" else None
        options = {"lam": cfg.lam, "erase_scale": cfg.erase_scale, "preserve_scale": cfg.preserve_scale}
        report = closed_form.edit_unet(
            net.unet, *embeddings, rounds=rounds, reg=reg, nullspace_tol=nullspace_tol, **options
        )
        record = {
            "concepts": concepts,
            "guides": guides,
            "preserve": preserve,
            **report,
            "edited": len(report["edited"]),
        }
        info = self.unlearned_info(model.info, steps=rounds, seconds=time.perf_counter() - t0, **record)
        return model.with_net(net, info=info)


@dataclass
class RECEConfig(UCEConfig):
    rounds: int = 3  # regenerating embeddings found and erased in turn
    reg: float = 0.1  # ridge weight on the regenerating embedding's norm

    def __post_init__(self):
        super().__post_init__()
        check_bounds("rece", rounds=(self.rounds, 1, None), reg=(self.reg, 0, None, "()"))


class RECE(UCE):
    Config = RECEConfig

    def rounds(self, budget) -> tuple[int, float]:
        """``budget`` (``--steps``) overrides the number of rounds."""
        return budget or self.config.rounds, self.config.reg
