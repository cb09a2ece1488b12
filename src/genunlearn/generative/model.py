"""A generative model = a network + a process + what it was trained on; saved as one folder."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from genunlearn.device import current
from genunlearn.io.model_folder import ModelFolder
from genunlearn.processes import build_process


@dataclass
class GenerativeModel(ModelFolder):
    """A trained generative model: its network, the process that turns it into a sampler and a loss,
    the data it models (``data``: ``Dataset.meta()``) and its record (``info``). ``sample`` gives
    images or points; ``save_pretrained``/``from_pretrained`` write and read one folder."""

    net: torch.nn.Module
    process: object
    data: dict  # Dataset.meta() of the training data
    info: dict = field(default_factory=dict)  # task, recipe, forget spec, training cost, method

    family = "generative"

    @property
    def kind(self) -> str:
        return self.info.get("model") or self.process.name

    @property
    def conditional(self) -> bool:
        return bool(tuple(self.net.config.cond_vocab))

    def cond_for_labels(self, labels: torch.Tensor) -> torch.Tensor | None:
        """Class labels → conditioning rows (first attribute set, the others unspecified)."""
        if not self.conditional:
            return None
        cond = torch.tensor([len(a.values) for a in self.attributes], device="cpu").repeat(
            labels.shape[0], 1
        )  # placed by the process
        cond[:, 0] = labels
        return cond

    @torch.no_grad()
    def generate(self, n: int, cond=None, *, generator=None, batch_size: int | None = None, **kw) -> torch.Tensor:
        """``n`` samples in the process's space (``sample_shape``; latents for a latent model),
        conditioned row-wise by ``cond`` if given, in batches (default: the placement's
        ``--batch-size``), on the network's device: what methods train on."""
        placement = current()
        batch_size = batch_size or placement.batch_size
        self.net.eval()
        out = []
        with placement.autocast():
            for i in range(0, n, batch_size):
                m = min(batch_size, n - i)
                c = None if cond is None else cond[i : i + m]
                out.append(
                    self.process.sample(self.net, m, c, shape=self.sample_shape, generator=generator, **kw).float()
                )
        return torch.cat(out)

    def sample(self, n: int, cond=None, *, generator=None, batch_size: int | None = None, **kw) -> torch.Tensor:
        """``n`` samples in the data's space (images or points), on the CPU: what users and judges see."""
        return self.decode(self.generate(n, cond, generator=generator, batch_size=batch_size, **kw)).cpu()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Data (images at any resolution, or points) → the process's space."""
        from genunlearn.data.dataset import fit_images

        return x if x.dim() == 2 else fit_images(x, self.sample_shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The process's space → data (the identity for pixel and 2D models)."""
        return z

    def with_net(self, net, *, process=None, info: dict | None = None) -> "GenerativeModel":
        """This model with another network (and process, info): what a method returns, keeping the
        model's class and format (a diffusers model stays one)."""
        from dataclasses import replace

        return replace(
            self,
            net=net,
            process=self.process if process is None else process,
            info=self.info if info is None else info,
        )

    def extra_config(self) -> dict:
        return {"process": self.process.config()}

    @classmethod
    def from_config(cls, net, cfg: dict):
        from genunlearn.errors import GenUnlearnError

        if "process" not in cfg:
            raise GenUnlearnError("config.json: missing entry 'process'")
        return cls(net, build_process(cfg["process"]), cfg["data"], cfg.get("info", {}))
