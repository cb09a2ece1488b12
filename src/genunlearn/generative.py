"""A generative model = a network + a process + what it was trained on; saved as one folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from genunlearn.checkpoint import atomic_dir, header, read_config, write_json
from genunlearn.data.dataset import Attribute
from genunlearn.errors import GenUnlearnError
from genunlearn.models import load_network, save_network
from genunlearn.processes import build_process


@dataclass
class GenerativeModel:
    net: torch.nn.Module
    process: object
    data: dict  # Dataset.meta() of the training data
    info: dict = field(default_factory=dict)  # task, recipe, forget spec, training cost, method

    @property
    def attributes(self) -> tuple[Attribute, ...]:
        return tuple(Attribute(a["name"], tuple(a["values"])) for a in self.data["attributes"])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.data["sample_shape"])

    @property
    def conditional(self) -> bool:
        return bool(tuple(self.net.config.cond_vocab))

    def cond_for_labels(self, labels: torch.Tensor) -> torch.Tensor | None:
        """Class labels → conditioning rows (first attribute set, the others unspecified)."""
        if not self.conditional:
            return None
        cond = torch.tensor([len(a.values) for a in self.attributes]).repeat(labels.shape[0], 1)
        cond[:, 0] = labels
        return cond

    @torch.no_grad()
    def sample(self, n: int, cond=None, *, generator=None, batch_size: int = 1000, **kw) -> torch.Tensor:
        """``n`` samples (conditioned row-wise by ``cond`` if given), in batches."""
        self.net.eval()
        out = []
        for i in range(0, n, batch_size):
            m = min(batch_size, n - i)
            c = None if cond is None else cond[i : i + m]
            out.append(self.process.sample(self.net, m, c, shape=self.sample_shape, generator=generator, **kw))
        return torch.cat(out)

    def save_pretrained(self, path: str | Path) -> None:
        with atomic_dir(path) as tmp:
            net_cfg = save_network(tmp, self.net)
            write_json(tmp / "config.json", header("generative", network=net_cfg, process=self.process.config(), data=self.data, info=self.info))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "GenerativeModel":
        path = Path(path)
        cfg = read_config(path, kind="generative")
        try:
            net_cfg, proc_cfg, data = cfg["network"], cfg["process"], cfg["data"]
        except KeyError as e:
            raise GenUnlearnError(f"{path}/config.json: missing entry {e}") from None
        net = load_network(path, net_cfg)
        return cls(net, build_process(proc_cfg), data, cfg.get("info", {}))
