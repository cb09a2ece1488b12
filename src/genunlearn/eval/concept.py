"""Concept-erasure metrics (f-DMU spec §6): judged samples per prompt against the base model.

* erased-concept rate: share of samples for prompts with the concept word judged to show it;
  anchor rate: share judged to be the anchor value (sibling anchors only);
* attribute preservation: on those prompts, share of the *other* specified attributes judged right
  ("a red circle" still red);
* collateral: per-attribute accuracy on prompts without the concept word, in points vs the base;
  FD and KID in the judge's feature space against an independent draw of the base model on the same
  prompts (floor: base vs base), and FD against prompt-matched real images as a ratio to the base's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genunlearn.data.dataset import concept_slot
from genunlearn.eval import metrics
from genunlearn.eval.evaluate import forget_prompt_mask, prompts_for


@dataclass
class Samples:
    cond: torch.Tensor  # (N, A) prompt rows
    x: torch.Tensor
    pred: torch.Tensor  # (N, A) judged attribute ids


def draw(model, prompts: torch.Tensor, n_per_prompt: int, judge, *, seed: int, steps: int | None = None) -> Samples:
    """``n_per_prompt`` seeded samples per prompt row, judged."""
    cond = prompts.repeat_interleave(n_per_prompt, 0)
    x = model.sample(cond.shape[0], cond, generator=torch.Generator().manual_seed(seed), steps=steps)
    return Samples(cond, x, judge.predict(x))


def erased_rate(s: Samples, attributes, concept: str) -> float:
    attr, value = concept_slot(attributes, concept)
    return float((s.pred[:, attr] == value).float().mean())


def attribute_accuracy(s: Samples, vocab: tuple[int, ...], attrs: list[int]) -> float:
    """Share of (sample, attribute) pairs, over ``attrs`` specified in the prompt, judged right."""
    spec = (s.cond[:, attrs] < torch.tensor(vocab)[attrs]).float()
    ok = (s.pred[:, attrs] == s.cond[:, attrs]).float() * spec
    return float(ok.sum() / spec.sum().clamp_min(1))


def matched_real(real_x: torch.Tensor, real_cond: torch.Tensor, cond: torch.Tensor, vocab, seed: int) -> torch.Tensor:
    """One real image per prompt row whose specified attributes match (seeded, without replacement per prompt)."""
    g = torch.Generator().manual_seed(seed)
    out = torch.empty((cond.shape[0], *real_x.shape[1:]))
    rows, inverse = torch.unique(cond, dim=0, return_inverse=True)
    for r, row in enumerate(rows):
        spec = row < torch.tensor(vocab)
        pool = ((real_cond == row) | ~spec).all(1).nonzero().squeeze(1)
        where = (inverse == r).nonzero().squeeze(1)
        out[where] = real_x[pool[torch.randperm(len(pool), generator=g)[: len(where)]]]
    return out


@dataclass
class ConceptReference:
    """What every erased model is compared with: base samples (two independent draws) and real images."""

    prompts: torch.Tensor
    erased: torch.Tensor  # (P,) bool, prompts with the concept word
    base: Samples  # all prompts, seed s
    base_kept_b: Samples  # prompts without the concept, seed s + 1
    real_kept: torch.Tensor  # prompt-matched real images for base_kept_b's rows
    base_metrics: dict
    n_per_prompt: int
    seed: int
    steps: int | None


def kept(s: Samples, mask: torch.Tensor) -> Samples:
    return Samples(s.cond[mask], s.x[mask], s.pred[mask])


def concept_reference(
    base_model, request, judge, *, n_per_prompt: int = 50, seed: int = 0, steps: int | None = None, split: str = "test"
) -> ConceptReference:
    """Base samples on every prompt (two draws) and real images of the kept prompts from the held-out
    ``split`` (``"test"`` to report, ``"val"`` to tune)."""
    from genunlearn.data import load_dataset

    attrs = base_model.attributes
    vocab = tuple(len(a.values) for a in attrs)
    prompts = prompts_for(attrs)
    erased = forget_prompt_mask(prompts, attrs, request)
    base = draw(base_model, prompts, n_per_prompt, judge, seed=seed, steps=steps)
    base_b = draw(base_model, prompts[~erased], n_per_prompt, judge, seed=seed + 1, steps=steps)
    task = base_model.info.get("task") or base_model.data["name"]
    real = load_dataset(task, split)
    real_kept = matched_real(real.x, real.cond(), base_b.cond, vocab, seed)
    ref = ConceptReference(prompts, erased, base, base_b, real_kept, {}, n_per_prompt, seed, steps)
    ref.base_metrics = concept_metrics(base, ref, attrs, request, judge)
    return ref


def concept_metrics(s: Samples, ref: ConceptReference, attributes, request, judge) -> dict:
    """All metrics of one model's samples ``s`` (drawn on ``ref.prompts`` with ``ref``'s seed)."""
    vocab = tuple(len(a.values) for a in attributes)
    attr, _ = concept_slot(attributes, request.concept)
    _, anchor_value = concept_slot(attributes, request.anchor)
    per_sample_erased = ref.erased.repeat_interleave(ref.n_per_prompt)
    er, kp = kept(s, per_sample_erased), kept(s, ~per_sample_erased)
    others = [a for a in range(len(vocab)) if a != attr]
    out = {
        "erased_rate": erased_rate(er, attributes, request.concept),
        "anchor_rate": float((er.pred[:, attr] == anchor_value).float().mean()) if anchor_value is not None else None,
        "attribute_preservation": attribute_accuracy(er, vocab, others),
    }
    for a, at in enumerate(attributes):
        out[f"{at.name}_accuracy_kept"] = attribute_accuracy(kp, vocab, [a])
    for a, at in enumerate(attributes):
        base = ref.base_metrics.get(f"{at.name}_accuracy_kept", out[f"{at.name}_accuracy_kept"])
        out[f"{at.name}_accuracy_delta_points"] = 100 * (out[f"{at.name}_accuracy_kept"] - base)
    other = ref.base_kept_b.x
    out["fd_vs_base"] = metrics.frechet_distance(judge, other, kp.x)
    out["kid_vs_base"], out["kid_vs_base_std"] = metrics.kernel_distance(judge, other, kp.x, seed=ref.seed)
    out["fd_real"] = metrics.frechet_distance(judge, ref.real_kept, kp.x)
    base = ref.base_metrics or out
    out["fd_vs_base_floor"] = base["fd_vs_base"]
    out["fd_real_ratio_to_base"] = out["fd_real"] / max(base["fd_real"], 1e-12)
    return out


def evaluate_concept(model, request, ref: ConceptReference, judge) -> dict:
    s = draw(model, ref.prompts, ref.n_per_prompt, judge, seed=ref.seed, steps=ref.steps)
    return concept_metrics(s, ref, model.attributes, request, judge)
