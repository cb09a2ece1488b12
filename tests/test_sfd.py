"""SFD: the one-step process, the SiD losses and their wiring, data-freeness, a tiny distillation."""

import pytest
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from genunlearn.errors import GenUnlearnError
from genunlearn.forget.request import ForgetRequest
from genunlearn.generative.model import GenerativeModel
from genunlearn.methods import get_method
from genunlearn.methods.lifecycle import Snapshots
from genunlearn.methods.sfd import sid_loss, sid_terms
from genunlearn.processes import build_process
from genunlearn.processes.one_step import OneStep
from genunlearn.models import build_network
from genunlearn.processes.diffusion import Diffusion

FORGET = ForgetRequest.of_classes(3)
TINY_NET = {"_class_name": "MLPNet", "dim": 64, "hidden": 128, "depth": 2}


@pytest.fixture(scope="module")
def teacher():
    """An untrained small digits DDPM: enough for shapes, wiring, I/O and errors (no training)."""
    from genunlearn.data import load_dataset

    torch.manual_seed(0)
    net = build_network({**TINY_NET, "cond_vocab": (10,)})
    return GenerativeModel(net, Diffusion(), load_dataset("digits").meta(), {"task": "digits", "model": "diffusion"})


class GaussianClasses(ModelMixin, ConfigMixin):
    """Exact ε-predictor of x_0 ~ N(μ_c, s² I) per class (μ trainable): a teacher whose class regions
    are known, so a tiny distillation can be judged by the nearest class mean."""

    @register_to_config
    def __init__(self, dim: int = 64, cond_vocab: tuple = (10,), s: float = 0.2):
        super().__init__()
        self.mu = torch.nn.Parameter(
            torch.randn(cond_vocab[0] + 1, dim, generator=torch.Generator().manual_seed(3)).sign() * 0.5
        )
        self.alphas_cumprod = Diffusion().alphas_cumprod

    def forward(self, x, t, cond):
        ab = self.alphas_cumprod[(t * 1000).round().long()].view(-1, 1)
        a, b, s2 = ab.sqrt(), (1 - ab).sqrt(), self.config.s**2
        mu, y = self.mu[cond[:, 0]], x.flatten(1)
        x0 = mu + a * s2 / (ab * s2 + b**2) * (y - a * mu)
        return ((y - a * x0) / b).view_as(x)


class NoData:
    """Raises on any access: SFD must not read images, labels or statistics."""

    def __getattribute__(self, name):
        raise AssertionError(f"SFD read data.{name}")

    def __len__(self):
        raise AssertionError("SFD read len(data)")


def sfd(**kw):
    return get_method("sfd", {"batch_size": 8, "steps": 2, **kw})


class CountingNet(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, 0
        self.config = net.config

    def forward(self, *args):
        self.calls += 1
        return self.net(*args)


# --- process ----------------------------------------------------------------------------------
def test_one_step_is_one_call_deterministic_and_round_trips(teacher, tmp_path):
    model = sfd().unlearn(teacher, FORGET, NoData())
    assert isinstance(model.process, OneStep) and model.info["model"] == "one_step"
    cond = model.cond_for_labels(torch.arange(10).repeat(3))
    a = model.sample(30, cond, generator=torch.Generator().manual_seed(7))
    b = model.sample(30, cond, generator=torch.Generator().manual_seed(7))
    assert a.shape == (30, 1, 8, 8) and torch.equal(a, b)
    counting = CountingNet(model.net)
    model.process.sample(counting, 30, cond, shape=(1, 8, 8))
    assert counting.calls == 1
    model.save_pretrained(tmp_path / "g")
    loaded = GenerativeModel.from_pretrained(tmp_path / "g")
    assert loaded.process.config() == model.process.config() == build_process(model.process.config()).config()
    assert torch.equal(loaded.sample(30, cond, generator=torch.Generator().manual_seed(7)), a)
    with pytest.raises(GenUnlearnError, match="exactly 1 step"):
        loaded.sample(4, cond[:4], steps=50)


def test_generator_input_is_scaled_noise_and_flow_view_is_a_denoiser():
    p = OneStep()
    seen = {}

    def net(x, t, cond):
        seen["x"], seen["t"] = x, t
        return torch.zeros_like(x)

    z = torch.randn(5, 3)
    a, b = p.coef(torch.tensor([440]), 2)
    assert torch.allclose(p.generate(net, z), b * z / a)  # ε = 0: x̂0 = b z / a
    assert torch.allclose(seen["x"], b * z) and torch.allclose(seen["t"], torch.full((5,), 0.44))
    # a flow net whose velocity points exactly at a fixed x0 denoises every VP point to x0
    flow, x0 = OneStep(net_kind="flow"), torch.randn(5, 3)
    t = torch.randint(0, 1000, (5,))
    y = flow.add_noise(x0, t, torch.randn(5, 3))
    exact = lambda x, tau, c: (x0 - x) / (1 - tau[:, None])  # noqa: E731  (straight path to x0)
    assert torch.allclose(flow.denoise(exact, y, t), x0, atol=1e-4)


def test_flow_teacher_distils_into_a_flow_one_step_model(teacher, tmp_path):
    from genunlearn.processes.flow_matching import FlowMatching

    flow = GenerativeModel(teacher.net, FlowMatching(), teacher.data, {"task": "digits", "model": "flow"})
    model = sfd().unlearn(flow, FORGET, NoData())
    assert model.process.net_kind == "flow" and model.info["teacher_model"] == "flow"
    model.save_pretrained(tmp_path / "g")
    x = GenerativeModel.from_pretrained(tmp_path / "g").sample(4, model.cond_for_labels(torch.arange(4)))
    assert x.shape == (4, 1, 8, 8) and torch.isfinite(x).all()


# --- losses -----------------------------------------------------------------------------------
def test_sid_loss_matches_both_forms_and_alpha_one_keeps_only_the_cross_term():
    g = torch.Generator().manual_seed(0)
    r, s, x = (torch.randn(4, 1, 8, 8, generator=g) for _ in range(3))
    omega = (r - x).abs().flatten(1).mean(1)
    for alpha in (1.0, 1.2):
        expanded = ((1 - alpha) * (r - s).pow(2).flatten(1).sum(1) + ((r - s) * (s - x)).flatten(1).sum(1)) / omega
        assert torch.allclose(sid_loss(r, s, x, alpha), expanded, atol=1e-5)
    assert torch.allclose(sid_loss(r, s, x, 1.0), ((r - s) * (s - x)).flatten(1).sum(1) / omega, atol=1e-5)


def test_cross_condition_wiring_and_gradient_through_frozen_inputs(teacher):
    """Teacher ← c_o, fake ← c_f; c_o = c_f gives the retain term; swapping differs; θ gets the
    gradient through the inputs of frozen nets, whose parameters get none."""
    import copy

    p = OneStep()
    phi = copy.deepcopy(teacher.net).requires_grad_(False)
    psi = copy.deepcopy(teacher.net).requires_grad_(False)
    with torch.no_grad():
        for w in psi.parameters():
            w.add_(0.05 * torch.randn_like(w))
    gen = copy.deepcopy(teacher.net)
    g = torch.Generator().manual_seed(0)
    z, t, eps = (
        torch.randn(6, 1, 8, 8, generator=g),
        torch.randint(38, 712, (6,), generator=g),
        torch.randn(6, 1, 8, 8, generator=g),
    )
    c_f, c_o = teacher.cond_for_labels(torch.full((6,), 3)), teacher.cond_for_labels(torch.full((6,), 8))
    x_g = p.generate(gen, z, c_f)
    forget = sid_terms(p, phi, psi, x_g, t, eps, c_f, c_o, 1.2)
    same = sid_terms(p, phi, psi, x_g, t, eps, c_f, c_f, 1.2)
    swapped = sid_terms(p, phi, psi, x_g, t, eps, c_o, c_f, 1.2)
    assert not torch.allclose(forget, same) and not torch.allclose(forget, swapped)
    forget.mean().backward()
    assert all(w.grad is None for w in (*phi.parameters(), *psi.parameters()))
    through = [w.grad.clone() for w in gen.parameters()]
    gen.zero_grad()
    x_g = p.generate(gen, z, c_f)
    with torch.no_grad():  # what rule 3 forbids: r, s without the input path
        x_t = p.add_noise(x_g, t, eps)
        r, s = p.denoise(phi, x_t, t, c_o), p.denoise(psi, x_t, t, c_f)
    sid_loss(r, s, x_g, 1.2).mean().backward()
    assert any(not torch.allclose(a, w.grad) for a, w in zip(through, gen.parameters()))


# --- the method -------------------------------------------------------------------------------
def test_data_free_and_seeded_runs_are_bit_identical(teacher):
    a = sfd(override_mode="random").unlearn(teacher, FORGET, NoData())
    b = sfd(override_mode="random").unlearn(teacher, FORGET, NoData())
    assert all(torch.equal(x, y) for x, y in zip(a.net.state_dict().values(), b.net.state_dict().values()))
    assert a.info["unlearn"]["data_free"] and a.info["unlearn"]["retained_classes"] == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert a.info["unlearn"]["override"] == "random"
    info = sfd().unlearn(teacher, FORGET, NoData()).info["unlearn"]
    assert (
        info["override"] == "fixed 8" and info["teacher_guidance"] == teacher.process.guidance
    )  # digits default; teacher's sampler guidance


def test_tiny_distillation_moves_forget_prompt_to_the_override(teacher):
    """Judged by the nearest class mean: forget-prompt samples leave class 3 for class 8 as
    iterations go on, while a retained class stays where it was."""
    exact = GenerativeModel(GaussianClasses(), Diffusion(), teacher.data, teacher.info)
    mu = exact.net.mu.detach()[:10]

    def share(m, label, target):
        x = m.sample(200, m.cond_for_labels(torch.full((200,), label)), generator=torch.Generator().manual_seed(1))
        return (torch.cdist(x.flatten(1), mu).argmin(1) == target).float().mean().item()

    snaps = {}
    steps = (0, 5, 20, 60)
    model = sfd(steps=60, batch_size=16, lr_gen=2e-2, lr_fake=2e-2, ema_decay=None, guidance=1.0).unlearn(
        exact, FORGET, NoData(), callbacks=(Snapshots(lambda k, m: snaps.update({k: m}), steps=steps),)
    )
    assert snaps[60] is model
    rates = [share(snaps[k], 3, 3) for k in steps]
    assert rates[0] == 1.0 and rates[-1] == 0.0 and rates == sorted(rates, reverse=True), rates
    assert share(model, 3, 8) == 1.0 and share(model, 5, 5) == 1.0


def test_classifier_override_never_picks_a_forget_class(teacher, tmp_path):
    from genunlearn.methods.sfd import Overrides
    from genunlearn.classify.model import ClassifierModel

    clf = build_network(
        {"_class_name": "ConvClassifier", "in_channels": 1, "channels": (4,), "heads": (10,), "feature_dim": 8}
    )
    with torch.no_grad():
        clf.head.weight.zero_()
        clf.head.bias.copy_(torch.tensor([0, 0, 0, 9, 0, 0, 5, 0, 0, 0.0]))  # favourite: the forget class 3, then 6
    ClassifierModel(clf, teacher.data).save_pretrained(tmp_path / "clf")
    kw = {"override_mode": "classifier", "override_classifier": str(tmp_path / "clf")}
    pick = Overrides(sfd(**kw).config, teacher, [3], [c for c in range(10) if c != 3])
    assert pick(4, torch.Generator(), lambda: torch.zeros(4, 1, 8, 8)).tolist() == [6] * 4
    assert sfd(**kw).unlearn(teacher, FORGET, NoData()).info["unlearn"]["override"] == "classifier"


def test_plain_distillation_never_computes_the_forget_term(teacher):
    logs = []
    m = sfd(distill_only=True).unlearn(teacher, FORGET, NoData(), callbacks=(lambda k, rec: logs.append(rec),))
    assert m.info["unlearn"]["forget_classes"] == [] and m.info["unlearn"]["override"] is None
    assert logs and all(
        "gen_forget" not in rec and "fake/loss" in rec for rec in logs
    )  # the fake score is an objective of the loop
    logs.clear()
    sfd(lambda_fake_forget=0.0, lambda_gen_forget=0.0).unlearn(
        teacher, FORGET, NoData(), callbacks=(lambda k, rec: logs.append(rec),)
    )
    assert all("gen_forget" not in rec for rec in logs)


@pytest.mark.parametrize(
    "request_, kw, message",
    [
        (ForgetRequest("concept", concept="3", anchor="digit"), {}, "does not accept 'concept'"),
        (ForgetRequest.of_classes(*range(10)), {}, "every class"),
        (FORGET, {"override": 3}, "itself being forgotten"),
        (FORGET, {"override": "eleven"}, "unknown class"),
        (FORGET, {"override_mode": "random", "override": 8}, "only applies to override_mode=fixed"),
        (FORGET, {"t_max": 2000}, "exceeds"),
    ],
)
def test_bad_requests_fail_clearly(teacher, request_, kw, message):
    with pytest.raises(GenUnlearnError, match=message):
        sfd(**kw).unlearn(teacher, request_, NoData())


def test_bad_configs_and_models_fail_clearly(teacher):
    for kw, message in [
        ({"override_mode": "nearest"}, "override_mode"),
        ({"override_mode": "classifier"}, "override_classifier"),
        ({"lambda_fake_forget": 0.0}, "lambda_fake_forget"),
        ({"t_min": 800}, "t_min < t_max"),
        ({"alpha": "x"}, "not a float"),
    ]:
        with pytest.raises(GenUnlearnError, match=message):
            get_method("sfd", kw)
    distilled = sfd().unlearn(teacher, FORGET, NoData())
    with pytest.raises(GenUnlearnError, match="not 'one_step'"):
        sfd().unlearn(distilled, FORGET, NoData())
    with pytest.raises(GenUnlearnError, match="no training loss"):
        distilled.process.loss(distilled.net, torch.zeros(1, 1, 8, 8))


def test_cli_unlearn_with_override_then_sample(teacher, tmp_path, capsys):
    import numpy as np

    from genunlearn.cli import main

    teacher.save_pretrained(tmp_path / "teacher")
    out = tmp_path / "sfd"
    main(
        [
            "unlearn",
            str(tmp_path / "teacher"),
            "--method",
            "sfd",
            "--forget",
            "classes=3",
            "--override",
            "5",
            "--steps",
            "2",
            "--out",
            str(out),
        ]
    )
    assert GenerativeModel.from_pretrained(out).info["unlearn"]["override"] == "fixed 5"
    main(["sample", str(out), "--n", "6", "--labels", "3", "--out", str(tmp_path / "s.npz")])
    assert np.load(tmp_path / "s.npz")["images"].shape == (6, 8, 8, 1)
    with pytest.raises(SystemExit) as e:
        main(
            [
                "unlearn",
                str(tmp_path / "teacher"),
                "--method",
                "salun",
                "--forget",
                "classes=3",
                "--override",
                "5",
                "--out",
                str(tmp_path / "x"),
            ]
        )
    assert e.value.code == 2 and "unknown config key 'override'" in capsys.readouterr().err
