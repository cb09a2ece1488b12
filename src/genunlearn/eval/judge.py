"""Domain judges: the only networks that say what a generated sample shows.

Image tasks get a classifier trained once on the task's training split (cached; held-out accuracy
recorded and reported): one head per attribute, the network and training of ``JUDGE_NET`` and
``JUDGE_TRAIN`` with a task's changes from ``JUDGES``. 2D tasks are judged analytically from the known geometry. A judge is never
the network a method uses internally (energy proxies, override classifiers train their own).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genunlearn.device import batched, current
from genunlearn.errors import GenUnlearnError

JUDGE_SEED = 12345  # distinct from every proxy's seed


@dataclass
class ImageJudge:
    net: torch.nn.Module
    attributes: tuple
    test_accuracy: dict  # attribute name → held-out accuracy
    input_shape: tuple | None = None  # (C, H, W) it was trained on; other images are fitted to it

    def _fit(self, x: torch.Tensor) -> torch.Tensor:
        """Images of another model's resolution or channels, fitted to the judge's (``fit_images``)."""
        from genunlearn.data.dataset import fit_images

        return x if self.input_shape is None else fit_images(x, tuple(self.input_shape))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """``(N, A)`` predicted attribute ids (on the CPU)."""
        self.net.eval()

        def ids(xb):
            return torch.stack([h.argmax(1) for h in self.net.split_heads(self.net(self._fit(xb.clamp(-1, 1))))], 1)

        return batched(self.net, ids, x, batch_size=batch_size)

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        self.net.eval()
        return batched(self.net, lambda xb: self.net.features(self._fit(xb.clamp(-1, 1))), x, batch_size=batch_size)


@dataclass
class ToyJudge:
    """Component and on-support flag from the distribution's geometry."""

    toy: object

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.toy.assign(x)[0][:, None]

    def on_support(self, x: torch.Tensor) -> torch.Tensor:
        return self.toy.assign(x)[1]


JUDGE_NET = {
    "_class_name": "ConvClassifier",
    "channels": [32, 64],
    "feature_dim": 128,
}  # in_channels and heads set from the data
JUDGE_TRAIN = {
    "steps": 600,
    "lr": 2e-3,
    "batch": 128,
    "optimizer": "adamw",
    "weight_decay": 1e-4,
    "lr_schedule": "cosine",
}
# task → (network, training) changes for tasks the default judge reads too poorly
JUDGES = {"canvas": ({"channels": [32, 64, 128]}, {"steps": 1500})}  # 32×32 textures: a third stage, more steps


def accuracy_per_attribute(judge: ImageJudge, data) -> dict:
    pred = judge.predict(data.x)
    truth = data.cond()
    return {a.name: float((pred[:, i] == truth[:, i]).float().mean()) for i, a in enumerate(data.attributes)}


def judge_config(task: str, data) -> tuple[dict, dict]:
    """(network config, training config) of ``task``'s judge on its training ``data``."""
    net_changes, train_changes = JUDGES.get(task, ({}, {}))
    return {**JUDGE_NET, "in_channels": data.sample_shape[0], "heads": list(data.cond_vocab), **net_changes}, {
        **JUDGE_TRAIN,
        **train_changes,
    }


def judge_key(task: str, train_data) -> str:
    """The cache key of ``task``'s judge: its data's fingerprint, network, training and seed."""
    from genunlearn.io.cache import config_hash
    from genunlearn.data.fingerprint import data_identity

    net_cfg, train_cfg = judge_config(task, train_data)
    return config_hash(
        {"judge": data_identity(task)["fingerprint"], "net": net_cfg, "train": train_cfg, "seed": JUDGE_SEED}
    )


def load_judge(task: str, *, progress: bool = True, verbose: bool = True):
    """The task's judge: analytic for 2D, else a cached classifier (trained on first use)."""
    from genunlearn.io.cache import cache_root, read_entry, store_network
    from genunlearn.data import TOY_TASKS, load_dataset
    from genunlearn.data.fingerprint import data_identity
    from genunlearn.data.toy2d import TOYS
    from genunlearn.models import build_network, load_network
    from genunlearn.training.classifier import fit_on_data

    if task in TOY_TASKS:
        return ToyJudge(TOYS[task])
    train_data = load_dataset(task, "train")
    net_cfg, train_cfg = judge_config(task, train_data)
    data_id = data_identity(task)
    key = judge_key(task, train_data)
    folder = cache_root() / "judges" / f"{train_data.name}-{key}"
    cfg = read_entry(folder, "judge", key, data_id)
    if cfg is not None:
        judge = ImageJudge(
            load_network(folder, cfg["network"]).to(current().device),
            train_data.attributes,
            cfg["test_accuracy"],
            train_data.sample_shape,
        )
    else:
        from genunlearn.progress import stage

        stage(
            f"training the {task} judge ({train_cfg['steps']} steps)",
            "the classifier that says what each generated image shows; once, then cached",
        )
        torch.manual_seed(JUDGE_SEED)
        net = build_network(net_cfg)
        fit_on_data(net, train_data, train_cfg, seed=JUDGE_SEED, augment=True, progress=progress, desc=f"judge {task}")
        judge = ImageJudge(net.eval(), train_data.attributes, {}, train_data.sample_shape)
        judge.test_accuracy = accuracy_per_attribute(judge, load_dataset(task, "test"))
        store_network(folder, "judge", net, key=key, data=data_id, task=task, test_accuracy=judge.test_accuracy)
    if verbose:
        accs = ", ".join(f"{k} {100 * v:.1f}%" for k, v in judge.test_accuracy.items())
        print(f"judge[{task}] held-out accuracy: {accs}")
    if min(judge.test_accuracy.values()) < 0.9:
        raise GenUnlearnError(
            f"judge for {task} is unreliable (held-out accuracy {judge.test_accuracy}); metrics would mislead"
        )
    return judge
