"""I2I completion metrics (spec §6), per task (inpainting, outpainting) and per split.

On held-out forget and retain test images, completions (visible input pixels + generated hidden
pixels) are compared with their originals in the judge's penultimate feature space φ:
similarity = mean cos(φ(x̂), φ(x)); FD of completions vs originals; judge accuracy on completions
(label = the original's class); masked-region MSE. The noise reference S_noise = mean cos(φ(M0(T(n))),
φ(x_f)) over forget test images, with n noise images from the forget batch's mean/std: the
similarity a model reaches with no information about x_f. ``reference`` is M0 (default: the model
evaluated).
"""

from __future__ import annotations

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
        raise GenUnlearnError(f"I2I evaluation needs a 'classes' request (held-out images of the forgotten classes), not {request.kind!r}")
    test = load_dataset(task, split)
    forget, retain = test.split(request)
    if exclude_classes:
        keep = ~torch.isin(retain.labels, torch.tensor([test.class_id(c) for c in exclude_classes]))
        retain = retain.subset(keep.nonzero().squeeze(1))
        if not len(retain):
            raise GenUnlearnError("no retain test images left once the proxy classes are excluded")
    return {"forget": forget, "retain": retain}


def completion_metrics(judge, model, x: torch.Tensor, labels: torch.Tensor, visible: torch.Tensor) -> dict:
    from genunlearn.eval.metrics import frechet_distance

    comp = model.complete(x, visible)
    hidden = model.net.hidden_pixels(visible)
    cos = torch.nn.functional.cosine_similarity(judge.features(comp), judge.features(x), dim=1)
    return {
        "similarity": float(cos.mean()),
        "fd": frechet_distance(judge, x, comp),
        "accuracy": float((judge.predict(comp)[:, 0] == labels).float().mean()),
        "mse": float(((comp - x) ** 2 * hidden).sum() / hidden.sum() / x.shape[1]),
    }


def noise_similarity(judge, reference, x: torch.Tensor, visible: torch.Tensor, seed: int) -> tuple[float, float]:
    """(S_noise, S_noise_visible): the reference model completing noise images, compared with the
    originals ``x`` — as is (spec §6), and with the noise completion's hidden pixels composited into
    ``x``'s visible ones (diagnostic: a completion keeps the real visible pixels, so this is the
    similarity of "generate what noise would give" under the same compositing)."""
    from genunlearn.i2i.model import composite
    from genunlearn.i2i.masks import noise_images

    noise = noise_images(x, len(x), "gaussian", torch.Generator().manual_seed(seed))
    comp = reference.complete(noise, visible)
    mixed = composite(x, comp, reference.net.hidden_pixels(visible))
    fx = judge.features(x)
    return tuple(float(torch.nn.functional.cosine_similarity(judge.features(c), fx, dim=1).mean()) for c in (comp, mixed))


def evaluate_i2i(model, request, *, reference=None, judge=None, tasks=TASKS, exclude_classes=(), seed: int = 0, split: str = "test") -> dict:
    """``{task: {"forget": {metric: v}, "retain": {...}, "s_noise": v, "s_noise_visible": v}}`` per mask
    task, on the held-out ``split`` (``"test"`` to report, ``"val"`` to tune)."""
    from genunlearn.eval.judge import load_judge

    name = model.info.get("task", model.data["name"])
    judge = judge or load_judge(name, verbose=False)
    splits = held_out_splits(name, request, exclude_classes, split)
    out = {}
    for task in tasks:
        row = {s: completion_metrics(judge, model, d.x, d.labels, task_mask(task, len(d), model.net.grid)) for s, d in splits.items()}
        fx = splits["forget"].x
        row["s_noise"], row["s_noise_visible"] = noise_similarity(judge, reference or model, fx, task_mask(task, len(fx), model.net.grid), seed)
        out[task] = row
    return out
