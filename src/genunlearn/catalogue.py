"""The one table of methods: what `genunlearn methods` lists without importing a method (or
torch), and what the registry (``methods.base.method_class``) imports on demand.

One row per method: ``(family, name, "module:Class", model kinds, request kinds, summary)``. A
method class takes its name, family, model kinds and request kinds from its row (``Method``'s
``__init_subclass__``), so nothing is written twice.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple


class MethodEntry(NamedTuple):
    family: str
    name: str
    target: str  # "module:Class" defining it
    model_kinds: tuple[str, ...]
    accepts: tuple[str, ...]
    summary: str

    def load(self) -> type:
        """The method's class (importing its module)."""
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)


_GEN = ("flow", "diffusion")
_ALL_REQUESTS = ("classes", "samples", "concept", "energy")
_LEARNERS = ("classes", "samples")

CATALOGUE: tuple[MethodEntry, ...] = (
    MethodEntry(
        "generative",
        "advunlearn",
        "genunlearn.methods.advunlearn:AdvUnlearn",
        ("diffusion",),
        ("concept",),
        "AdvUnlearn: ESD on adversarial soft prompts, training the text encoder only (SD layout)",
    ),
    MethodEntry(
        "generative",
        "concept_ablation",
        "genunlearn.methods.fdiv.method:ConceptAblation",
        ("diffusion",),
        ("concept",),
        "Concept Ablation: pull the concept's prediction onto the anchor's (f-DMU's MSE case)",
    ),
    MethodEntry(
        "generative",
        "continualflow",
        "genunlearn.methods.continualflow.method:ContinualFlow",
        ("flow",),
        ("energy", "classes"),
        "ContinualFlow: flow matching on the model's own samples reweighted by an energy",
    ),
    MethodEntry(
        "generative",
        "esd",
        "genunlearn.methods.esd:ESD",
        ("diffusion",),
        ("classes", "concept"),
        "ESD: regress onto negatively guided noise predictions of a frozen copy",
    ),
    MethodEntry(
        "generative",
        "fdiv",
        "genunlearn.methods.fdiv.method:FDiv",
        ("diffusion",),
        ("concept",),
        "f-DMU: concept erasure by f-divergence minimisation towards the anchor",
    ),
    MethodEntry(
        "classifier",
        "finetune",
        "genunlearn.classify.methods:ClassifierFinetune",
        ("classifier",),
        _LEARNERS,
        "fine-tune on the retain set (SalUn's FT baseline)",
    ),
    MethodEntry(
        "generative",
        "finetune",
        "genunlearn.methods.finetune:Finetune",
        _GEN,
        _ALL_REQUESTS,
        "keep training on the retain split with the normal loss (baseline)",
    ),
    MethodEntry(
        "classifier",
        "grad_ascent",
        "genunlearn.classify.methods:ClassifierGradAscent",
        ("classifier",),
        _LEARNERS,
        "gradient ascent on the forget set (baseline)",
    ),
    MethodEntry(
        "i2i",
        "i2i",
        "genunlearn.i2i.methods:I2I",
        ("i2i",),
        _LEARNERS,
        "ours: forget encodings mapped to the frozen encoder's encodings of noise",
    ),
    MethodEntry(
        "i2i",
        "i2i_max_loss",
        "genunlearn.i2i.methods:I2IMaxLoss",
        ("i2i",),
        _LEARNERS,
        "maximise the completion loss on the forget set (baseline)",
    ),
    MethodEntry(
        "i2i",
        "i2i_noisy_label",
        "genunlearn.i2i.methods:I2INoisyLabel",
        ("i2i",),
        _LEARNERS,
        "forget completions trained towards noise images (baseline)",
    ),
    MethodEntry(
        "i2i",
        "i2i_random_encoder",
        "genunlearn.i2i.methods:I2IRandomEncoder",
        ("i2i",),
        _LEARNERS,
        "forget encodings mapped to random vectors of their statistics (baseline)",
    ),
    MethodEntry(
        "i2i",
        "i2i_retain_label",
        "genunlearn.i2i.methods:I2IRetainLabel",
        ("i2i",),
        _LEARNERS,
        "forget completions trained towards the original's retain completions (baseline)",
    ),
    MethodEntry(
        "i2i",
        "i2i_retrain",
        "genunlearn.i2i.methods:I2IRetrain",
        ("i2i",),
        _LEARNERS,
        "retrain from scratch on the retain split (gold standard)",
    ),
    MethodEntry(
        "classifier",
        "l1_sparse",
        "genunlearn.classify.methods:ClassifierL1Sparse",
        ("classifier",),
        _LEARNERS,
        "fine-tune on the retain set with an L1 penalty (baseline)",
    ),
    MethodEntry(
        "classifier",
        "random_label",
        "genunlearn.classify.methods:ClassifierRandomLabel",
        ("classifier",),
        _LEARNERS,
        "train the forget set on random labels (baseline)",
    ),
    MethodEntry(
        "generative",
        "random_label",
        "genunlearn.methods.random_label:RandomLabel",
        ("diffusion",),
        _LEARNERS,
        "forget classes' noise predictions pulled to another class's (baseline)",
    ),
    MethodEntry(
        "generative",
        "rece",
        "genunlearn.methods.uce:RECE",
        ("diffusion",),
        ("concept",),
        "RECE: UCE, then erase in closed form the embeddings that still regenerate the concept (SD layout)",
    ),
    MethodEntry(
        "classifier",
        "retrain",
        "genunlearn.classify.methods:ClassifierRetrain",
        ("classifier",),
        _LEARNERS,
        "retrain from scratch on the retain split (gold standard, cached)",
    ),
    MethodEntry(
        "generative",
        "retrain",
        "genunlearn.methods.retrain:Retrain",
        _GEN,
        _ALL_REQUESTS,
        "retrain from scratch on the retain split (gold standard, cached)",
    ),
    MethodEntry(
        "classifier",
        "salun",
        "genunlearn.classify.methods:ClassifierSalUn",
        ("classifier",),
        _LEARNERS,
        "SalUn: saliency-masked random labelling",
    ),
    MethodEntry(
        "generative",
        "salun",
        "genunlearn.methods.salun:SalUn",
        ("diffusion",),
        _LEARNERS,
        "SalUn: saliency-masked random labelling for conditional diffusion",
    ),
    MethodEntry(
        "generative",
        "sfd",
        "genunlearn.methods.sfd.method:SFD",
        _GEN,
        ("classes",),
        "SFD: distil a one-step generator that has forgotten the classes",
    ),
    MethodEntry(
        "generative",
        "uce",
        "genunlearn.methods.uce:UCE",
        ("diffusion",),
        ("concept",),
        "UCE: closed-form cross-attention K/V edit sending the concept's text to its anchor's (SD layout)",
    ),
)

BY_TARGET = {e.target: e for e in CATALOGUE}
