"""Released models: fully trained cache entries shipped inside the package.

``released_models/`` holds cache entries exactly as the cache stores them (``models/<key>/``,
``judges/<name>/``, ``proxies/<name>/``), made by ``benchmarks/release_models.py``, and a
``manifest.json`` with every file's sha256 and what the entry is. When the cache is asked for an
entry it lacks and a released one has that name, the released files are checked against their
sha256 and copied in; a file that fails its check is never used (the entry is trained instead).
The entries keep the training time they were made in, so "time / retrain" still compares a
method with the real retraining cost. ``GENUNLEARN_RELEASED=0`` turns them off.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

from genunlearn.distributed import is_main_process

RELEASED_DIR = Path(__file__).parent.parent / "released_models"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=1)
def manifest() -> dict:
    """``{"<section>/<name>": {"files": {file: sha256}, "what": ..., "train_seconds": ...}}``."""
    path = RELEASED_DIR / "manifest.json"
    return json.loads(path.read_text())["entries"] if path.is_file() else {}


def enabled() -> bool:
    return os.environ.get("GENUNLEARN_RELEASED", "1") != "0"


def lookup(section: str, name: str) -> dict | None:
    """The manifest record of a released entry (None: none, or released models are turned off)."""
    return manifest().get(f"{section}/{name}") if enabled() else None


def install(section: str, name: str, folder: Path) -> bool:
    """Copy the released ``section/name`` into the cache ``folder`` after checking every file's
    sha256; False (and one line if a check failed) when there is none or it is damaged. Under
    accelerate launch every rank installs the same checked bytes (atomic swaps), so none reads a
    half-copied folder; the main process alone speaks."""
    from genunlearn.io.weights import atomic_dir

    record = lookup(section, name)
    if record is None:
        return False
    src = RELEASED_DIR / section / name
    for file, digest in record["files"].items():
        if not (src / file).is_file() or sha256(src / file) != digest:
            if is_main_process():
                print(
                    f"note: released {record['what']} ({src / file}) fails its sha256 check; training it instead",
                    file=sys.stderr,
                )
            return False
    with atomic_dir(folder, quiet=True) as tmp:
        for file in record["files"]:  # a pipeline's files sit in component folders (unet/, vae/, ...)
            (tmp / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / file, tmp / file)
    if is_main_process():
        print(
            f"using the released {record['what']} (sha256 checked; it trained in {record['train_seconds']:.0f}s)",
            file=sys.stderr,
        )
    return True
