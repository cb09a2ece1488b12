"""The user's own data: a folder of images in class sub-folders, or an ``.npz`` file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from genunlearn.data.dataset import Attribute, Dataset
from genunlearn.errors import GenUnlearnError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
MIN_SAMPLES = 2  # one for training, one held out


def _images_to_tensor(images: np.ndarray, source: str) -> torch.Tensor:
    """``(N, H, W[, C])`` uint8 or float in [0, 1] → ``(N, C, H, W)`` in [-1, 1]."""
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise GenUnlearnError(f"{source}: images must be uint8 or float numbers, got dtype {images.dtype}")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or min(images.shape[1:3], default=0) < 1:
        raise GenUnlearnError(
            f"{source}: images must be (N, H, W) or (N, H, W, C) with C in (1, 3), got {images.shape}"
        )
    if images.shape[0] < MIN_SAMPLES:
        raise GenUnlearnError(
            f"{source}: holds {images.shape[0]} image(s); at least {MIN_SAMPLES} are needed (a training and a held-out split)"
        )
    if images.dtype == np.uint8:
        x = images.astype(np.float32) / 255.0
    else:
        x = images.astype(np.float32)
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise GenUnlearnError(f"{source}: float images must lie in [0, 1]")
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous() * 2 - 1


def _labels(labels: np.ndarray, n: int, source: str) -> torch.Tensor:
    if n < MIN_SAMPLES:
        raise GenUnlearnError(
            f"{source}: holds {n} sample(s); at least {MIN_SAMPLES} are needed (a training and a held-out split)"
        )
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise GenUnlearnError(f"{source}: 'labels' must be {n} non-negative integers")
    return torch.from_numpy(labels.astype(np.int64))


def load_npz(path: str | Path) -> Dataset:
    """Keys: ``images`` (N,H,W[,C]) or ``samples`` (N,2); ``labels`` (N,); optional ``class_names``."""
    path = Path(path)
    try:
        f = np.load(path, allow_pickle=False)
        if not hasattr(f, "files"):
            raise ValueError("a single .npy array, not an .npz archive")
        with f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GenUnlearnError(f"{path}: cannot read as .npz ({msg})") from None
    if "labels" not in arrays or not ({"images", "samples"} & arrays.keys()):
        raise GenUnlearnError(f"{path}: needs 'labels' and one of 'images' or 'samples'")
    if "images" in arrays:
        x = _images_to_tensor(arrays["images"], str(path))
    else:
        s = arrays["samples"]
        if (
            s.ndim != 2
            or s.shape[1] != 2
            or not np.issubdtype(s.dtype, np.number)
            or np.iscomplexobj(s)
            or not np.isfinite(s).all()
        ):
            raise GenUnlearnError(f"{path}: 'samples' must be finite (N, 2) points, got {s.shape}")
        x = torch.from_numpy(s.astype(np.float32))
    y = _labels(arrays["labels"], x.shape[0], str(path))
    k = int(y.max()) + 1
    names = tuple(str(c) for c in arrays["class_names"]) if "class_names" in arrays else tuple(str(i) for i in range(k))
    if len(names) < k:
        raise GenUnlearnError(f"{path}: {len(names)} class_names for {k} classes")
    return Dataset(path.stem, x, y, (Attribute("class", names),))


def load_image_folder(path: str | Path) -> Dataset:
    """``path/<class name>/*.png``: every image the same size; grayscale if all are."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    classes = sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []
    if not classes:
        raise GenUnlearnError(f"{path}: expected a folder with one sub-folder of images per class")
    images, labels = [], []
    for k, name in enumerate(classes):
        files = sorted(p for p in (path / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise GenUnlearnError(f"{path / name}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        for f in files:
            try:
                with Image.open(f) as im:
                    images.append(im.convert("RGB"))
            except (UnidentifiedImageError, OSError):
                raise GenUnlearnError(f"{f}: unreadable image") from None
            labels.append(k)
    sizes = {im.size for im in images}
    if len(sizes) > 1:
        raise GenUnlearnError(f"{path}: images differ in size {sorted(sizes)[:3]}; resize them to one size first")
    arr = np.stack([np.asarray(im) for im in images])
    if (arr == arr[..., :1]).all():
        arr = arr[..., :1]
    x = _images_to_tensor(arr, str(path))
    return Dataset(
        path.name,
        x,
        _labels(np.asarray(labels, dtype=np.int64), len(labels), str(path)),
        (Attribute("class", tuple(classes)),),
    )
