"""Make the released models (``src/genunlearn/released_models/``) and check that they reproduce.

The released entries are what the demo needs at full quality: the digits flow and diffusion base
models and their retrain-without-3 gold standards (the full recipe, seed 0), the digits judge and
the class-3 energy proxy. Each is trained by the library's own cached path into an empty
temporary cache, then copied, with the sha256 of every file, into the package.

    OMP_NUM_THREADS=1 python benchmarks/release_models.py           # train and write the package data
    OMP_NUM_THREADS=1 python benchmarks/release_models.py --check   # retrain; compare weights bit for bit

Training is seeded and bit-identical on one machine and thread count (the script uses one thread);
``config.json`` records the measured training time, so only the weight files are compared.

The canvas text-to-image pipeline (the base of ``benchmarks/t2i_erasure.py`` and of a first erasure)
trains for well over an hour, so ``--add-canvas`` does not train it again: it copies the entry the
library's cached path made in the user's cache (``python benchmarks/base_models.py --cached --only
canvas/sd``, two threads), with the training time it recorded, trains the canvas judge into the
temporary cache, and replaces the shipped canvas entries with both. Either run keeps the other's entries.

    python benchmarks/release_models.py --add-canvas
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from genunlearn.io.weights import atomic_write_text

KINDS = ("flow", "diffusion")
FORGET = "classes=3"


def train_entries(cache: Path, kinds: tuple[str, ...]) -> dict:
    """Train every released entry into ``cache``; ``{"<section>/<name>": (what, training seconds)}``."""
    os.environ["GENUNLEARN_CACHE"] = str(cache)
    os.environ["GENUNLEARN_RELEASED"] = "0"  # train, never copy the shipped ones
    import torch

    from genunlearn.data import load_dataset
    from genunlearn.forget.energy import classifier_energy
    from genunlearn.eval.judge import load_judge
    from genunlearn.families import get_family
    from genunlearn.forget.request import parse_forget

    torch.set_num_threads(1)
    family, request = get_family("generative"), parse_forget(FORGET)
    what = {}
    for kind in kinds:
        for role, forget in (("base", None), (f"retrain without {request.spec()}", request)):
            model = family.train(family.job("digits", kind, forget=forget))
            what[f"models/{model.info['key']}"] = (f"digits {kind} {role} model", model.info["train_seconds"])
    t0 = time.perf_counter()
    load_judge("digits", verbose=False)
    judge_seconds = time.perf_counter() - t0
    energy = classifier_energy(load_dataset("digits"), request.classes, task="digits", progress=True)
    for section, label, seconds in (
        ("judges", "digits judge", judge_seconds),
        ("proxies", f"digits energy proxy ({request.spec()})", energy.seconds),
    ):
        for folder in (cache / section).iterdir():
            what[f"{section}/{folder.name}"] = (label, seconds)
    return what


def canvas_entries(cache: Path) -> dict:
    """The canvas pipeline copied from the user's cache into ``cache``, and the canvas judge trained
    there; ``{"<section>/<name>": (what, training seconds)}``."""
    from genunlearn.io.cache import cache_root
    from genunlearn.io.weights import read_json
    from genunlearn.eval.judge import load_judge
    from genunlearn.families import get_family

    key = get_family("generative").job("canvas", "sd").key()
    source = cache_root() / "models" / key
    if not (source / "model_index.json").is_file():
        sys.exit(
            f"no canvas pipeline in {source}: train it first (python benchmarks/base_models.py --cached --only canvas/sd)"
        )
    info = read_json(source / "genunlearn.json").get("info", {})
    shutil.copytree(source, cache / "models" / key)
    os.environ["GENUNLEARN_CACHE"] = str(cache)
    os.environ["GENUNLEARN_RELEASED"] = "0"
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    load_judge("canvas", verbose=False)
    judge_seconds = time.perf_counter() - t0
    (judge,) = (cache / "judges").iterdir()
    return {
        f"models/{key}": ("canvas sd base pipeline", info["train_seconds"]),
        f"judges/{judge.name}": ("canvas judge", judge_seconds),
    }


def files_of(folder: Path) -> list[str]:
    """Every file of a cache entry, a pipeline's component folders included."""
    from genunlearn.io.weights import MANIFEST

    return sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST
    )  # atomic_dir writes MANIFEST itself


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--check", action="store_true", help="retrain and compare the weight files' sha256 with the shipped ones"
    )
    ap.add_argument("--kinds", default=",".join(KINDS), help="model kinds to release (default: flow,diffusion)")
    ap.add_argument(
        "--add-canvas",
        action="store_true",
        help="add the cached canvas pipeline and the canvas judge to the shipped entries",
    )
    args = ap.parse_args()
    from genunlearn.io.released import RELEASED_DIR, manifest, sha256

    cache = Path(tempfile.mkdtemp(prefix="genunlearn-release-"))
    what = canvas_entries(cache) if args.add_canvas else train_entries(cache, tuple(args.kinds.split(",")))
    entries = {}
    for name, (label, seconds) in what.items():
        folder = cache / name
        entries[name] = {
            "what": label,
            "train_seconds": round(seconds, 1),
            "files": {f: sha256(folder / f) for f in files_of(folder)},
        }
    if args.check:
        shipped = json.loads((RELEASED_DIR / "manifest.json").read_text())["entries"]
        differ = 0
        for name, entry in entries.items():
            weights = {f: d for f, d in entry["files"].items() if f.endswith(".safetensors")}
            same = weights == {
                f: d for f, d in shipped.get(name, {}).get("files", {}).items() if f.endswith(".safetensors")
            }
            differ += not same
            print(f"{'identical' if same else 'DIFFERS'}: {entry['what']} ({name})")
        shutil.rmtree(cache)
        sys.exit(1 if differ else 0)
    replaced = [
        k for k, v in manifest().items() if v["what"].startswith("canvas ") == args.add_canvas
    ]  # this run's kind of entry
    for name in replaced:
        shutil.rmtree(RELEASED_DIR / name)
    entries = {**{k: v for k, v in manifest().items() if k not in replaced}, **entries}
    for name in what:
        for f in entries[name]["files"]:
            (RELEASED_DIR / name / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cache / name / f, RELEASED_DIR / name / f)
        print(f"{entries[name]['what']:<45} trained {entries[name]['train_seconds']:>7.1f}s  {name}")
    atomic_write_text(RELEASED_DIR / "manifest.json", json.dumps({"entries": entries}, indent=1, sort_keys=True) + "\n")
    size = sum(p.stat().st_size for p in RELEASED_DIR.rglob("*") if p.is_file())
    print(f"wrote {len(entries)} entries, {size / 2**20:.1f} MiB, to {RELEASED_DIR}")
    shutil.rmtree(cache)


if __name__ == "__main__":
    main()
