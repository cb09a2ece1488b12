"""SalUn: the saliency mask, frozen weights that never move, and the diffusion methods (tiny runs)."""

import copy

import pytest
import torch
from torch import nn

from genunlearn.data import load_dataset
from genunlearn.data.dataset import Attribute, Dataset
from genunlearn.errors import GenUnlearnError
from genunlearn.forget.request import ForgetRequest
from genunlearn.methods import get_method
from genunlearn.methods.esd_conditions import forget_conditions
from genunlearn.methods.saliency import mask_density, saliency_mask, top_fraction_mask
from genunlearn.methods.saliency import diffusion_saliency


class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.big = nn.Parameter(torch.zeros(40, 10))
        self.small = nn.Parameter(torch.zeros(61))


def test_mask_density_is_exact_and_ranking_is_global():
    g = torch.Generator().manual_seed(0)
    net = TwoLayers()
    coef_big, coef_small = 100 * torch.randn(40, 10, generator=g), torch.randn(61, generator=g)

    def loss(m, _batch):
        return (m.big * coef_big).sum() + (m.small * coef_small).sum()

    n = 400 + 61
    for ratio in (0.1, 0.5, 0.77, 1.0):
        mask = saliency_mask(net, loss, range(2), ratio)
        assert int(sum(m.sum() for m in mask.values())) == round(ratio * n)
        assert abs(mask_density(mask) - ratio) <= 1 / n
    mask = saliency_mask(net, loss, range(2), 0.5)
    assert mask["big"].mean() > 0.55 and mask["small"].sum() == 0  # one ranking: the large-scale layer wins


def test_mask_sums_gradients_before_the_magnitude():
    net = TwoLayers()
    sign = torch.ones(40, 10)
    sign[:20] = -1  # rows 0..19 flip sign between the two batches: their summed gradient is 0

    def loss(m, b):
        return (m.big * (sign if b else 1) * 5).sum() + m.small.sum()

    mask = saliency_mask(net, loss, range(2), 0.5)
    assert mask["big"][:20].sum() == 0 and mask["big"][20:].all() and mask["small"].sum() == 30  # 230 kept


def test_ties_and_bad_ratio():
    mask = top_fraction_mask({"a": torch.ones(3), "b": torch.ones(3)}, 0.5)
    assert mask["a"].tolist() == [1, 1, 1] and mask["b"].sum() == 0  # stable: ties go to earlier entries
    with pytest.raises(GenUnlearnError, match="mask ratio"):
        top_fraction_mask({"a": torch.ones(3)}, 0.0)


# --- class-conditional diffusion -------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def tiny_diffusion(digits):
    """A small class-conditional DDPM on 8×8 digits, trained just enough to tell classes apart."""
    from genunlearn.generative.model import GenerativeModel
    from genunlearn.models.mlp import MLPNet
    from genunlearn.processes.diffusion import Diffusion
    from genunlearn.training import TrainConfig, train

    torch.manual_seed(0)
    net = MLPNet(dim=64, hidden=128, depth=2, cond_vocab=(10,))
    process = Diffusion(steps=10)
    x, c = digits.x, digits.cond()

    def step_loss(m, g):
        i = torch.randint(len(x), (64,), generator=g)
        return process.loss(m, x[i], c[i], generator=g).mean()

    train(net, step_loss, TrainConfig(steps=200, lr=3e-3), progress=False)
    return GenerativeModel(net, process, digits.meta(), {"task": "digits", "model": "diffusion"})


def class_losses(model, data, cls, cond_cls=None, n=300):
    """Mean denoising loss on images of ``cls`` conditioned on ``cond_cls`` (fixed noise and t)."""
    g = torch.Generator().manual_seed(1)
    x = data.x[data.labels == cls][:n]
    cond = torch.full((x.shape[0], 1), cls if cond_cls is None else cond_cls)
    t = model.process.sample_timesteps(x.shape[0], g)
    with torch.no_grad():
        return float(model.process.loss(model.net, x, cond, t=t, generator=g, drop_cond=False).mean())


def retain_loss(model, data):
    return sum(class_losses(model, data, k) for k in range(10) if k != 3) / 9


def test_salun_diffusion_forgets_and_masked_weights_never_move(tiny_diffusion, digits):
    request = ForgetRequest.of_classes(3)
    method = get_method(
        "salun", {"steps": 80, "lr": 2e-3, "batch_size": 32, "mask_batch_size": 64}, family="generative"
    )
    out = method.unlearn(tiny_diffusion, request, digits)
    assert out.info["unlearn"]["mask_density"] == pytest.approx(0.5, abs=1e-6)
    forget, _ = digits.split(request)
    mask = diffusion_saliency(
        copy.deepcopy(tiny_diffusion.net),
        tiny_diffusion.process,
        forget,
        method.config,
        torch.Generator().manual_seed(0),
        guidance=method.config.mask_guidance,
    )
    before, after = dict(tiny_diffusion.net.named_parameters()), dict(out.net.named_parameters())
    for k, m in mask.items():  # Adam: frozen coordinates bit-identical, salient ones moved
        assert torch.equal(after[k][m == 0], before[k][m == 0])
    assert sum(int((after[k] != before[k]).sum()) for k in mask) > 0.3 * sum(m.numel() for m in mask.values())

    # the forget metric moves: label "3" loses its denoising advantage over "4" on images of 3
    def advantage(model):
        return class_losses(model, digits, 3, cond_cls=4) - class_losses(model, digits, 3)

    assert advantage(out) < 0.5 * advantage(tiny_diffusion)
    assert retain_loss(out, digits) < 1.15 * retain_loss(tiny_diffusion, digits)


def test_beta_zero_damages_retained_classes(tiny_diffusion, digits):
    request = ForgetRequest.of_classes(3)
    cfg = {"steps": 60, "lr": 1e-3, "batch_size": 32, "mask_ratio": 1.0}
    with_retain = get_method("random_label", cfg, family="generative").unlearn(tiny_diffusion, request, digits)
    without = get_method("random_label", {**cfg, "beta": 0.0}, family="generative").unlearn(
        tiny_diffusion, request, digits
    )
    assert retain_loss(without, digits) > 1.1 * retain_loss(with_retain, digits)
    assert "mask_density" not in with_retain.info["unlearn"]  # ratio 1: plain random labelling


def test_esd_runs_and_targets_negative_guidance(tiny_diffusion, digits):
    request = ForgetRequest.of_classes(3)
    out = get_method("esd", {"steps": 4, "batch_size": 8, "sample_steps": 5}).unlearn(tiny_diffusion, request, digits)
    assert out.info["unlearn"]["conditions"] == [[3]]
    assert any(not torch.equal(a, b) for a, b in zip(out.net.parameters(), tiny_diffusion.net.parameters()))


def test_esd_conditions_for_prompted_data():
    attrs = (Attribute("shape", ("circle", "square")), Attribute("colour", ("red", "blue")))
    combos = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]]).repeat(3, 1)
    data = Dataset("toyshapes", torch.zeros(12, 1, 4, 4), combos[:, 0].clone(), attrs, attrs=combos)
    rows = forget_conditions(data, ForgetRequest("concept", concept="red", anchor="colour"))
    assert rows.tolist() == [[0, 0], [1, 0], [2, 0]]  # every prompt with "red", and "red" alone


def test_bad_requests_fail_clearly(tiny_diffusion, digits):
    salun = get_method("salun", family="generative")
    with pytest.raises(GenUnlearnError, match="does not accept 'concept'"):
        salun.unlearn(tiny_diffusion, ForgetRequest("concept", concept="3", anchor="digit"), digits)
    with pytest.raises(GenUnlearnError, match="unknown class"):
        salun.unlearn(tiny_diffusion, ForgetRequest.of_classes(11), digits)
    with pytest.raises(GenUnlearnError, match="does not accept 'samples'"):
        get_method("esd").unlearn(tiny_diffusion, ForgetRequest("samples", samples=(1, 2)), digits)
    with pytest.raises(GenUnlearnError, match="mask_ratio"):
        get_method("salun", {"mask_ratio": 0}, family="generative")
    from dataclasses import replace

    uncond = replace(tiny_diffusion, net=type(tiny_diffusion.net)(dim=64, hidden=16, depth=1))
    with pytest.raises(GenUnlearnError, match="class-conditional"):
        salun.unlearn(uncond, ForgetRequest.of_classes(3), digits)


def test_cli_unlearn_via_registry(tiny_diffusion, tmp_path, capsys):
    from genunlearn.cli import main

    tiny_diffusion.save_pretrained(tmp_path / "base")
    with pytest.raises(SystemExit) as e:
        main(
            [
                "unlearn",
                str(tmp_path / "base"),
                "--method",
                "salun",
                "--forget",
                "classes=3",
                "--out",
                str(tmp_path / "u"),
                "--steps",
                "3",
            ]
        )
        raise SystemExit(0)
    assert e.value.code == 0 and (tmp_path / "u" / "config.json").is_file()
    capsys.readouterr()  # the first run's stage lines
    with pytest.raises(SystemExit) as e:
        main(
            [
                "unlearn",
                str(tmp_path / "base"),
                "--method",
                "salun",
                "--forget",
                "concept=3;anchor=digit",
                "--out",
                str(tmp_path / "v"),
            ]
        )
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith("error:") and "\n" not in err and not (tmp_path / "v").exists()
