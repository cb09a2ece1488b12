"""Content fingerprints of data: what cache keys and saved models record, so that a cache entry or
a model is never paired with other data than it was made from.

* ``task_source(task)``: a built-in task's name, or the absolute path of the user's folder/.npz.
* ``task_fingerprint(task)``: SHA-256 (16 hex digits) of the data's content: the bytes of every
  file the loader reads (user data), or of the generated tensors (built-in tasks, both splits).
* ``dataset_hash(data)``: the same for an in-memory ``Dataset`` (inputs, labels, attributes).
* ``model_dataset(model)``: the training data a saved model records, checked against the
  fingerprint it records (and against its shapes and classes) before anything uses it.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from genunlearn.errors import GenUnlearnError


def _builtin(task: str) -> bool:
    from genunlearn.data import BUILTIN

    return task in BUILTIN


def task_source(task: str) -> str:
    """What identifies the data's location: the built-in name or the absolute path."""
    task = str(task)
    if _builtin(task):
        return task
    return os.path.abspath(task)


def canonical_task(task: str) -> str:
    """What a model records as its task: a built-in name, or the absolute path of existing user
    data (so the model works from any working directory); anything else unchanged (it fails later
    with the loader's message)."""
    task = str(task)
    if _builtin(task) or not os.path.exists(task):
        return task
    return os.path.abspath(task)


def dataset_hash(data) -> str:
    """SHA-256 over a ``Dataset``'s tensors and attribute vocabulary."""
    import torch

    h = hashlib.sha256()
    for t in (data.x, data.labels, data.attrs):
        if t is None:
            h.update(b"none")
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    h.update(repr([(a.name, tuple(a.values)) for a in data.attributes]).encode())
    return h.hexdigest()[:16]


def _file_signature(path: Path) -> tuple:
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns)


def _data_files(path: Path) -> list[Path]:
    """The files the loader reads: the .npz, or every image in the class sub-folders."""
    from genunlearn.data.files import IMAGE_SUFFIXES

    if path.is_file():
        return [path]
    files = []
    for sub in sorted(p for p in path.iterdir() if p.is_dir()):
        files += sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return files


@lru_cache(maxsize=64)
def _hash_files(signature: tuple) -> str:
    h = hashlib.sha256()
    root = signature[0]
    for name, size, _ in signature[1:]:
        h.update(os.path.relpath(name, root).encode() + b"\0" + str(size).encode() + b"\0")
        with open(name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


@lru_cache(maxsize=16)
def _builtin_fingerprint(task: str) -> str:
    """A built-in task's data is a function of the code that generates it: the fingerprint hashes
    that code (and the library version; scikit-learn's for digits), not the generated floats, whose
    last bits we measured to differ between processes now and then (a false "data changed")."""
    import importlib

    from genunlearn import __version__
    from genunlearn.data import TOY_TASKS

    module = importlib.import_module(f"genunlearn.data.{'toy2d' if task in TOY_TASKS else task}")
    h = hashlib.sha256(f"{__version__}:{task}:".encode())
    h.update(Path(module.__file__).read_bytes())
    if task == "digits":
        import sklearn

        h.update(sklearn.__version__.encode())
    return h.hexdigest()[:16]


def task_fingerprint(task: str) -> str:
    """The content fingerprint of a task's data (cheap on repeat: memoised by file size and mtime)."""
    task = str(task)
    if _builtin(task):
        return _builtin_fingerprint(task)
    path = Path(task_source(task))
    if not path.exists():
        raise GenUnlearnError(f"data {task!r} not found ({path})")
    root = path.parent if path.is_file() else path
    try:
        return _hash_files((str(root), *(_file_signature(f) for f in _data_files(path))))
    except OSError as e:
        raise GenUnlearnError(f"{path}: cannot read the data ({e.strerror or e})") from None


def data_identity(task: str) -> dict:
    """``{"source": ..., "fingerprint": ...}``: what a cache key and a saved model record."""
    return {"source": task_source(task), "fingerprint": task_fingerprint(task)}


def model_dataset(model, split: str = "train"):
    """The data a saved model was trained on, after checking it is the same data: the recorded
    fingerprint (when the model records one) and the model's shapes and classes."""
    from genunlearn.data import load_dataset

    info = getattr(model, "info", {}) or {}
    task = str(info.get("task", model.data.get("name")))
    recorded = info.get("data_fingerprint")
    if not _builtin(task) and not os.path.exists(task):
        raise GenUnlearnError(
            f"this model was trained on {task}, which no longer exists (move the data back, or retrain)"
        )
    if recorded is not None:
        now = task_fingerprint(task)
        if now != recorded:
            raise GenUnlearnError(
                f"the data at {task} changed since this model was trained (fingerprint {recorded}, now {now}); retrain on the new data or restore the old"
            )
    data = load_dataset(task, split)
    check_compatible(model, data, task)
    return data


def check_compatible(model, data, task: str) -> None:
    """One line when ``data`` cannot be the data ``model`` was trained on (shapes, classes)."""
    meta = model.data
    shape = tuple(
        meta.get("data_shape") or meta.get("sample_shape", ())
    )  # data_shape: a foreign model's data before fitting
    if shape and len(shape) != len(
        data.sample_shape
    ):  # images are fitted to a model's resolution; points vs images are not
        raise GenUnlearnError(
            f"{task} holds samples of shape {tuple(data.sample_shape)}, but the model was trained on shape {shape}"
        )
    attrs = [(a["name"], tuple(a["values"])) for a in meta.get("attributes", [])]
    have = [(a.name, tuple(a.values)) for a in data.attributes]
    if attrs and attrs != have:
        raise GenUnlearnError(
            f"{task} has classes {have[0][1] if have else ()}, but the model was trained on {attrs[0][1]}"
        )
