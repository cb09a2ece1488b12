"""What `genunlearn methods` lists, without importing a single method (or torch).

One row per registered method: ``(family, name, model kinds, request kinds, summary)``.
``tests/test_cli.py`` checks it against the real ``methods.REGISTRY``, so it cannot drift.
"""

from __future__ import annotations

from typing import NamedTuple


class MethodEntry(NamedTuple):
    family: str
    name: str
    model_kinds: tuple[str, ...]
    accepts: tuple[str, ...]
    summary: str


_GEN = ("flow", "diffusion")
_ALL_REQUESTS = ("classes", "samples", "concept", "energy")
_LEARNERS = ("classes", "samples")

CATALOGUE: tuple[MethodEntry, ...] = (
    MethodEntry("generative", "advunlearn", ("diffusion",), ("concept",), "AdvUnlearn: ESD on adversarial soft prompts, training the text encoder only (SD layout)"),
    MethodEntry("generative", "concept_ablation", ("diffusion",), ("concept",), "Concept Ablation: pull the concept's prediction onto the anchor's (f-DMU's MSE case)"),
    MethodEntry("generative", "continualflow", ("flow",), ("energy", "classes"), "ContinualFlow: flow matching on the model's own samples reweighted by an energy"),
    MethodEntry("generative", "esd", ("diffusion",), ("classes", "concept"), "ESD: regress onto negatively guided noise predictions of a frozen copy"),
    MethodEntry("generative", "fdiv", ("diffusion",), ("concept",), "f-DMU: concept erasure by f-divergence minimisation towards the anchor"),
    MethodEntry("classifier", "finetune", ("classifier",), _LEARNERS, "fine-tune on the retain set (SalUn's FT baseline)"),
    MethodEntry("generative", "finetune", _GEN, _ALL_REQUESTS, "keep training on the retain split with the normal loss (baseline)"),
    MethodEntry("classifier", "grad_ascent", ("classifier",), _LEARNERS, "gradient ascent on the forget set (baseline)"),
    MethodEntry("i2i", "i2i", ("i2i",), _LEARNERS, "ours: forget encodings mapped to the frozen encoder's encodings of noise"),
    MethodEntry("i2i", "i2i_max_loss", ("i2i",), _LEARNERS, "maximise the completion loss on the forget set (baseline)"),
    MethodEntry("i2i", "i2i_noisy_label", ("i2i",), _LEARNERS, "forget completions trained towards noise images (baseline)"),
    MethodEntry("i2i", "i2i_random_encoder", ("i2i",), _LEARNERS, "forget encodings mapped to random vectors of their statistics (baseline)"),
    MethodEntry("i2i", "i2i_retain_label", ("i2i",), _LEARNERS, "forget completions trained towards the original's retain completions (baseline)"),
    MethodEntry("i2i", "i2i_retrain", ("i2i",), _LEARNERS, "retrain from scratch on the retain split (gold standard)"),
    MethodEntry("classifier", "l1_sparse", ("classifier",), _LEARNERS, "fine-tune on the retain set with an L1 penalty (baseline)"),
    MethodEntry("classifier", "random_label", ("classifier",), _LEARNERS, "train the forget set on random labels (baseline)"),
    MethodEntry("generative", "random_label", ("diffusion",), _LEARNERS, "forget classes' noise predictions pulled to another class's (baseline)"),
    MethodEntry("generative", "rece", ("diffusion",), ("concept",), "RECE: UCE, then erase in closed form the embeddings that still regenerate the concept (SD layout)"),
    MethodEntry("classifier", "retrain", ("classifier",), _LEARNERS, "retrain from scratch on the retain split (gold standard, cached)"),
    MethodEntry("generative", "retrain", _GEN, _ALL_REQUESTS, "retrain from scratch on the retain split (gold standard, cached)"),
    MethodEntry("classifier", "salun", ("classifier",), _LEARNERS, "SalUn: saliency-masked random labelling"),
    MethodEntry("generative", "salun", ("diffusion",), _LEARNERS, "SalUn: saliency-masked random labelling for conditional diffusion"),
    MethodEntry("generative", "sfd", _GEN, ("classes",), "SFD: distil a one-step generator that has forgotten the classes"),
    MethodEntry("generative", "uce", ("diffusion",), ("concept",), "UCE: closed-form cross-attention K/V edit sending the concept's text to its anchor's (SD layout)"),
)
