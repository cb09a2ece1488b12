"""Model families (generative, classifier, I2I) behind one protocol (``base.Family``), and the one
way to open a saved model folder (``open_model``).

``FAMILIES`` is the one table: each family's class (imported on demand, so ``--help`` stays
torch-free) and the ``train --model`` kinds it trains.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import NamedTuple

from genunlearn.errors import GenUnlearnError


class FamilyEntry(NamedTuple):
    target: str  # "module:Class" of the Family
    kinds: tuple[str, ...]  # the ``train --model`` values it trains


FAMILIES = {
    "generative": FamilyEntry("genunlearn.families.generative:GenerativeFamily", ("flow", "diffusion", "sd")),
    "classifier": FamilyEntry("genunlearn.families.classifier:ClassifierFamily", ("classifier",)),
    "i2i": FamilyEntry("genunlearn.families.i2i:I2IFamily", ("i2i",)),
}
KINDS = {kind: name for name, entry in FAMILIES.items() for kind in entry.kinds}  # ``train --model`` value → family


def get_family(name: str):
    if name not in FAMILIES:
        raise GenUnlearnError(f"unknown model family {name!r}; expected one of {', '.join(FAMILIES)}")
    module, cls = FAMILIES[name].target.split(":")
    return getattr(importlib.import_module(module), cls)()


def family_for_kind(kind: str):
    if kind not in KINDS:
        raise GenUnlearnError(f"unknown model family {kind!r}; expected one of {', '.join(KINDS)}")
    return get_family(KINDS[kind])


def folder_family(path) -> str:
    """The family a saved folder says it holds (reads JSON only). diffusers pipeline and model
    folders are generative models (``interop.diffusers.folders``)."""
    from genunlearn.io.weights import read_config
    from genunlearn.interop.diffusers.folders import is_diffusers_folder

    if Path(path).is_dir() and is_diffusers_folder(path):
        return "generative"
    family = read_config(path).get("kind")
    if family not in FAMILIES:
        raise GenUnlearnError(f"{path}: holds a {family!r} file, not a model (expected one of {', '.join(FAMILIES)})")
    return family


def open_model(path, **options):
    """(family, model) for a saved model folder: the folder says its family. ``options`` (``task``,
    ``scheduler``) describe a foreign (diffusers) model."""
    family = get_family(folder_family(path))
    return family, family.load(path, **{k: v for k, v in options.items() if v is not None})
