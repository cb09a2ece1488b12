"""All disk I/O for weights: safetensors + JSON, atomic writes, no pickles.

A saved folder holds ``config.json`` (what it is and how to rebuild it) and ``*.safetensors``.
Writes go to a temporary sibling folder that is renamed into place, so an interrupted save never
leaves a half-written checkpoint and never destroys the previous one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from genunlearn.errors import GenUnlearnError

FORMAT = "genunlearn"
FORMAT_VERSION = 1
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # raw pickle protocol >= 2, or torch's zip container


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        if not path.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            raise GenUnlearnError(f"{path} exists and is not a folder; refusing to overwrite it")
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise GenUnlearnError(f"{path}: not found")
    try:
        obj = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GenUnlearnError(f"{path}: not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(obj, dict):
        raise GenUnlearnError(f"{path}: expected a JSON object")
    return obj


def save_tensors(path: str | os.PathLike, tensors: dict) -> None:
    """Save a flat name → tensor dict as safetensors (contiguous, CPU copies)."""
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


def load_tensors(path: str | os.PathLike) -> dict:
    """Load safetensors; a pickle or any other file fails with one line and is never executed."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise GenUnlearnError(f"{path}: weights file not found")
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:1] == PICKLE_MAGIC[0] or head == PICKLE_MAGIC[1]:
        raise GenUnlearnError(f"{path}: looks like a pickle/torch.save file; only safetensors are loaded")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise GenUnlearnError(f"{path}: corrupt or not a safetensors file ({str(e).splitlines()[0]})") from None


def read_config(folder: str | os.PathLike, kind: str | None = None) -> dict:
    """Read and check a genunlearn ``config.json``; ``kind`` (e.g. "generative") must match if given."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GenUnlearnError(f"{folder}: not a folder (expected a saved genunlearn model)")
    cfg = read_json(folder / "config.json")
    if cfg.get("format") != FORMAT:
        raise GenUnlearnError(f"{folder}: not a genunlearn checkpoint (config.json has no 'format': '{FORMAT}')")
    if cfg.get("format_version", 0) > FORMAT_VERSION:
        raise GenUnlearnError(f"{folder}: written by a newer genunlearn (format {cfg['format_version']})")
    if kind is not None and cfg.get("kind") != kind:
        raise GenUnlearnError(f"{folder}: holds a {cfg.get('kind')!r} model, expected a {kind!r} one")
    return cfg


def header(kind: str, **fields: Any) -> dict:
    """The common head of every config.json we write."""
    from genunlearn import __version__

    return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, "genunlearn": __version__, **fields}
