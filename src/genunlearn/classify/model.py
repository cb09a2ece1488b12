"""The classifier model folder, its recipe (original and retrain models), epoch schedules and
forget scenarios.

Training runs through the one classifier trainer (``training.classifier``): an epoch schedule is a
precomputed list of minibatches, consumed one per step. A minibatch is
``(epoch, x, y, w)`` with loss mean_i w_i · CE(f(x_i), y_i), so fine-tuning, random labelling
(y = a wrong label) and gradient ascent (w = −1) are all the same step.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from genunlearn.errors import GenUnlearnError
from genunlearn.forget.request import ForgetRequest
from genunlearn.io.model_folder import ModelFolder

NETWORK = {"_class_name": "ConvClassifier", "channels": [32, 64], "feature_dim": 128}
SCENARIOS = ("classwise", "random")
CLASSWISE_CLASS = 3
RANDOM_FRACTION = 0.1


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


@dataclass(frozen=True)
class Recipe:
    """Original/retrain classifier training (spec §5, CPU scale): SGD, momentum, wd, cosine LR."""

    epochs: int = 50
    lr: float = 0.05
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 5e-4


Batch = tuple  # (epoch, x, y, w)


def epoch_batches(n: int, batch_size: int, g: torch.Generator) -> list[torch.Tensor]:
    """One shuffled pass over ``n`` items as index minibatches (the last one may be short)."""
    return list(torch.randperm(n, generator=g).split(batch_size))


def supervised_batches(data, epochs: int, batch_size: int, g: torch.Generator, weight: float = 1.0) -> list[Batch]:
    """Plain cross-entropy minibatches over ``data`` for ``epochs`` epochs."""
    w = torch.full((len(data),), weight)
    return [
        (e, data.x[i], data.labels[i], w[i]) for e in range(epochs) for i in epoch_batches(len(data), batch_size, g)
    ]


def fit(
    net,
    batches: list[Batch],
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    seed: int,
    grad_mask=None,
    extra: Callable | None = None,
    before: Callable | None = None,
    desc: str = "classifier",
    callbacks=(),
) -> float:
    """SGD over a precomputed schedule, one minibatch per step, through the one classifier trainer;
    ``extra(net, epoch)`` adds a regulariser; ``before(update)`` runs ahead of each step's forward pass
    (SalUn-soft's proximal step). Returns wall-clock seconds."""
    from genunlearn.training import TrainConfig
    from genunlearn.training.classifier import fit_classifier, scheduled

    if not batches:
        raise GenUnlearnError(f"{desc}: nothing to train on (empty schedule)")
    cfg = TrainConfig(
        steps=len(batches),
        lr=lr,
        optimizer="sgd",
        momentum=momentum,
        weight_decay=weight_decay,
        grad_clip=None,
        seed=seed,
        log_every=max(1, len(batches)),
    )
    source = scheduled(batches)

    def draw(g, update):
        before(update)
        return source(g, update)

    return fit_classifier(
        net, source if before is None else draw, cfg, extra=extra, grad_mask=grad_mask, desc=desc, callbacks=callbacks
    ).seconds


def new_classifier(data, seed: int):
    from genunlearn.models import build_network

    torch.manual_seed(seed)
    return build_network({**NETWORK, "in_channels": data.sample_shape[0], "heads": [data.num_classes]})


def train_classifier(data, seed: int, recipe: Recipe = Recipe()):
    """A classifier trained from scratch on ``data`` (all of it for the original model, the retain
    split for Retrain). Returns (net, seconds)."""
    if data.kind != "images":
        raise GenUnlearnError(f"{data.name}: classifier unlearning needs image data")
    net = new_classifier(data, seed)
    g = torch.Generator().manual_seed(seed)
    batches = supervised_batches(data, recipe.epochs, recipe.batch_size, g)
    seconds = fit(
        net,
        batches,
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        seed=seed,
        desc="train classifier",
    )
    return net.eval(), seconds


def scenario_request(data, scenario: str, seed: int = 0) -> ForgetRequest:
    """Class-wise: forget class 3. Random: a seeded 10 % of the training items."""
    if scenario == "classwise":
        return ForgetRequest.of_classes(CLASSWISE_CLASS)
    if scenario == "random":
        return random_request(data, RANDOM_FRACTION, seed)
    raise GenUnlearnError(f"unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}")


def random_request(data, fraction: float, seed: int) -> ForgetRequest:
    if not 0 < fraction < 1:
        raise GenUnlearnError(f"forget fraction must be in (0, 1), got {fraction}")
    k = max(1, round(fraction * len(data)))
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:k]
    return ForgetRequest("samples", samples=tuple(sorted(idx.tolist())))


def eval_splits(train_data, test_data, request: ForgetRequest):
    """(forget, retain, test) — for class requests the test set loses the forgotten classes."""
    forget, retain = train_data.split(request)
    test = test_data.split(request)[1] if request.kind == "classes" else test_data
    return forget, retain, test


def check_request(request: ForgetRequest) -> None:
    if request.kind not in ("classes", "samples"):
        raise GenUnlearnError(f"classifier unlearning accepts 'classes' or 'samples' requests, not {request.kind!r}")


def with_epochs(recipe: Recipe, epochs: int | None) -> Recipe:
    return recipe if epochs is None else replace(recipe, epochs=epochs)


@dataclass
class ClassifierJob:
    """Everything that determines a trained classifier (and its cache key)."""

    task: str = "digits"
    forget: ForgetRequest | None = None
    epochs: int | None = None  # None: the recipe's
    seed: int = 0

    def recipe(self) -> Recipe:
        return with_epochs(Recipe(), self.epochs)

    def key(self) -> str:
        from dataclasses import asdict

        from genunlearn.io.cache import config_hash
        from genunlearn.data.fingerprint import task_fingerprint

        return config_hash(
            {
                "model": "classifier",
                "task": self.task,
                "data": task_fingerprint(self.task),
                "forget": self.forget.spec() if self.forget else None,
                "recipe": asdict(self.recipe()),
                "seed": self.seed,
            }
        )


def train_job(job: ClassifierJob):
    """The original classifier (all training data) or, with ``job.forget``, Retrain (retain split)."""
    from dataclasses import asdict

    from genunlearn.data import load_dataset

    data = load_dataset(job.task)
    train_data = data if job.forget is None else data.split(job.forget)[1]
    net, seconds = train_classifier(train_data, job.seed, job.recipe())
    role = "retrain" if job.forget else "original"
    info = {
        "task": job.task,
        "model": "classifier",
        "role": role,
        "forget": job.forget.spec() if job.forget else None,
        "seed": job.seed,
        "train_seconds": round(seconds, 3),
        "recipe": asdict(job.recipe()),
        "key": job.key(),
        "base_key": replace(job, forget=None).key(),
    }
    return ClassifierModel(net, data.meta(), info)


def train_cached(job: ClassifierJob, *, use_cache: bool = True):
    from genunlearn.io.cache import cached
    from genunlearn.data.fingerprint import data_identity

    return cached(
        job.key(),
        lambda _work: train_job(job),
        ClassifierModel.from_pretrained,
        use_cache=use_cache,
        data=data_identity(job.task),
    )
