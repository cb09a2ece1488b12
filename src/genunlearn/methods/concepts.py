"""A concept request as condition rows, for the methods that erase concepts (ESD, f-DMU, Concept Ablation).

Two routes, decided once per request (``as_text``):

* **words**: each concept and the anchor is a word of the model's task vocabulary ("circle",
  "shape", or several: "circle; square"); the rows are the task's attribute rows (every row
  carrying a concept). Class- and
  attribute-conditioned models, and a text-to-image pipeline on a built-in task asked for its words,
  take this route, so their numbers stay what they were.
* **text**: a text-to-image pipeline and any other request (free text, preserved concepts, a
  prompt file, templates, or a pipeline with no task behind it): the request's
  prompts (``forget.erase_prompts``) encoded by the pipeline's own frozen text encoder
  (``model.prompt_cond``); a row per (prompt, anchor prompt) pair and per preserved prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genunlearn.data.dataset import FILLER_WORDS, concept_slot
from genunlearn.errors import GenUnlearnError
from genunlearn.forget.request import ErasePrompts, erase_prompts


def is_text_model(model) -> bool:
    """A text-to-image pipeline: its conditions are prompts encoded by its own text encoder."""
    return hasattr(model, "prompt_cond") and hasattr(model.net, "prompt_cond")


def as_text(model, request) -> bool:
    """Whether a concept request is taken as text (see the module docstring); a request only text can
    carry fails on other models with one line."""
    if request.kind != "concept":
        return False
    if is_text_model(model):
        if request.has_prompts or not getattr(model, "has_task", True):
            return True
        try:
            for word in (*request.concepts, request.anchor):
                concept_slot(model.attributes, word)
        except GenUnlearnError:
            return True
        return False
    if request.has_prompts:
        raise GenUnlearnError(
            "--preserve, --prompts and --templates are prompts: they need a text-to-image pipeline (a Stable-Diffusion-layout folder)"
        )
    return False


@dataclass
class TextConditions:
    """Rows of the text route: concept prompts, their anchor prompts (same order), preserved prompts."""

    target: torch.Tensor
    anchor: torch.Tensor
    preserve: torch.Tensor  # (Q, A), Q may be 0
    prompts: ErasePrompts


def text_conditions(model, request) -> TextConditions:
    """Encode the request's prompts (one line for a prompt the tokenizer cannot hold, before any work)."""
    p = erase_prompts(request)
    target, anchor = model.prompt_cond(list(p.target)), model.prompt_cond(list(p.anchor))
    preserve = model.prompt_cond(list(p.preserve)) if p.preserve else target[:0]
    return TextConditions(target, anchor, preserve, p)


def word_slots(attributes, request) -> tuple[int, list[int], int | None]:
    """(attribute, the concepts' value ids, the anchor's value id or None for the generic word) of a
    words-route request: every concept a specific value of one attribute, the anchor a sibling or the generic word."""
    slots = [concept_slot(attributes, c) for c in request.concepts]
    attr, values = slots[0][0], [v for _, v in slots]
    a_attr, a_value = concept_slot(attributes, request.anchor)
    for c, (at, v) in zip(request.concepts, slots):
        if v is None:
            raise GenUnlearnError(f"concept {c!r} is generic; name a specific value to erase (e.g. circle)")
        if at != attr:
            raise GenUnlearnError(
                f"concepts {request.concepts[0]!r} and {c!r} are words of different attributes; erase them in separate runs"
            )
    if a_attr != attr:
        raise GenUnlearnError(
            f"anchor {request.anchor!r} must be a {attributes[attr].name} word (or {attributes[attr].name!r} itself), like the concept {request.concepts[0]!r}"
        )
    if a_value in values:
        raise GenUnlearnError(
            f"anchor {request.anchor!r} is the concept itself; pick another {attributes[attr].name} or the generic word"
        )
    return attr, values, a_value


def _words(text: str) -> set[str]:
    return {w for w in text.lower().replace(",", " ").split() if w not in FILLER_WORDS}


def kept_prompts(model, request, limit: int, seed: int) -> list[str]:
    """The preserved prompts: the request's, else a seeded pick of the task's row prompts naming no concept."""
    from genunlearn.interop.diffusers.text_unet import row_prompts

    preserve = erase_prompts(request).preserve
    if preserve:
        return list(preserve)
    if not getattr(model, "has_task", False):
        raise GenUnlearnError(
            "advunlearn keeps other prompts' outputs: pass --preserve 'a; b' (a pipeline without a task has no prompts of its own)"
        )
    named = set().union(*(_words(c) for c in request.concepts))
    rows = [p for p in row_prompts(model.attributes) if p and not _words(p) & named]
    pick = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:limit]
    return [rows[i] for i in pick.tolist()]
