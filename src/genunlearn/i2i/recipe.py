"""How the library trains an I2I model: the original (all data) and retrain (retain split only).

Both run the same recipe through the shared training loop: per step a batch of training images,
one mask per image from the training mix (centre / border / random patches), loss = MSE over the
hidden pixels (MAE's objective). Results are cached by config hash under ``cache.cache_root()``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch

from genunlearn.device import place
from genunlearn.errors import GenUnlearnError
from genunlearn.forget.request import ForgetRequest


@dataclass(frozen=True)
class I2IRecipe:
    network: dict = field(
        default_factory=lambda: {"patch": 2, "enc_dim": 64, "enc_depth": 4, "dec_dim": 64, "dec_depth": 2, "heads": 4}
    )
    train: dict = field(
        default_factory=lambda: {
            "steps": 2000,
            "lr": 1e-3,
            "optimizer": "adamw",
            "betas": (0.9, 0.95),
            "weight_decay": 0.05,
            "grad_clip": 1.0,
            "lr_schedule": "cosine",
            "warmup": 100,
            "ema_decay": None,
            "log_every": 100,
        }
    )
    batch_size: int = 128


@dataclass
class I2IJob:
    """Everything that determines a trained I2I model (and its cache key)."""

    task: str = "digits"
    forget: ForgetRequest | None = None
    steps: int | None = None
    seed: int = 0
    recipe: I2IRecipe = field(default_factory=I2IRecipe)
    split: str = "train"  # "train", or "fit" (train minus val) for a model a tuning experiment trains

    def resolved(self) -> I2IRecipe:
        train = {**self.recipe.train, **({"steps": self.steps} if self.steps else {}), "seed": self.seed}
        return replace(self.recipe, train=train)

    def key(self) -> str:
        from genunlearn.io.cache import config_hash
        from genunlearn.data.fingerprint import task_fingerprint

        split = {"split": self.split} if self.split != "train" else {}  # keys of "train" models unchanged
        return config_hash(
            {
                "model": "i2i",
                "task": self.task,
                "data": task_fingerprint(self.task),
                "forget": self.forget.spec() if self.forget else None,
                "recipe": asdict(self.resolved()),
                **split,
            }
        )


def train_i2i(job: I2IJob, *, out_dir=None, resume: bool = False, progress: bool = True):
    """Train an I2I model by its recipe on the task's training data (the retain split if ``job.forget``)."""
    from genunlearn.data import fit_split, load_dataset
    from genunlearn.i2i.masks import training_mask
    from genunlearn.i2i.model import I2IModel, masked_mse
    from genunlearn.models.i2i import I2INet
    from genunlearn.training import train_from_scratch

    if job.split not in ("train", "fit"):
        raise GenUnlearnError(f"an I2I model trains on the 'train' split or its 'fit' part, not {job.split!r}")
    data = load_dataset(job.task) if job.split == "train" else fit_split(job.task)
    if data.kind != "images":
        raise GenUnlearnError(f"{job.task}: I2I models complete images; this task holds 2D points")
    meta = data.meta()
    if job.forget is not None:
        _, data = data.split(job.forget)
    recipe = job.resolved()
    c, h, w = data.sample_shape
    if h != w:
        raise GenUnlearnError(f"{job.task}: I2I models need square images, got {h}×{w}")
    torch.manual_seed(job.seed)
    net = I2INet(size=h, channels=c, **recipe.network)
    x, batch = data.x, min(recipe.batch_size, len(data))

    def step_loss(model, g):
        xb = x[torch.randint(len(x), (batch,), generator=g)]
        xb, visible = place(model, xb, training_mask(batch, net.grid, g))
        return masked_mse(model(xb, visible), xb, net.hidden_pixels(visible)).mean()

    role = "retrain" if job.forget else "original"
    trained = train_from_scratch(
        net, step_loss, recipe.train, f"{role} {job.task}/i2i", out_dir=out_dir, resume=resume, progress=progress
    )
    info = {
        "task": job.task,
        "model": "i2i",
        "role": role,
        "forget": job.forget.spec() if job.forget else None,
        "seed": job.seed,
        "split": job.split,
        **trained,
        "recipe": asdict(recipe),
        "key": job.key(),
        "base_key": replace(job, forget=None).key(),
    }
    return I2IModel(net, meta, info)


def train_cached(job: I2IJob, *, progress: bool = True, use_cache: bool = True):
    """Load the model for ``job`` from the cache, or train and cache it (resumable)."""
    from genunlearn.i2i.model import I2IModel
    from genunlearn.io.cache import cached

    from genunlearn.data.fingerprint import data_identity

    return cached(
        job.key(),
        lambda work: train_i2i(job, out_dir=work, resume=True, progress=progress),
        I2IModel.from_pretrained,
        use_cache=use_cache,
        data=data_identity(job.task),
    )
