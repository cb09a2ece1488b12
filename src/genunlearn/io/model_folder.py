"""A saved model is one folder: ``config.json`` (format, family, network config, data, info) and
``network.safetensors``. Generative, classifier and I2I models share this save/load; each family's
model class lives with its family (``Family.model_class``), and ``families.open_model`` opens a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch

from genunlearn.io.weights import atomic_dir, header, read_config, write_json
from genunlearn.data.dataset import Attribute
from genunlearn.device import current
from genunlearn.errors import GenUnlearnError


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
            write_json(
                tmp / "config.json",
                header(self.family, network=net_cfg, data=self.data, info=self.info, **self.extra_config()),
            )

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
