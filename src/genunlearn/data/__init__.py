"""Built-in data sets and the user's own, all in one convention (see ``dataset.py``)."""

from __future__ import annotations

from pathlib import Path

from genunlearn.errors import GenUnlearnError

TOY_TASKS = ("ring8", "checkerboard", "moons", "circles")
IMAGE_TASKS = ("digits", "shapes")
BUILTIN = TOY_TASKS + IMAGE_TASKS


def load_dataset(name: str, split: str = "train"):
    """A built-in task by name, or a path to a class-folder of images or an ``.npz``.

    User data has no separate test split: ``split`` selects a fixed, seeded 80/20 partition.
    """
    from genunlearn.data import digits, files, shapes, toy2d

    if split not in ("train", "test"):
        raise GenUnlearnError(f"unknown split {split!r}: expected 'train' or 'test'")
    if name in TOY_TASKS:
        return toy2d.load_toy(name, split)
    if name == "digits":
        return digits.load_digits(split)
    if name == "shapes":
        return shapes.load_shapes(split)
    path = Path(name)
    if path.suffix == ".npz" and path.is_file():
        data = files.load_npz(path)
    elif path.is_dir():
        data = files.load_image_folder(path)
    else:
        raise GenUnlearnError(f"unknown task {name!r}: expected one of {', '.join(BUILTIN)}, a folder or an .npz file")
    return _user_split(data, split)


def _user_split(data, split: str):
    import torch

    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(data), generator=g)
    n_test = max(1, len(data) // 5)
    return data.subset(perm[n_test:] if split == "train" else perm[:n_test])
