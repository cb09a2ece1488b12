"""I2I completion metrics (spec §6), per task (inpainting, outpainting) and per split.

On held-out forget and retain test images, completions (visible input pixels + generated hidden
pixels) are compared with their originals in the judge's penultimate feature space φ:
similarity = mean cos(φ(x̂), φ(x)); FD of completions vs originals; judge accuracy on completions
(label = the original's class); masked-region MSE. The noise reference S_noise = mean cos(φ(M0(T(n))),
φ(x_f)) over forget test images, with n noise images from the forget batch's mean/std: the
similarity a model reaches with no information about x_f. ``reference`` is M0 (default: the model
evaluated). A second, independent judge (``pixel_judge``: an RBF SVM on raw pixels, trained on the
train split) adds ``accuracy_2``; ``accuracy_noise_visible`` (and ``_2``) is each judge's accuracy on
the S_noise-visible composite, i.e. what the visible pixels alone still give away.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genunlearn.errors import GenUnlearnError
from genunlearn.i2i.masks import TASKS, task_mask

SPLITS = ("forget", "retain")
METRICS = ("similarity", "fd", "accuracy", "mse")


def held_out_splits(task: str, request, exclude_classes=(), split: str = "test") -> dict:
    """Held-out forget and retain images of a class request from ``split`` (``"test"`` to report,
    ``"val"`` to tune); ``exclude_classes`` (a three-way split's proxy classes) are dropped from the
    retain side."""
    from genunlearn.data import load_dataset

    if request.kind != "classes":
        raise GenUnlearnError(
            f"I2I evaluation needs a 'classes' request (held-out images of the forgotten classes), not {request.kind!r}"
        )
    test = load_dataset(task, split)
    forget, retain = test.split(request)
    if exclude_classes:
        keep = ~torch.isin(retain.labels, torch.tensor([test.class_id(c) for c in exclude_classes]))
        retain = retain.subset(keep.nonzero().squeeze(1))
        if not len(retain):
            raise GenUnlearnError("no retain test images left once the proxy classes are excluded")
    return {"forget": forget, "retain": retain}


@dataclass
class PixelJudge:
    """The independent second judge: scikit-learn's RBF SVM on raw pixels (another model family than
    the convolutional judge, no augmentation), fit on the task's train split. Only ``predict``."""

    clf: object
    test_accuracy: float

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.clf.predict(x.clamp(-1, 1).flatten(1).numpy()))[:, None]


def pixel_judge(task: str) -> PixelJudge:
    """Fit the second judge (deterministic; a second on 8 × 8 digits) and record its test accuracy."""
    from sklearn.svm import SVC

    from genunlearn.data import load_dataset

    train, test = load_dataset(task, "train"), load_dataset(task, "test")
    if train.kind != "images" or len(train.attributes) != 1:
        raise GenUnlearnError(f"{task}: the pixel judge needs single-label images")
    clf = SVC(C=10.0, gamma="scale").fit(train.x.flatten(1).numpy(), train.labels.numpy())
    judge = PixelJudge(clf, 0.0)
    judge.test_accuracy = float((judge.predict(test.x)[:, 0] == test.labels).float().mean())
    return judge


def _accuracy(judge, x: torch.Tensor, labels: torch.Tensor) -> float:
    return float((judge.predict(x)[:, 0] == labels).float().mean())


def completion_metrics(judge, model, x: torch.Tensor, labels: torch.Tensor, visible: torch.Tensor, judge2=None) -> dict:
    from genunlearn.eval.metrics import frechet_distance

    comp = model.complete(x, visible)
    hidden = model.net.hidden_pixels(visible)
    cos = torch.nn.functional.cosine_similarity(judge.features(comp), judge.features(x), dim=1)
    out = {
        "similarity": float(cos.mean()),
        "fd": frechet_distance(judge, x, comp),
        "accuracy": _accuracy(judge, comp, labels),
        "mse": float(((comp - x) ** 2 * hidden).sum() / hidden.sum() / x.shape[1]),
    }
    return out if judge2 is None else {**out, "accuracy_2": _accuracy(judge2, comp, labels)}


def noise_reference(
    judge, reference, x: torch.Tensor, labels: torch.Tensor, visible: torch.Tensor, seed: int, judge2=None
) -> dict:
    """S_noise and S_noise_visible: the reference model completing noise images, compared with the
    originals ``x`` — as is (spec §6), and with the noise completion's hidden pixels composited into
    ``x``'s visible ones (a completion keeps the real visible pixels, so this is "generate what
    noise would give" under the same compositing: the target of ours). ``accuracy_noise_visible``
    (per judge) is how often that composite is still recognised: the floor the visible pixels set."""
    from genunlearn.i2i.model import composite
    from genunlearn.i2i.masks import noise_images

    noise = noise_images(x, len(x), "gaussian", torch.Generator().manual_seed(seed))
    comp = reference.complete(noise, visible)
    mixed = composite(x, comp, reference.net.hidden_pixels(visible))
    fx = judge.features(x)
    s, s_vis = (
        float(torch.nn.functional.cosine_similarity(judge.features(c), fx, dim=1).mean()) for c in (comp, mixed)
    )
    out = {"s_noise": s, "s_noise_visible": s_vis, "accuracy_noise_visible": _accuracy(judge, mixed, labels)}
    return out if judge2 is None else {**out, "accuracy_noise_visible_2": _accuracy(judge2, mixed, labels)}


def evaluate_i2i(
    model,
    request,
    *,
    reference=None,
    judge=None,
    judge2=None,
    tasks=TASKS,
    exclude_classes=(),
    seed: int = 0,
    split: str = "test",
) -> dict:
    """``{task: {"forget": {metric: v}, "retain": {...}, "s_noise": v, "s_noise_visible": v,
    "accuracy_noise_visible": v}}`` per mask task (any of ``masks.MASKS``), on the held-out ``split``
    (``"test"`` to report, ``"val"`` to tune); ``judge2`` adds its accuracies (``_2``)."""
    from genunlearn.eval.judge import load_judge

    name = model.info.get("task", model.data["name"])
    judge = judge or load_judge(name, verbose=False)
    splits = held_out_splits(name, request, exclude_classes, split)
    out = {}
    for task in tasks:
        row = {
            s: completion_metrics(judge, model, d.x, d.labels, task_mask(task, len(d), model.net.grid), judge2)
            for s, d in splits.items()
        }
        f = splits["forget"]
        out[task] = {
            **row,
            **noise_reference(
                judge, reference or model, f.x, f.labels, task_mask(task, len(f), model.net.grid), seed, judge2
            ),
        }
    return out
