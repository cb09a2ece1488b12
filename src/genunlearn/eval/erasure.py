"""Concept erasure on a captioned multi-attribute task, by UnlearnCanvas's protocol (canvas).

The erased concepts are values of the task's attributes (an object, a style, a colour; one or
many). Prompts are captions of fully specified rows (object, style and colour all named), one
caption drawn per sample from the row's training captions, so every phrasing the model learnt is
asked. For each model, judged by the task's judge:

* ``UA ↑`` (unlearning accuracy): samples of an erased concept's prompts judged *not* to show it,
  averaged over the concepts (``UA_by_concept``);
* ``IRA ↑`` (in-domain retain accuracy): samples of prompts with no erased concept, judged right on
  the attributes that had a value erased ("a square" still a square after erasing circles);
* ``CRA ↑`` (cross-domain retain accuracy): on the same samples, the attributes with nothing erased
  judged right (still striped, still red); None when every attribute had a value erased;
* ``generality ↑``: UA on paraphrases of the erased rows, held-out templates of training words
  (``canvas_paraphrases``) that no method and no training step saw;
* ``UA_unnamed ↑``: UA on the erased rows asked with the erased attribute left unnamed ("a striped
  red object" for a striped red circle). The base's value is the most an edit that sends the concept
  to its generic word can reach: the generic prompt draws the concept as often as the base's prior does;
* ``fd_vs_base ↓``: Fréchet distance in the judge's features between the model's and the base's
  samples of the retained prompts (same captions, same noise), beside ``fd_vs_base_floor``, the base
  against itself drawn with other noise.

``split``: ``"val"`` draws captions, rows and noise from seed 1 (tune on it), ``"test"`` from seed 0
(report on it); the rows are a seeded subsample (``rows_per_concept``, ``retained_rows``); ``noise``
draws other sampling noise for the same prompts (repeats of one model).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import torch

from genunlearn.data.dataset import concept_slot
from genunlearn.errors import GenUnlearnError
from genunlearn.eval import metrics

SPLIT_SEEDS = {"val": 1, "test": 0}
ROWS_PER_CONCEPT, RETAINED_ROWS = 24, 96  # the protocol's sample: rows showing each erased concept, rows showing none


@dataclass
class PromptSet:
    rows: torch.Tensor  # (N, A) the attribute row of each sample
    captions: list[str]  # its caption
    concept: torch.Tensor  # (N,) which erased concept it shows (-1: none)


def _pick(rows: list, limit: int, g: torch.Generator) -> list:
    return [rows[i] for i in torch.randperm(len(rows), generator=g)[:limit].tolist()]


def _prompts(rows: list, concept: list[int], pool, split: str, n: int, g: torch.Generator) -> PromptSet:
    from genunlearn.data import draw_captions

    rows = [r for r in rows for _ in range(n)]
    concept = [c for c in concept for _ in range(n)]
    return PromptSet(torch.tensor(rows), draw_captions(pool, rows, split, g), torch.tensor(concept))


def erasure_prompts(
    task: str, attributes, concepts: list[str], split: str, *, rows_per_concept: int, retained_rows: int, n_per_row: int
) -> tuple[list[tuple[int, int]], PromptSet, PromptSet, PromptSet]:
    """(erased (attribute, value) pairs, erased prompts, paraphrases of them, retained prompts)."""
    from genunlearn.data import caption_pool

    pool = caption_pool(task)
    if pool is None:
        raise GenUnlearnError(f"the erasure protocol needs a task with captions (canvas), not {task!r}")
    if split not in SPLIT_SEEDS:
        raise GenUnlearnError(f"unknown split {split!r}: expected val or test")
    erased = []
    for c in concepts:
        attr, value = concept_slot(attributes, c)
        if value is None:
            raise GenUnlearnError(f"concept {c!r} is generic; name a specific value to erase")
        erased.append((attr, value))
    g = torch.Generator().manual_seed(SPLIT_SEEDS[split])
    full = list(product(*(range(len(a.values)) for a in attributes)))
    rows, which = [], []
    for k, (attr, value) in enumerate(erased):
        mine = _pick([r for r in full if r[attr] == value], rows_per_concept, g)
        rows += mine
        which += [k] * len(mine)
    kept = _pick([r for r in full if not any(r[a] == v for a, v in erased)], retained_rows, g)
    if not kept:
        raise GenUnlearnError("every prompt of the task carries an erased concept: nothing is left to retain")
    return (
        erased,
        _prompts(rows, which, pool, "train", n_per_row, g),
        _prompts(rows, which, pool, "paraphrase", n_per_row, g),
        _prompts(kept, [-1] * len(kept), pool, "train", n_per_row, g),
    )


def unnamed_prompts(target: PromptSet, erased, attributes, task: str, split: str) -> PromptSet:
    """``target``'s rows with each erased attribute left unnamed (its index past the values: "a red
    object"), captions drawn with their own generator so the protocol's other prompts stay as they are."""
    from genunlearn.data import caption_pool, draw_captions

    rows = target.rows.clone()
    for k, (attr, _) in enumerate(erased):
        rows[target.concept == k, attr] = len(attributes[attr].values)
    g = torch.Generator().manual_seed(SPLIT_SEEDS[split] + 7)
    return PromptSet(target.rows, draw_captions(caption_pool(task), rows.tolist(), "train", g), target.concept)


def _draw(model, prompts: PromptSet, seed: int) -> torch.Tensor:
    cond = model.prompt_cond(prompts.captions)
    return model.sample(len(cond), cond, generator=torch.Generator().manual_seed(seed))


def _ua(pred: torch.Tensor, p: PromptSet, erased) -> tuple[float, dict]:
    by = {k: float((pred[p.concept == k, a] != v).float().mean()) for k, (a, v) in enumerate(erased)}
    return sum(by.values()) / len(by), by


def _accuracy(pred: torch.Tensor, rows: torch.Tensor, attrs: list[int]) -> float | None:
    return float((pred[:, attrs] == rows[:, attrs]).float().mean()) if attrs else None


class ErasureEvaluator:
    """``model -> metrics`` for erasing ``concepts`` from pipelines of ``base``'s task (module docstring);
    the base's samples are drawn once, here."""

    def __init__(
        self,
        base,
        concepts: list[str],
        judge,
        *,
        split: str = "test",
        noise: int = 0,
        rows_per_concept: int = ROWS_PER_CONCEPT,
        retained_rows: int = RETAINED_ROWS,
        n_per_row: int = 1,
    ):
        task = base.info.get("task") or base.data["name"]
        self.attributes, self.judge, self.seed = base.attributes, judge, SPLIT_SEEDS.get(split, 0) + 1000 * noise
        self.concepts = list(concepts)
        self.erased, self.target, self.paraphrase, self.kept = erasure_prompts(
            task,
            base.attributes,
            self.concepts,
            split,
            rows_per_concept=rows_per_concept,
            retained_rows=retained_rows,
            n_per_row=n_per_row,
        )
        self.unnamed = unnamed_prompts(self.target, self.erased, base.attributes, task, split)
        hit = {a for a, _ in self.erased}
        self.in_domain, self.cross_domain = sorted(hit), [a for a in range(len(base.attributes)) if a not in hit]
        self.base_kept = _draw(base, self.kept, self.seed)
        floor = _draw(base, self.kept, self.seed + 100)
        self.fd_floor = metrics.frechet_distance(judge, floor, self.base_kept)
        self.base = self._measure(base, self.base_kept)

    def __call__(self, model) -> dict:
        return self._measure(model, _draw(model, self.kept, self.seed))

    def _measure(self, model, x_kept: torch.Tensor) -> dict:
        """The metrics of ``model`` whose retained prompts drew ``x_kept``."""
        ua, by = _ua(self.judge.predict(_draw(model, self.target, self.seed)), self.target, self.erased)
        generality, _ = _ua(self.judge.predict(_draw(model, self.paraphrase, self.seed)), self.paraphrase, self.erased)
        unnamed, _ = _ua(self.judge.predict(_draw(model, self.unnamed, self.seed)), self.unnamed, self.erased)
        pred = self.judge.predict(x_kept)
        return {
            "UA": ua,
            "UA_by_concept": {c: by[k] for k, c in enumerate(self.concepts)},
            "IRA": _accuracy(pred, self.kept.rows, self.in_domain),
            "CRA": _accuracy(pred, self.kept.rows, self.cross_domain),
            "generality": generality,
            "UA_unnamed": unnamed,
            "fd_vs_base": metrics.frechet_distance(self.judge, self.base_kept, x_kept),
            "fd_vs_base_floor": self.fd_floor,
        }
