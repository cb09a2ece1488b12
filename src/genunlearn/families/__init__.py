"""Model families (generative, classifier, I2I) behind one protocol (``base.Family``)."""

from __future__ import annotations

from genunlearn.errors import GenUnlearnError

# family name → "module:class"; imported on demand
FAMILIES = {
    "generative": "genunlearn.families.generative:GenerativeFamily",
    "classifier": "genunlearn.families.classifier:ClassifierFamily",
    "i2i": "genunlearn.families.i2i:I2IFamily",
}
# what ``train --model`` accepts → the family that trains it
KINDS = {"flow": "generative", "diffusion": "generative", "sd": "generative", "classifier": "classifier", "i2i": "i2i"}


def get_family(name: str):
    import importlib

    if name not in FAMILIES:
        raise GenUnlearnError(f"unknown model family {name!r}; expected one of {', '.join(FAMILIES)}")
    module, cls = FAMILIES[name].split(":")
    return getattr(importlib.import_module(module), cls)()


def family_for_kind(kind: str):
    if kind not in KINDS:
        raise GenUnlearnError(f"unknown model family {kind!r}; expected one of {', '.join(KINDS)}")
    return get_family(KINDS[kind])


def open_model(path, **options):
    """(family, model) for a saved model folder: the folder says its family. ``options`` (``task``,
    ``scheduler``) describe a foreign (diffusers) model."""
    from genunlearn.model_folder import folder_family

    family = get_family(folder_family(path))
    return family, family.load(path, **{k: v for k, v in options.items() if v is not None})
