"""What f-DMU trains on: (anchor, target) prompt pairs, and anchor images drawn once from the original
model under the anchor prompts (never real data). The pairs are the task's attribute rows, or on a
text-to-image pipeline the request's prompts (``methods.concepts``: any text, several concepts,
preserved prompts paired with themselves so their outputs stay)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from genunlearn.forget.request import ForgetRequest
from genunlearn.methods.concepts import as_text, text_conditions, word_slots
from genunlearn.progress import stage


@dataclass
class PromptPairs:
    """Rows of (anchor condition, target condition); the other attributes are kept ("red" stays red)."""

    anchor: torch.Tensor  # (P, A)
    target: torch.Tensor  # (P, A)


def prompt_pairs(attributes, concept: str, anchor: str) -> PromptPairs:
    """Words route: for each concept ("circle", or several: "circle; square") and every value of the
    other attributes and "unspecified", a target row with the concept and an anchor row with the anchor
    word (a sibling value, or the generic word = unspecified)."""
    attr, values, a_value = word_slots(attributes, ForgetRequest("concept", concept=concept, anchor=anchor))
    vocab = [len(a.values) for a in attributes]
    others = [range(v + 1) if i != attr else [0] for i, v in enumerate(vocab)]
    rows = torch.tensor(list(itertools.product(*others)), dtype=torch.long)
    target, anch = rows.repeat(len(values), 1), rows.repeat(len(values), 1)
    target[:, attr] = torch.tensor(values).repeat_interleave(len(rows))
    anch[:, attr] = vocab[attr] if a_value is None else a_value
    return PromptPairs(anch, target)


def request_pairs(model, request) -> PromptPairs:
    """The pairs of either route (``methods.concepts``); on the text route each (prompt, anchor prompt)
    pair, and each preserved prompt paired with itself (its output is kept where it is)."""
    if not as_text(model, request):
        return prompt_pairs(model.attributes, request.concept, request.anchor)
    c = text_conditions(model, request)
    return PromptPairs(torch.cat([c.anchor, c.preserve]), torch.cat([c.target, c.preserve]))


@dataclass
class AnchorPool:
    """Anchor images from the original model, each with its anchor and target condition rows."""

    x: torch.Tensor
    anchor: torch.Tensor
    target: torch.Tensor


@torch.no_grad()
def make_anchor_pool(
    model, pairs: PromptPairs, n_per_prompt: int, *, steps: int, guidance: float, seed: int
) -> AnchorPool:
    """``n_per_prompt`` samples per anchor prompt (in the model's space: latents for a latent model), drawn by ``model`` (the original) with a seeded generator."""
    anchor = pairs.anchor.repeat_interleave(n_per_prompt, 0)
    target = pairs.target.repeat_interleave(n_per_prompt, 0)
    stage(
        f"sampling {len(anchor)} anchor images ({n_per_prompt} per anchor prompt) from the original model",
        "the targets the erased prompts are pulled towards; drawn once",
    )
    x = model.generate(
        anchor.shape[0], anchor, generator=torch.Generator().manual_seed(seed), steps=steps, guidance=guidance
    )
    return AnchorPool(x, anchor, target)
