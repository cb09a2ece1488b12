"""Released models (package data): what the demo needs is there, matches today's cache keys,
is checked by sha256 before use, and a damaged file is never used."""

import json
import shutil

import pytest

from genunlearn.io import released
from genunlearn.families import get_family
from genunlearn.forget.request import parse_forget

MAX_BYTES = 40 * 2**20  # the digits models and judge (23 MiB) and the canvas pipeline and judge (8 MiB)


@pytest.fixture
def fresh_manifest():
    released.manifest.cache_clear()
    yield
    released.manifest.cache_clear()


def test_package_data_is_complete_small_and_hashed():
    entries = released.manifest()
    assert entries, "no released models: run benchmarks/release_models.py"
    total = 0
    for name, entry in entries.items():
        assert entry["train_seconds"] > 0 and entry["what"]
        for file, digest in entry["files"].items():
            path = released.RELEASED_DIR / name / file
            assert released.sha256(path) == digest, path
            total += path.stat().st_size
    assert total <= MAX_BYTES


@pytest.mark.parametrize("kind", ["flow", "diffusion"])
def test_released_keys_are_todays_jobs(kind):
    """A recipe, data or version change that moves a key must come with new released models."""
    family = get_family("generative")
    for forget in (None, parse_forget("classes=3")):
        key = family.job("digits", kind, forget=forget).key()
        assert released.lookup("models", key) is not None, (
            f"digits {kind} forget={forget}: no released model for key {key}"
        )


def test_released_canvas_pipeline_and_judge_are_todays_keys(tmp_path):
    """The canvas pipeline (two hours to train) and its judge ship; its component folders install."""
    from genunlearn.data import load_dataset
    from genunlearn.eval.judge import judge_key

    key = get_family("generative").job("canvas", "sd").key()
    assert released.lookup("models", key) is not None, f"canvas sd: no released pipeline for key {key}"
    jkey = f"canvas-{judge_key('canvas', load_dataset('canvas'))}"
    assert released.lookup("judges", jkey) is not None, f"no released canvas judge {jkey}"
    target = tmp_path / "models" / key
    assert released.install("models", key, target)
    assert (target / "unet" / "diffusion_pytorch_model.safetensors").is_file() and (
        target / "genunlearn.json"
    ).is_file()


def test_cache_serves_a_released_model_without_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENUNLEARN_CACHE", str(tmp_path / "cache"))
    family = get_family("generative")
    job = family.job("digits", "flow")
    model = family.train(job)
    err = capsys.readouterr().err
    assert "using the released digits flow base model (sha256 checked" in err and "training model" not in err
    assert model.info["key"] == job.key() and model.info["steps"] == 4000 and model.info["train_seconds"] > 10
    assert (tmp_path / "cache" / "models" / job.key() / "config.json").is_file()  # installed: Family.reference finds it


def test_damaged_release_is_never_used(tmp_path, monkeypatch, capsys, fresh_manifest):
    name = next(n for n in released.manifest() if n.startswith("models/"))
    copy = tmp_path / "released"
    shutil.copytree(released.RELEASED_DIR, copy)
    weights = copy / name / "network.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(released, "RELEASED_DIR", copy)
    target = tmp_path / "cache" / name
    assert not released.install(*name.split("/"), target)
    assert "fails its sha256 check; training it instead" in capsys.readouterr().err and not target.exists()
    monkeypatch.setenv("GENUNLEARN_RELEASED", "0")
    assert released.lookup(*name.split("/")) is None


def test_manifest_records_what_and_training_time():
    entries = json.loads((released.RELEASED_DIR / "manifest.json").read_text())["entries"]
    whats = sorted(e["what"] for e in entries.values())
    assert (
        "digits flow base model" in whats
        and "digits flow retrain without classes=3 model" in whats
        and "digits judge" in whats
    )
