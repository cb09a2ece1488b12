"""Concept-erasure metrics (f-DMU spec §6): judged samples per prompt against the base model.

* concept still shown: share of samples for prompts with the concept word judged to show it
  (lower is better; the base scores about 100 %);
  anchor rate: share judged to be the anchor value (sibling anchors only);
* attribute preservation: on those prompts, share of the *other* specified attributes judged right
  ("a red circle" still red);
* collateral: per-attribute accuracy on prompts without the concept word, in points vs the base;
  FD and KID in the judge's feature space against an independent draw of the base model on the same
  prompts (floor: base vs base), and FD against prompt-matched real images as a ratio to the base's.

Any text-to-image pipeline, with or without a task, is judged on the request's prompts by the
user's own judge (``prompt_evaluator``): a genunlearn classifier folder, or a CLIP folder zero-shot
on the concept names; concept still shown (per concept), anchor rate, preserved rate, and the base's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from genunlearn.data.dataset import FILLER_WORDS, concept_slot
from genunlearn.errors import GenUnlearnError
from genunlearn.eval import metrics
from genunlearn.eval.evaluate import forget_prompt_mask, prompts_for
from genunlearn.eval.judge import ImageJudge
from genunlearn.forget.request import erase_prompts


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


def concept_still_shown(s: Samples, attributes, concept: str) -> float:
    """Share of samples ``s`` judged to show ``concept``."""
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
    anchor_value = concept_slot(attributes, request.anchor)[1] if request.anchor else None
    per_sample_erased = ref.erased.repeat_interleave(ref.n_per_prompt)
    er, kp = kept(s, per_sample_erased), kept(s, ~per_sample_erased)
    others = [a for a in range(len(vocab)) if a != attr]
    out = {
        "concept_still_shown": concept_still_shown(er, attributes, request.concept),
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


# --- any pipeline, prompts and the user's own judge ---------------------------------------------
@dataclass
class LabelJudge:
    """Names what an image shows among ``labels``: a genunlearn classifier (its class names) or a CLIP
    model zero-shot on the request's concept names (``load_label_judge``)."""

    labels: tuple[str, ...]
    classify: Callable[[torch.Tensor], torch.Tensor]  # images in [-1, 1] → (N,) label ids
    kind: str

    def label(self, word: str, *, required: bool = True) -> int | None:
        """The label id of a concept (filler words aside: "a circle" is the class "circle")."""
        key = _words(word)
        found = next((i for i, lab in enumerate(self.labels) if _words(lab) == key), None)
        if found is None and required:
            raise GenUnlearnError(
                f"{word!r} is not a class of this {self.kind} judge (classes: {', '.join(self.labels)}); name concepts by its classes"
            )
        return found


def _words(text: str) -> tuple[str, ...]:
    return tuple(w for w in text.lower().replace(",", " ").split() if w not in FILLER_WORDS)


def judge_kind(folder) -> str:
    """``classifier`` (a genunlearn classifier folder) or ``clip`` (a transformers CLIPModel saved with
    its CLIPProcessor); anything else is one line, before any work."""
    from genunlearn.io.weights import read_json

    folder = Path(folder)
    cfg = read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
    if cfg.get("kind") == "classifier":
        return "classifier"
    if cfg.get("model_type") == "clip" and any(
        (folder / f).is_file() for f in ("preprocessor_config.json", "processor_config.json")
    ):
        return "clip"
    found = (
        cfg.get("kind")
        or cfg.get("model_type")
        or cfg.get("_class_name")
        or ("no config.json" if not cfg else "an unknown config.json")
    )
    raise GenUnlearnError(
        f"{folder}: not a judge (found {found}); --judge takes a genunlearn classifier folder (genunlearn train --model classifier) or a CLIP folder (CLIPModel and CLIPProcessor saved with save_pretrained)"
    )


def load_label_judge(folder, names: list[str]) -> LabelJudge:
    """The judge in ``folder``; a CLIP judge's labels are ``names`` (the request's concepts, anchor and
    preserved concepts), a classifier's its own class names."""
    if judge_kind(folder) == "classifier":
        from genunlearn.classify.model import ClassifierModel

        clf = ClassifierModel.from_pretrained(folder)
        judge = ImageJudge(clf.net, clf.attributes, {}, tuple(clf.data["sample_shape"]))
        return LabelJudge(clf.attributes[0].values, lambda x: judge.predict(x)[:, 0], "classifier")
    from genunlearn.interop.diffusers.folders import quiet

    with quiet():
        from transformers import CLIPModel, CLIPProcessor

        clip, processor = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
    labels = tuple(dict.fromkeys(names))

    @torch.no_grad()
    def classify(x: torch.Tensor) -> torch.Tensor:
        from genunlearn.io.samples import to_uint8_images

        images = to_uint8_images(x if x.shape[1] == 3 else x.repeat(1, 3, 1, 1))
        inputs = processor(text=list(labels), images=list(images), return_tensors="pt", padding=True)
        return clip(**inputs).logits_per_image.argmax(1)

    return LabelJudge(labels, classify, "CLIP")


def prompt_samples(model, prompts: tuple[str, ...], n_per_prompt: int, judge: LabelJudge, *, seed: int) -> torch.Tensor:
    """Judged labels of ``n_per_prompt`` seeded samples per prompt, ``(P, n_per_prompt)``."""
    cond = model.prompt_cond(list(prompts)).repeat_interleave(n_per_prompt, 0)
    x = model.sample(cond.shape[0], cond, generator=torch.Generator().manual_seed(seed))
    return judge.classify(x).view(len(prompts), n_per_prompt)


def prompt_metrics(model, request, judge: LabelJudge, *, n_per_prompt: int, seed: int, split: str) -> dict:
    """On the request's prompts of ``split``: concept still shown (samples of a concept prompt judged
    as that concept), also per concept; anchor rate; preserved rate (samples of a preserved prompt
    judged as its concept)."""
    p = erase_prompts(request, split)
    concept_ids = torch.tensor([judge.label(c) for c in p.concept])
    pred = prompt_samples(model, p.target, n_per_prompt, judge, seed=seed)
    hit = pred == concept_ids[:, None]
    anchor = judge.label(request.anchor, required=False) if request.anchor else None
    out = {
        "concept_still_shown": float(hit.float().mean()),
        "concept_still_shown_by_concept": {
            c: float(hit[[i for i, k in enumerate(p.concept) if k == c]].float().mean()) for c in request.concepts
        },
        "anchor_rate": float((pred == anchor).float().mean()) if anchor is not None else None,
        "preserved_rate": None,
    }
    if p.preserve:
        kept_ids = torch.tensor([judge.label(c) for c in p.preserve_concept])
        out["preserved_rate"] = float(
            (prompt_samples(model, p.preserve, n_per_prompt, judge, seed=seed + 1) == kept_ids[:, None]).float().mean()
        )
    return out


def prompt_evaluator(
    judge_folder, request, *, reference=None, n_per_prompt: int = 100, seed: int = 0, split: str = "test"
):
    """``model -> metrics`` on the request's prompts with the user's judge (any text-to-image pipeline,
    no task needed); with ``reference`` (the base pipeline) also its rates and the changes in points.
    The judge and every concept name are checked here, before any sampling."""
    if request is None or request.kind != "concept":
        raise GenUnlearnError("judging on prompts needs a concept request: --concept ... --anchor ...")
    judge = load_label_judge(judge_folder, request.names())
    for c in (*request.concepts, *request.preserved):
        judge.label(c)
    kw = {"n_per_prompt": n_per_prompt, "seed": seed, "split": split}
    base = prompt_metrics(reference, request, judge, **kw) if reference is not None else None

    def evaluate(model) -> dict:
        out = {**prompt_metrics(model, request, judge, **kw), "judge": f"{judge.kind}: {judge_folder}"}
        if base is not None:
            for k in ("concept_still_shown", "preserved_rate"):
                out[f"base_{k}"] = base[k]
                out[f"{k}_change_points"] = None if base[k] is None else 100 * (out[k] - base[k])
        return out

    return evaluate
