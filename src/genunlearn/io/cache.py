"""The model cache: trained base/retrain models, judges and proxies under ``$GENUNLEARN_CACHE``
(default ``~/.cache/genunlearn``), each keyed by a hash of everything that determines it: the
recipe and a fingerprint of the data's content (``data.fingerprint``), never a path string.

Every entry records its key and the data's source and fingerprint, and both are verified when it
is read: an entry that does not match (copied under another key, made from other data, unreadable)
is never served; it is rebuilt, with one line saying why. Trainings run in ``work/<key>`` and
resume from their checkpoint there when the same command is rerun. An entry the cache lacks is
first looked up among the released ones shipped with the package (``released``, sha256-checked)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from genunlearn.distributed import is_main_process
from genunlearn.progress import stage
from genunlearn.io.released import install


def cache_root() -> Path:
    return Path(os.environ.get("GENUNLEARN_CACHE", Path.home() / ".cache" / "genunlearn"))


def config_hash(obj) -> str:
    from genunlearn import __version__

    blob = json.dumps({"v": __version__, **obj}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _note(msg: str) -> None:
    if is_main_process():
        print(f"note: {msg}", file=sys.stderr)


def entry_problem(folder: Path, recorded: dict, key: str, data: dict | None) -> str | None:
    """Why an entry's recorded ``key``/``data_fingerprint`` do not match what was asked (None: they do)."""
    if recorded.get("key") != key:
        return f"it records key {recorded.get('key')!r}, not {key!r}"
    if data is not None and recorded.get("data_fingerprint") != data["fingerprint"]:
        return f"it was made from data with fingerprint {recorded.get('data_fingerprint')!r}, not {data['fingerprint']!r} ({data['source']})"
    return None


def cached(key: str, train, load, *, use_cache: bool = True, data: dict | None = None):
    """The model cached under ``key``, or ``train(work_dir)`` (resumable there) saved into the cache.

    ``data`` (``data.fingerprint.data_identity``) is recorded in the model's info and checked on
    every read, with the key: a mismatching or unreadable entry is rebuilt, never served."""
    from genunlearn.errors import GenUnlearnError

    folder = cache_root() / "models" / key
    if use_cache and (
        (folder / "config.json").is_file() or (folder / "model_index.json").is_file() or install("models", key, folder)
    ):
        try:
            model = load(folder)
        except GenUnlearnError as e:
            _note(f"cache entry {folder} is unreadable ({e}); rebuilding it")
        else:
            problem = entry_problem(folder, model.info, key, data)
            if problem is None:
                return model
            _note(f"cache entry {folder} does not match this job ({problem}); rebuilding it")
    work = cache_root() / "work" / key
    stage(
        f"training model {key}", f"not in the cache {cache_root()}; later runs reuse it" if use_cache else "--no-cache"
    )
    model = train(work)
    model.info = {
        **model.info,
        "key": key,
        **({"data_source": data["source"], "data_fingerprint": data["fingerprint"]} if data else {}),
    }
    if is_main_process():  # under accelerate launch every rank trained the same model; one writes it
        model.save_pretrained(folder)
        shutil.rmtree(work, ignore_errors=True)
    return model


def read_entry(folder: Path, kind: str, key: str, data: dict | None):
    """The config of a cached helper network (judge, proxy) if it is present, readable and made
    for ``key`` from ``data``; else None (after one line saying why, when an entry was there)."""
    from genunlearn.io.weights import read_config
    from genunlearn.errors import GenUnlearnError

    if not ((folder / "config.json").is_file() or install(folder.parent.name, folder.name, folder)):
        return None
    try:
        cfg = read_config(folder, kind=kind)
    except GenUnlearnError as e:
        _note(f"cache entry {folder} is unreadable ({e}); rebuilding it")
        return None
    problem = entry_problem(folder, cfg, key, data)
    if problem is not None:
        _note(f"cache entry {folder} does not match ({problem}); rebuilding it")
        return None
    return cfg


def store_network(folder: Path, kind: str, net, *, key: str | None = None, data: dict | None = None, **fields) -> None:
    """Cache a trained helper network (a judge, an energy proxy) as ``config.json`` + weights,
    recording its ``key`` and the data's source and fingerprint; under accelerate launch only the
    main process writes."""
    from genunlearn.io.weights import atomic_dir, header, write_json
    from genunlearn.models import save_network

    if not is_main_process():
        return
    with atomic_dir(folder) as tmp:
        cfg = save_network(tmp, net)
        recorded = {
            "key": key,
            **({"data_source": data["source"], "data_fingerprint": data["fingerprint"]} if data else {}),
        }
        write_json(tmp / "config.json", header(kind, network=cfg, **recorded, **fields))
