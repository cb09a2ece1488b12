"""UCE and RECE on a Stable-Diffusion-layout pipeline: closed-form concept erasure in the UNet's
cross-attention keys and values (``closed_form``), data-free and training-free.

Prompts are encoded as ``StableDiffusionPipeline.encode_prompt`` encodes them (the pipeline's own
tokenizer, padded to its length, and frozen text encoder); the embeddings that enter the edit are
the hidden states at chosen token positions:

* ``tokens=last`` (UCE's current code): the concept prompt's last word token, sent where W₀ sends
  the guide's last word token (the start token for the empty guide);
* ``tokens=all``: every position after the start token, padding included (the UNet attends to all of
  them and each carries the prompt through the causal text encoder), each sent to the guide's
  aligned position: a shared prefix to itself, the concept's own words to the guide's words counted from
  the last (the guide's first when it has fewer; the token before when it adds none), the end token and the
  padding to the guide's, shifted by the length difference.

Concepts come from the request (``concept``: several separated by ';'), guides from its ``anchor``
(one for all or one per concept; none: the empty prompt), preserved prompts from its ``preserve``
(``--preserve "a; b"``). The text encoder and every other weight stay as they are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import torch

from genunlearn.config import check_bounds
from genunlearn.errors import GenUnlearnError
from genunlearn.methods import closed_form
from genunlearn.methods.base import Method
from genunlearn.methods.common import copy_net


@dataclass
class UCEConfig:
    lam: float = 0.5  # λ: pull towards the original weights
    erase_scale: float = 1.0  # α_e
    preserve_scale: float = 1.0  # α_p (weighted mode)
    tokens: Literal["last", "all"] = "last"  # which token positions of a prompt enter the edit
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


def split_prompts(text: str | None) -> list[str]:
    """'a; b' → ['a', 'b'] (empty pieces dropped)."""
    return [p.strip() for p in (text or "").split(";") if p.strip()]


def encode(tokenizer, text_encoder, prompts: list[str]) -> tuple[torch.Tensor, list[list[int]]]:
    """Hidden states ``(n, L, d)`` of prompts padded to the tokenizer's length L, as the Stable
    Diffusion pipeline encodes them, and each prompt's unpadded token ids. A prompt longer than L or
    holding a word the tokenizer does not know fails with one line."""
    from genunlearn.interop.diffusers.folders import quiet
    from genunlearn.models.soft_prompt import tokenize

    length = tokenizer.model_max_length
    with quiet():  # transformers warns of every prompt longer than the tokenizer's length; refused below
        ids = [tokenizer(p).input_ids for p in prompts]
    for p, i in zip(prompts, ids):
        if len(i) > length:
            raise GenUnlearnError(f"prompt {p!r} is {len(i)} tokens; the pipeline's tokenizer holds at most {length}")
        if tokenizer.unk_token_id in i[1:-1]:
            raise GenUnlearnError(f"prompt {p!r} holds a word the pipeline's tokenizer does not know")
    with torch.no_grad():
        hidden = text_encoder(tokenize(tokenizer, prompts).to(text_encoder.device)).last_hidden_state
    return hidden.float().cpu(), ids


def _common(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token lists."""
    return next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def aligned_positions(concept: list[int], guide: list[int], length: int, tokens: str) -> tuple[list[int], list[int]]:
    """(concept positions, the guide position each is sent to) for two unpadded token lists; see
    the module docstring."""
    if tokens == "last":
        return [len(concept) - 2], [max(len(guide) - 2, 0)]
    words_c, words_g = concept[:-1], guide[:-1]  # the start token and the words
    prefix = _common(words_c, words_g)  # ≥ 1: both start with the start token
    suffix = _common(words_c[prefix:][::-1], words_g[prefix:][::-1])
    own_c, own_g = len(words_c) - prefix - suffix, len(words_g) - prefix - suffix

    def target(i: int) -> int:
        if i < prefix:
            return i
        if i < prefix + own_c:  # the concept's own words, right-aligned with the guide's
            return prefix + own_g - 1 - min(prefix + own_c - 1 - i, own_g - 1) if own_g else prefix - 1
        return min(i + len(guide) - len(concept), length - 1)

    src = list(range(1, length))
    return src, [target(i) for i in src]


def edit_embeddings(
    tokenizer, text_encoder, concepts: list[str], guides: list[str], preserve: list[str], tokens: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(erase, guide, preserve) embedding rows for ``closed_form.uce_factors``."""
    for c, g in zip(concepts, guides):
        if c == g:
            raise GenUnlearnError(f"concept {c!r} is its own guide; name another anchor")
    hidden, ids = encode(tokenizer, text_encoder, concepts + guides + preserve)
    n, length = len(concepts), hidden.shape[1]
    erase, guide = [], []
    for i in range(n):
        src, dst = aligned_positions(ids[i], ids[n + i], length, tokens)
        erase.append(hidden[i, src])
        guide.append(hidden[n + i, dst])
    kept = [
        hidden[2 * n + j, aligned_positions(ids[2 * n + j], ids[2 * n + j], length, tokens)[0]]
        for j in range(len(preserve))
    ]
    return torch.cat(erase), torch.cat(guide), torch.cat(kept) if kept else hidden.new_zeros(0, hidden.shape[2])


def uce_edit(unet, erase, guide, preserve, cfg: UCEConfig, *, rounds: int = 0, reg: float = 0.0) -> dict:
    """Edit ``unet``'s cross-attention keys and values in place (UCE; RECE with ``rounds``);
    returns what the edit did."""
    G = closed_form.gram(p.weight for p in closed_form.kv_projections(unet).values())
    options = {
        "lam": cfg.lam,
        "erase_scale": cfg.erase_scale,
        "preserve_scale": cfg.preserve_scale,
        "nullspace_tol": cfg.nullspace_tol if cfg.preserve_mode == "nullspace" else None,
    }
    (U, Vt), erased = closed_form.rece_factors(erase, guide, preserve, G, rounds=rounds, reg=reg, **options)
    E, Gd, P = (x.to(torch.float64) for x in (erase, guide, preserve))
    moved = lambda X: (X @ Vt.T) @ U.T
    return {
        "edited": closed_form.apply_edit(unet, U, Vt),
        "erase_vectors": len(erased),
        "preserve_vectors": len(P),
        "erase_residual": round(
            closed_form.relative_error(E + moved(E) - Gd, E - Gd, G), 6
        ),  # 0: the concepts' keys/values are the guides'; 1: unmoved
        "preserve_drift": round(closed_form.relative_error(moved(P), P, G), 6) if len(P) else None,
    }


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
        """(concepts, their guides, preserved prompts) from the request and the options."""
        concepts, guides = list(request.concepts), split_prompts(request.anchor) or [""]
        if len(guides) == 1:
            guides = guides * len(concepts)
        if len(guides) != len(concepts):
            raise GenUnlearnError(
                f"{len(concepts)} concepts and {len(guides)} anchors: give one anchor, or one per concept (separated by ';')"
            )
        return concepts, guides, list(request.preserved)

    def rounds(self, budget) -> tuple[int, float]:
        """(RECE rounds, RECE's ridge weight): none for one UCE edit, which has no step budget."""
        if budget is not None:
            raise GenUnlearnError(
                "uce is one closed-form edit: --steps does not apply (rece takes --steps as its rounds)"
            )
        return 0, 0.0

    def unlearn(self, model, request, data, *, budget=None, callbacks=()):
        self.check(model, request)
        t0 = time.perf_counter()
        concepts, guides, preserve = self.prompts(request)
        rounds, reg = self.rounds(budget)
        embeddings = edit_embeddings(
            model.components["tokenizer"],
            model.components["text_encoder"],
            concepts,
            guides,
            preserve,
            self.config.tokens,
        )
        net = copy_net(model.net, trainable=True)
        report = uce_edit(net.unet, *embeddings, self.config, rounds=rounds, reg=reg)
        info = self.unlearned_info(
            model.info,
            steps=rounds,
            seconds=time.perf_counter() - t0,
            concepts=concepts,
            guides=guides,
            preserve=preserve,
            **{k: v for k, v in report.items() if k != "edited"},
            edited=len(report["edited"]),
        )
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
