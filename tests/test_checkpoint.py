import json
import pickle

import pytest
import torch

from genunlearn.io.weights import atomic_dir, load_tensors, read_config
from genunlearn.errors import GenUnlearnError
from genunlearn.generative.model import GenerativeModel
from genunlearn.models import build_network
from genunlearn.processes.flow_matching import FlowMatching


def tiny_model():
    torch.manual_seed(0)
    net = build_network({"_class_name": "MLPNet", "dim": 2, "hidden": 16, "depth": 1, "cond_vocab": [3]})
    meta = {
        "name": "ring8",
        "kind": "points",
        "sample_shape": [2],
        "attributes": [{"name": "class", "values": ["a", "b", "c"]}],
    }
    return GenerativeModel(net, FlowMatching(steps=4), meta, {"task": "ring8", "model": "flow"})


def test_roundtrip_is_exact(tmp_path):
    m = tiny_model()
    m.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["format"] == "genunlearn" and cfg["network"]["_class_name"] == "MLPNet"
    m2 = GenerativeModel.from_pretrained(tmp_path / "m")
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    cond = torch.tensor([[0], [1], [2]])
    assert torch.equal(m.sample(3, cond, generator=g1), m2.sample(3, cond, generator=g2))


class Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_pickle_weights_are_refused_and_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = tiny_model()
    m.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "network.safetensors").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(GenUnlearnError, match="pickle"):
        GenerativeModel.from_pretrained(tmp_path / "m")
    torch.save({"w": torch.zeros(1)}, tmp_path / "m" / "network.safetensors")
    with pytest.raises(GenUnlearnError, match="pickle"):
        GenerativeModel.from_pretrained(tmp_path / "m")
    assert not (tmp_path / "PWNED").exists()


def test_corrupt_and_foreign_checkpoints(tmp_path):
    m = tiny_model()
    m.save_pretrained(tmp_path / "m")
    w = tmp_path / "m" / "network.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(GenUnlearnError, match="corrupt"):
        GenerativeModel.from_pretrained(tmp_path / "m")
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    with pytest.raises(GenUnlearnError, match="not a genunlearn checkpoint"):
        GenerativeModel.from_pretrained(tmp_path / "f")
    (tmp_path / "f" / "config.json").write_text("{oops")
    with pytest.raises(GenUnlearnError, match="not valid JSON"):
        GenerativeModel.from_pretrained(tmp_path / "f")
    with pytest.raises(GenUnlearnError, match="not a folder"):
        GenerativeModel.from_pretrained(tmp_path / "missing")


def test_wrong_weights_for_config(tmp_path):
    m = tiny_model()
    m.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["network"]["hidden"] = 32
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(GenUnlearnError, match="does not fit the .* in config.json"):
        GenerativeModel.from_pretrained(tmp_path / "m")


def test_other_model_kind_is_refused(tmp_path):
    m = tiny_model()
    m.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["kind"] = "judge"
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(GenUnlearnError, match="holds a 'judge' model"):
        read_config(tmp_path / "m", kind="generative")


def test_failed_save_keeps_previous_checkpoint(tmp_path):
    m = tiny_model()
    m.save_pretrained(tmp_path / "m")
    before = (tmp_path / "m" / "network.safetensors").read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "m") as tmp:
            (tmp / "partial").write_text("half")
            raise RuntimeError("crash mid-save")
    assert (tmp_path / "m" / "network.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert set(load_tensors(tmp_path / "m" / "network.safetensors")) == set(m.net.state_dict())
