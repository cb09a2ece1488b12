"""Built-in data sets and the user's own, all in one convention (see ``dataset.py``)."""

from __future__ import annotations

from pathlib import Path

from genunlearn.errors import GenUnlearnError

TOY_TASKS = ("ring8", "checkerboard", "moons", "circles")
IMAGE_TASKS = ("digits", "shapes", "canvas")
BUILTIN = TOY_TASKS + IMAGE_TASKS
PROCEDURAL = TOY_TASKS + ("shapes", "canvas")  # drawn from a seed: any split can be drawn fresh
SPLITS = ("train", "val", "test")
VAL_FRACTION = 0.2  # of the training data, where data are finite (digits, the user's own)


def load_dataset(name: str, split: str = "train"):
    """A built-in task by name, or a path to a class-folder of images or an ``.npz``.

    ``"val"`` is for tuning, so that ``"test"`` is only ever reported on. Procedural tasks draw it
    fresh (disjoint from both); on finite data (digits, user data) it is a fixed, seeded
    ``VAL_FRACTION`` of the training split, *carved out of* ``"train"`` but still inside it, so models
    trained before keep their caches; whoever trains for a tuning experiment uses :func:`fit_split`.
    User data has no separate test split: a fixed, seeded 80/20 partition stands in.
    """
    from genunlearn.data import canvas, digits, files, shapes, toy2d

    if split not in SPLITS:
        raise GenUnlearnError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    if name in TOY_TASKS:
        return toy2d.load_toy(name, split)
    if name == "shapes":
        return shapes.load_shapes(split)
    if name == "canvas":
        return canvas.load_canvas(split)
    if name == "digits":
        data = digits.load_digits("test" if split == "test" else "train")
        return data if split == "test" else _carve(data, split)
    path = Path(name)
    if path.suffix == ".npz" and path.is_file():
        data = files.load_npz(path)
    elif path.is_dir():
        data = files.load_image_folder(path)
    else:
        raise GenUnlearnError(f"unknown task {name!r}: expected one of {', '.join(BUILTIN)}, a folder or an .npz file")
    return _user_split(data, split)


def caption_pool(name: str):
    """``(row, split) -> captions`` for a task whose rows have many captions (canvas), else None:
    a text-to-image model trains on a caption drawn per step, not on the row's one prompt."""
    from genunlearn.data import canvas_paraphrases

    return canvas_paraphrases.captions if name == "canvas" else None


def draw_captions(pool, rows: list, split: str, generator) -> list[str]:
    """One caption per attribute row, drawn uniformly from ``pool(row, split)`` with ``generator``
    (on the CPU): evaluation prompts of a captioned task."""
    import torch

    pools = [pool(row, split) for row in rows]
    draw = torch.rand(len(pools), generator=generator, device="cpu").tolist()
    return [p[min(int(u * len(p)), len(p) - 1)] for p, u in zip(pools, draw)]


def fit_split(name: str):
    """The training split without its validation part: what a tuning experiment trains on (procedural
    tasks draw their validation data fresh, so theirs is the whole training split)."""
    train = load_dataset(name, "train")
    return train if name in PROCEDURAL else _carve(train, "fit")


def _carve(train, part: str):
    """``"val"``: a fixed, seeded, class-stratified ``VAL_FRACTION`` of ``train``; ``"fit"``: the rest;
    ``"train"``: all of it."""
    import torch

    if part == "train":
        return train
    g = torch.Generator().manual_seed(0)
    is_val = torch.zeros(len(train), dtype=torch.bool)
    for c in train.labels.unique():
        members = (train.labels == c).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=g)]
        is_val[members[: int(round(len(members) * VAL_FRACTION))]] = True
    return train.subset(is_val.nonzero().flatten() if part == "val" else (~is_val).nonzero().flatten())


def _user_split(data, split: str):
    import torch

    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(data), generator=g)
    n_test = max(1, len(data) // 5)
    if split == "test":
        return data.subset(perm[:n_test])
    return _carve(data.subset(perm[n_test:]), split)
