import numpy as np
import pytest
import torch

from genunlearn.data import load_dataset
from genunlearn.data.dataset import cond_to_prompt
from genunlearn.data.toy2d import TOYS
from genunlearn.errors import GenUnlearnError
from genunlearn.forget.request import ForgetRequest, parse_forget


@pytest.mark.parametrize("name", ["ring8", "checkerboard", "moons", "circles"])
def test_toy_geometry_matches_labels(name):
    d = load_dataset(name, "test")
    comp, on = TOYS[name].assign(d.x)
    assert d.x.shape[1] == 2 and d.kind == "points"
    assert (comp == d.labels).float().mean() > 0.99
    assert on.float().mean() > 0.99
    far = d.x + 20.0
    assert not TOYS[name].assign(far)[1].any()


def test_ring8_centres_and_std():
    d = load_dataset("ring8")
    for k in range(8):
        pts = d.x[d.labels == k]
        angle = 2 * np.pi * k / 8
        assert torch.allclose(
            pts.mean(0), torch.tensor([4 * np.cos(angle), 4 * np.sin(angle)], dtype=torch.float32), atol=0.05
        )
        assert abs(pts.std(0).mean().item() - 0.35) < 0.02


def test_digits_convention_and_fixed_split():
    tr, te = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert tr.x.shape[1:] == (1, 8, 8) and tr.x.min() >= -1 and tr.x.max() <= 1
    assert len(tr) + len(te) == 1797
    assert torch.equal(load_dataset("digits", "train").x, tr.x)
    assert set(tr.labels.tolist()) == set(range(10))


def test_shapes_attributes_and_prompts():
    d = load_dataset("shapes", "test")
    assert d.x.shape[1:] == (3, 16, 16) and d.cond().shape == (len(d), 2)
    assert d.prompt_to_cond("a red circle").tolist() == [0, 0]
    assert d.prompt_to_cond("a circle").tolist() == [0, 4]
    assert d.prompt_to_cond("a blue shape").tolist() == [4, 2]
    assert cond_to_prompt(d.attributes, [2, 3]) == "a yellow triangle"
    assert cond_to_prompt(d.attributes, [4, 0]) == "a red shape"
    red = d.x[d.attrs[:, 1] == 0]
    # red shapes: the brightest pixels are red-dominant
    top = red.flatten(2).max(2).values
    assert (top[:, 0] > top[:, 2]).float().mean() > 0.99
    with pytest.raises(GenUnlearnError, match="unknown concept word 'dog'"):
        d.prompt_to_cond("a dog")


def test_split_classes_samples_concept_energy():
    d = load_dataset("digits")
    f, r = d.split(parse_forget("classes=3"))
    assert (f.labels == 3).all() and not (r.labels == 3).any() and len(f) + len(r) == len(d)
    f, _ = d.split(parse_forget("samples=0,5,7"))
    assert torch.equal(f.x, d.x[[0, 5, 7]])
    s = load_dataset("shapes", "test")
    f, r = s.split(parse_forget("concept=circle;anchor=shape"))
    assert (f.attrs[:, 0] == 0).all() and (r.attrs[:, 0] != 0).all()
    c = load_dataset("checkerboard")
    f, _ = c.split(parse_forget("energy=quadrant"))
    assert (f.x > 0).all()
    f, _ = c.split(ForgetRequest("energy", energy=lambda x: x[:, 0]))
    assert (f.x[:, 0] > 0).all()


@pytest.mark.parametrize(
    "spec,match",
    [
        ("classes=11", "unknown class 11"),
        ("classes=cat", "unknown class 'cat'"),
        ("classes=0,1,2,3,4,5,6,7,8,9", "retain split is empty"),
        ("samples=99999", "sample index out of range"),
        ("energy=nowhere", "unknown energy region"),
    ],
)
def test_split_errors(spec, match):
    with pytest.raises(GenUnlearnError, match=match):
        load_dataset("digits").split(parse_forget(spec))


def test_empty_forget_split():
    d = load_dataset("circles")
    with pytest.raises(GenUnlearnError, match="forget split is empty"):
        d.split(ForgetRequest("energy", energy=lambda x: -torch.ones(x.shape[0])))


def test_npz_roundtrip_and_errors(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "mine.npz", images=imgs, labels=np.arange(20) % 4)
    d = load_dataset(str(tmp_path / "mine.npz"))
    assert d.x.shape[1:] == (3, 8, 8) and d.num_classes == 4 and len(d) == 16
    np.savez(tmp_path / "bad.npz", images=np.zeros((5, 8, 8, 2), np.uint8), labels=np.zeros(5, int))
    with pytest.raises(GenUnlearnError, match="C in"):
        load_dataset(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "nolabels.npz", images=imgs)
    with pytest.raises(GenUnlearnError, match="needs 'labels'"):
        load_dataset(str(tmp_path / "nolabels.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(GenUnlearnError, match="cannot read"):
        load_dataset(str(tmp_path / "junk.npz"))


def test_image_folder(tmp_path):
    from PIL import Image

    for k, name in enumerate(["cat", "dog"]):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((6, 6), 40 * k + i, np.uint8)).save(tmp_path / "data" / name / f"{i}.png")
    d = load_dataset(str(tmp_path / "data"))
    assert d.class_names == ("cat", "dog") and d.x.shape[1:] == (1, 6, 6)
    Image.fromarray(np.zeros((7, 7), np.uint8)).save(tmp_path / "data" / "dog" / "odd.png")
    with pytest.raises(GenUnlearnError, match="differ in size"):
        load_dataset(str(tmp_path / "data"))
    (tmp_path / "data" / "dog" / "odd.png").write_bytes(b"garbage")
    with pytest.raises(GenUnlearnError, match="unreadable image"):
        load_dataset(str(tmp_path / "data"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenUnlearnError, match="one sub-folder of images per class"):
        load_dataset(str(tmp_path / "empty"))


def test_unknown_task():
    with pytest.raises(GenUnlearnError, match="unknown task 'mnist'"):
        load_dataset("mnist")


@pytest.mark.parametrize(
    "spec,match",
    [
        ("classes", "key=value"),
        ("colour=3", "unknown key 'colour'"),
        ("concept=circle;anchor= ", "anchor has no value"),
        ("samples=a,b", "integer"),
    ],
)
def test_bad_forget_specs(spec, match):
    with pytest.raises(GenUnlearnError, match=match):
        parse_forget(spec)
