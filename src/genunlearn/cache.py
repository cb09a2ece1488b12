"""The model cache: trained base/retrain models, judges and proxies under ``$GENUNLEARN_CACHE``
(default ``~/.cache/genunlearn``), each keyed by a hash of everything that determines it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from genunlearn.distributed import is_main_process


def cache_root() -> Path:
    return Path(os.environ.get("GENUNLEARN_CACHE", Path.home() / ".cache" / "genunlearn"))


def config_hash(obj) -> str:
    from genunlearn import __version__

    blob = json.dumps({"v": __version__, **obj}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached(key: str, train, load, *, use_cache: bool = True):
    """The model cached under ``key``, or ``train(work_dir)`` (resumable there) saved into the cache."""
    folder = cache_root() / "models" / key
    if use_cache and (folder / "config.json").is_file():
        return load(folder)
    work = cache_root() / "work" / key
    model = train(work)
    if is_main_process():  # under accelerate launch every rank trained the same model; one writes it
        model.save_pretrained(folder)
        shutil.rmtree(work, ignore_errors=True)
    return model


def store_network(folder: Path, kind: str, net, **fields) -> None:
    """Cache a trained helper network (a judge, an energy proxy) as ``config.json`` + weights;
    under accelerate launch only the main process writes."""
    from genunlearn.checkpoint import atomic_dir, header, write_json
    from genunlearn.models import save_network

    if not is_main_process():
        return
    with atomic_dir(folder) as tmp:
        cfg = save_network(tmp, net)
        write_json(tmp / "config.json", header(kind, network=cfg, **fields))
