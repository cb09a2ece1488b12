"""A saved model is one folder: ``config.json`` (format, family, network config, data, info) and
``network.safetensors``. Generative, classifier and I2I models share this save/load; the folder
says its family, and ``load_model`` dispatches on it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch

from genunlearn.checkpoint import atomic_dir, header, read_config, write_json
from genunlearn.data.dataset import Attribute
from genunlearn.device import current
from genunlearn.errors import GenUnlearnError

# family name → the class holding its models (imported on demand)
MODEL_CLASSES = {
    "generative": "genunlearn.generative:GenerativeModel",
    "classifier": "genunlearn.model_folder:ClassifierModel",
    "i2i": "genunlearn.i2i.model:I2IModel",
}


class ModelFolder:
    """Mixin for a dataclass with ``net``, ``data`` (``Dataset.meta()``) and ``info`` fields."""

    family: ClassVar[str]
    net: torch.nn.Module
    data: dict
    info: dict

    @property
    def attributes(self) -> tuple[Attribute, ...]:
        return tuple(Attribute(a["name"], tuple(a["values"])) for a in self.data["attributes"])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.data["sample_shape"])

    @property
    def kind(self) -> str:
        """What methods check against their ``model_kinds`` (e.g. flow, diffusion, i2i)."""
        return self.info.get("model") or self.family

    def in_model_space(self, data):
        """``data`` as this model consumes it: images fitted to its resolution and channels (a latent
        model also encodes them)."""
        return data.resized(self.sample_shape)

    def to(self, where):
        """This model with its network on ``where`` (a device), in place; returns the model."""
        self.net.to(where)
        return self

    def extra_config(self) -> dict:
        """Entries besides network/data/info this family stores in ``config.json``."""
        return {}

    @classmethod
    def from_config(cls, net, cfg: dict):
        return cls(net, cfg["data"], cfg.get("info", {}))

    def save_pretrained(self, path: str | Path) -> None:
        """Write the model as one folder (``config.json`` + ``network.safetensors``), atomically."""
        from genunlearn.models import save_network

        with atomic_dir(path) as tmp:
            net_cfg = save_network(tmp, self.net)
            write_json(tmp / "config.json", header(self.family, network=net_cfg, data=self.data, info=self.info, **self.extra_config()))

    @classmethod
    def from_pretrained(cls, path: str | Path):
        """Read a folder written by ``save_pretrained`` (safetensors and JSON only; checked)."""
        from genunlearn.models import load_network

        path = Path(path)
        cfg = read_config(path, kind=cls.family)
        missing = [k for k in ("network", "data") if k not in cfg]
        if missing:
            raise GenUnlearnError(f"{path}/config.json: missing entry {missing[0]!r}")
        return cls.from_config(load_network(path, cfg["network"]), cfg).to(current().device)


@dataclass
class ClassifierModel(ModelFolder):
    """An image classifier (SalUn's classification setting) and the data it classifies."""

    net: torch.nn.Module
    data: dict
    info: dict = field(default_factory=dict)

    family = "classifier"

    @property
    def num_classes(self) -> int:
        return len(self.data["attributes"][0]["values"])


def model_class(family: str):
    if family not in MODEL_CLASSES:
        raise GenUnlearnError(f"unknown model family {family!r}; expected one of {', '.join(MODEL_CLASSES)}")
    module, name = MODEL_CLASSES[family].split(":")
    return getattr(importlib.import_module(module), name)


def folder_family(path: str | Path) -> str:
    """The family a saved folder says it holds (reads JSON only). diffusers pipeline and model
    folders are generative models (``diffusers_io``)."""
    from genunlearn.diffusers_io import is_diffusers_folder

    if Path(path).is_dir() and is_diffusers_folder(path):
        return "generative"
    family = read_config(path).get("kind")
    if family not in MODEL_CLASSES:
        raise GenUnlearnError(f"{path}: holds a {family!r} file, not a model (expected one of {', '.join(MODEL_CLASSES)})")
    return family


def load_model(path: str | Path):
    """Load any saved model folder, dispatching on the family it records."""
    return model_class(folder_family(path)).from_pretrained(path)
