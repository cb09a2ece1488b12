import math

import pytest
import torch

from genunlearn.data import canvas, load_dataset
from genunlearn.data.dataset import cond_to_prompt
from genunlearn.errors import GenUnlearnError
from genunlearn.forget.request import parse_forget


def draw(obj, style, colour, n=64, seed=0):
    ids = [torch.full((n,), i) for i in (obj, style, colour)]
    return canvas.render(*ids, torch.Generator().manual_seed(seed))


def test_deterministic_and_balanced():
    d = load_dataset("canvas", "test")
    assert d.x.shape == (2016, 3, 32, 32) and d.x.min() >= -1 and d.x.max() <= 1
    assert torch.equal(
        canvas.render(*d.attrs[:50].unbind(1), torch.Generator().manual_seed(1)),
        canvas.render(*d.attrs[:50].unbind(1), torch.Generator().manual_seed(1)),
    )
    assert torch.equal(
        torch.unique(d.attrs, dim=0, return_counts=True)[1], torch.full((288,), 7)
    )  # every combination, equally often
    assert not torch.equal(d.x[:100], load_dataset("canvas", "val").x[:100])  # splits drawn from their own seeds
    assert d.cond_vocab == (8, 6, 6) and torch.equal(d.labels, d.attrs[:, 0])


@pytest.mark.parametrize("colour", range(6))
def test_colour_is_drawn(colour):
    x = (draw(0, 0, colour) + 1) / 2  # solid circles
    painted = x.amax(1, keepdim=True) > 0.5
    mean = (x * painted).sum((0, 2, 3)) / painted.sum()
    assert torch.allclose(mean, canvas.RGB[colour] * 0.9, atol=0.08)  # brightness is 0.8–1.0


def test_style_is_drawn():
    painted = {s: ((draw(0, k, 2) + 1) / 2)[:, 1].gt(0.5).float().mean((1, 2)) for k, s in enumerate(canvas.STYLES)}
    assert (painted["solid"] > 2 * painted["outlined"]).all()  # same circles: the outline paints a band only
    for s in ("striped", "checkered"):
        assert (painted[s] / painted["solid"]).mean().sub(0.5).abs() < 0.1  # half the area
    assert (painted["dotted"] < painted["striped"]).all() and (painted["crosshatched"] < painted["solid"]).all()
    # the same discs (same seed, same jitter): the outline leaves the inside dark, the other fills keep it lit
    lit = {s: ((draw(0, k, 2, seed=5) + 1) / 2)[:, 1].gt(0.15).float().sum((1, 2)) for k, s in enumerate(canvas.STYLES)}
    assert all((lit[s] > 1.5 * lit["outlined"]).all() for s in canvas.STYLES if s != "outlined")


def test_objects_have_their_area():
    """Drawn area (pixels) = the object's area in units of its half-extent r × r² (same seed: same r)."""
    r = 32 * (0.28 + 0.12 * torch.rand(64, generator=torch.Generator().manual_seed(7)))
    exact = {
        "circle": math.pi * 0.95**2,
        "square": 1.6**2,
        "triangle": 2.0 * 1.8 / 2,
        "diamond": 2 * 0.75,
        "cross": 2 * 0.72 * 2 - 0.72**2,
        "star": 10 * 0.45 * math.sin(math.pi / 5) / 2,
    }
    area = {
        o: float((draw(k, 0, 0, seed=7)[:, 0] > 0).float().sum((1, 2)).mean()) for k, o in enumerate(canvas.OBJECTS)
    }
    for o, a in exact.items():
        assert area[o] == pytest.approx(a * float(r.pow(2).mean()), rel=0.04), o
    assert area["star"] < area["crescent"] < area["triangle"] < area["heart"] < area["circle"]


def test_concept_words_resolve():
    d = load_dataset("canvas", "test")
    assert d.prompt_to_cond("a striped red circle").tolist() == [0, 1, 0]
    assert d.prompt_to_cond("a red object").tolist() == [8, 6, 0]
    assert cond_to_prompt(d.attributes, [7, 5, 4]) == "a crosshatched blue crescent"
    for spec, attr, value in (
        ("concept=circle;anchor=object", 0, 0),
        ("concept=striped;anchor=style", 1, 1),
        ("concept=red;anchor=colour", 2, 0),
    ):
        forget, retain = d.split(parse_forget(spec))
        assert (forget.attrs[:, attr] == value).all() and (retain.attrs[:, attr] != value).all()
    with pytest.raises(GenUnlearnError, match=r"^unknown concept word 'disk'; known words: .*striped"):
        d.split(parse_forget("concept=disk;anchor=object"))


def test_captions_name_the_row():
    for row in [(0, 1, 0), (5, 4, 3), (7, 5, 5)]:
        words = canvas._slot_words(row, heldout=False)
        train = canvas.captions(row)
        assert cond_to_prompt(canvas.ATTRIBUTES, row) in train and len(train) >= 10
        for c in train:  # every training caption names the object, the style and the colour with training words
            assert (
                any(w in c for w in words["o"])
                and any(w in c for w in words["s"] + words["w"])
                and any(w in c for w in words["c"])
            )
    assert "a red round shape with stripes" in canvas.captions((0, 1, 0))
    assert "an outlined green star" in canvas.captions((5, 4, 2))
    held = canvas.captions((0, 1, 0), "heldout")
    assert {"a striped disk in red", "a banded crimson disk", "a circle in red with stripes"} <= set(held)
    assert canvas.captions((8, 6, 0)) == (
        "a red object",
        "a red shape",
        "a shape in red",
        "an image of a red object",
        "an image of a red shape",
        "an object in red",
    )
    assert canvas.captions((8, 6, 6)) == canvas.captions((8, 6, 6), "heldout") == ("",)  # the unconditional input


def test_heldout_captions_disjoint_and_deterministic():
    rows = [(o, s, c) for o in range(9) for s in range(7) for c in range(7) if (o, s, c) != (8, 6, 6)]
    train = {c for r in rows for c in canvas.captions(r)}
    held = {c for r in rows for c in canvas.captions(r, "heldout")}
    assert train and held and not train & held
    assert not any(
        w in c.split() for c in train for w in ("disk", "crimson", "banded", "figure")
    )  # held-out synonyms only held out
    cond = torch.tensor([[0, 1, 0], [3, 2, 1], [8, 6, 6]] * 20)
    a = canvas.sample_captions(cond, torch.Generator().manual_seed(0))
    assert a == canvas.sample_captions(cond, torch.Generator().manual_seed(0))
    assert all(c in canvas.captions(r) for c, r in zip(a, cond.tolist())) and len(set(a[::3])) > 5
    assert all(
        c in canvas.captions(r, "heldout")
        for c, r in zip(canvas.sample_captions(cond, torch.Generator(), "heldout"), cond.tolist())
    )


@pytest.mark.parametrize(
    "row,split,match",
    [((0, 1), "train", "canvas row"), ((9, 0, 0), "train", "canvas row"), ((0, 0, 0), "test", "unknown caption split")],
)
def test_caption_errors(row, split, match):
    with pytest.raises(GenUnlearnError, match=match):
        canvas.captions(row, split)


def test_judge_reads_every_attribute():
    from genunlearn.eval.judge import JUDGE_TRAIN, judge_config

    net, train = judge_config("canvas", load_dataset("canvas", "test"))
    assert net["heads"] == [8, 6, 6] and net["channels"] == [32, 64, 128] and train["steps"] == 1500
    assert judge_config("shapes", load_dataset("shapes", "test")) == (
        {"_class_name": "ConvClassifier", "channels": [32, 64], "feature_dim": 128, "in_channels": 3, "heads": [4, 4]},
        JUDGE_TRAIN,
    )


def test_data_command(cli):
    code, out, _ = cli("data", "canvas")
    assert code == 0 and "canvas: images of shape 3×32×32; 11520 train, 2016 test" in out
    assert "crosshatched" in out and "magenta" in out
    code, _, err = cli(
        "train", "--task", "canvas", "--model", "sd", "--forget", "concept=disk;anchor=object", "--out", "x"
    )
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: unknown concept word 'disk'")


def test_training_draws_a_caption_per_row_after_dropout():
    """The SD recipe trains canvas on every phrasing: a condition row becomes one of its own training
    captions (a dropped attribute: a caption of what is left), drawn by the loop's generator."""
    from genunlearn.generative.sd_recipe import CaptionBank

    class Net:  # the text view's row numbering (mixed radix, vocab + 1 per attribute)
        config = type("C", (), {"cond_vocab": (8, 6, 6)})

        def row_index(self, cond, n, device):
            return (cond[:, 0] * 7 + cond[:, 1]) * 7 + cond[:, 2]

    bank = CaptionBank(canvas.ATTRIBUTES, canvas.captions)
    rows = torch.tensor([[0, 1, 0]] * 200 + [[8, 6, 0]] * 50 + [[8, 6, 6]] * 5)
    picked = bank.sample(Net(), rows, torch.Generator().manual_seed(0))
    assert (picked[:, 1:] == torch.tensor([6, 6])).all() and (picked[:, 0] < 0).all()
    texts = [bank.texts[-int(j) - 1] for j in picked[:, 0]]
    assert set(texts[:200]) == set(canvas.captions((0, 1, 0)))  # 200 draws reach all 18 phrasings
    assert set(texts[200:250]) <= set(canvas.captions((8, 6, 0))) and set(texts[250:]) == {""}
    assert torch.equal(picked, bank.sample(Net(), rows, torch.Generator().manual_seed(0)))
    assert set(bank.heldout) & set(bank.texts) == {""}  # only the unconditional input is shared


def test_tokenizer_holds_held_out_captions_untruncated(tmp_path):
    from genunlearn.interop.diffusers.text_unet import check_prompts
    from genunlearn.generative.sd_recipe import build_tokenizer

    train = ["a striped red circle", "a red circle with stripes", "a red three-sided shape"]
    held = ["a picture of a red circle, striped", "striped and red: a disk"]
    tok = build_tokenizer(train, tmp_path, reserve=held)
    check_prompts(tok, held + train)  # no prompt is cut
    assert all(
        len(tok(p).input_ids) == len(p.replace("-", " - ").split()) + 2 for p in train
    )  # a training word is one token


def test_paraphrases_are_held_out_templates_in_training_words():
    from genunlearn.data import canvas_paraphrases

    para = canvas_paraphrases.captions((0, 1, 0), "paraphrase")
    assert "striped and red: a circle" in para and "a circle in red with stripes" in para
    assert not set(para) & set(canvas.captions((0, 1, 0))) and set(para) <= set(canvas.captions((0, 1, 0), "heldout"))
    assert not any(w in c for c in para for w in ("disk", "banded", "crimson"))  # no held-out synonym
    assert canvas_paraphrases.captions((0, 1, 0), "heldout") == canvas.captions((0, 1, 0), "heldout")
