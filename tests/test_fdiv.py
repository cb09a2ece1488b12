"""f-DMU concept erasure (methods/fdiv.py, methods/divergences.py): closed forms against quadrature,
the KL = MSE/2 identity, loss decrease on a tiny model, the f-GAN pieces, errors and the CLI."""

import math

import pytest
import torch

from genunlearn.errors import GenUnlearnError
from genunlearn.forget.request import ForgetRequest
from genunlearn.methods import divergences, get_method
from genunlearn.methods.fdiv import closed_loss, kl_weights, make_anchor_pool, prompt_pairs


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks gain nothing from threads; on a shared 2-core machine one thread is much faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- closed forms and conjugates on 1D Gaussians -------------------------------------------------
GRID = torch.linspace(-40, 40, 400_001, dtype=torch.float64)


def gauss(mu, s):
    return torch.exp(-((GRID - mu) ** 2) / (2 * s * s)) / (s * math.sqrt(2 * math.pi))


def integrate(y):
    return float(torch.trapezoid(y, GRID))


def alpha_f(a):
    return lambda u: (u**a - 1 - a * (u - 1)) / (a * (a - 1))


F = {  # generators f(u), D_f(P||Q) = ∫ q f(p/q)
    "kl": lambda u: u * torch.log(u),
    "jeffreys": lambda u: (u - 1) * torch.log(u),
    "hellinger": lambda u: (torch.sqrt(u) - 1) ** 2 / 2,
    "chi2": lambda u: (u - 1) ** 2,
    "alpha:0.5": alpha_f(0.5),
    "alpha:1.5": alpha_f(1.5),
    "alpha:2": alpha_f(2.0),
}


@pytest.mark.parametrize("name", list(F))
@pytest.mark.parametrize("mu1,mu2,s", [(0.0, 0.7, 1.0), (1.0, -0.5, 1.5), (0.2, 0.3, 0.5)])
def test_closed_form_matches_quadrature(name, mu1, mu2, s):
    p, q = gauss(mu1, s), gauss(mu2, s)
    keep = q > 1e-300
    numeric = integrate(torch.where(keep, q * F[name](p / q.clamp_min(1e-300)), torch.zeros_like(q)))
    k = torch.tensor((mu1 - mu2) ** 2 / (2 * s * s), dtype=torch.float64)
    closed = float(divergences.closed_form(name)(k))
    assert abs(closed - numeric) <= 1e-4 * abs(numeric)


F_GAN = {  # f and its derivative: T* = f'(p/q) attains the f-GAN bound E_P[T] − E_Q[f*(T)] = D_f
    "kl": (lambda u: u * torch.log(u), lambda u: 1 + torch.log(u)),
    "rkl": (lambda u: -torch.log(u), lambda u: -1 / u),
    "hellinger": (lambda u: (torch.sqrt(u) - 1) ** 2, lambda u: 1 - 1 / torch.sqrt(u)),
    "js": (lambda u: u * torch.log(u) - (u + 1) * torch.log((u + 1) / 2), lambda u: torch.log(2 * u / (u + 1))),
    "chi2": (lambda u: (u - 1) ** 2, lambda u: 2 * (u - 1)),
    "tv": (lambda u: 0.5 * (u - 1).abs(), lambda u: 0.5 * torch.sign(u - 1)),
}


@pytest.mark.parametrize("name", list(F_GAN))
def test_fgan_conjugate_attains_divergence(name):
    """The table's conjugate f* is the right one: at the optimal critic the bound equals D_f."""
    grid_mask = GRID.abs() < 12  # stay where both densities are far from underflow
    x = GRID[grid_mask]
    p, q = gauss(0.0, 1.0)[grid_mask], gauss(0.8, 1.0)[grid_mask]
    f, df = F_GAN[name]
    u = p / q
    t = df(u)
    bound = float(torch.trapezoid(p * t - q * divergences.variational(name).conjugate(t), x))
    exact = float(torch.trapezoid(q * f(u), x))
    assert abs(bound - exact) <= 1e-3 * exact + 1e-5


@pytest.mark.parametrize(
    "name,inside",
    [
        ("rkl", lambda t: t < 0),
        ("hellinger", lambda t: t < 1),
        ("js", lambda t: t < math.log(2)),
        ("tv", lambda t: t.abs() <= 0.5),
        ("kl", lambda t: torch.isfinite(t)),
        ("chi2", lambda t: torch.isfinite(t)),
    ],
)
def test_activations_keep_conjugate_domain(name, inside):
    fgan = divergences.variational(name)
    v = torch.linspace(-30, 30, 601, dtype=torch.float64)
    assert inside(fgan.activation(v)).all()
    assert torch.isfinite(fgan.conjugate(fgan.activation(v.float()))).all()


def test_bad_divergence_names():
    for name in ("foo", "alpha:x", "alpha:1", "alpha:0", "tv"):
        with pytest.raises(GenUnlearnError):
            divergences.closed_form(name)
    with pytest.raises(GenUnlearnError, match="unknown variational"):
        divergences.variational("jeffreys")
    with pytest.raises(GenUnlearnError, match="concept_ablation is the closed-form mse"):
        get_method("concept_ablation", {"divergence": "hellinger"})


# --- the losses on a tiny model --------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    """An untrained tiny ConvUNet DDPM with the shapes attributes on 8×8 images."""
    from genunlearn.data.shapes import ATTRIBUTES
    from genunlearn.generative.model import GenerativeModel
    from genunlearn.models.unet import ConvUNet
    from genunlearn.processes.diffusion import Diffusion

    torch.manual_seed(0)
    net = ConvUNet(in_channels=3, base_channels=8, channel_mult=(1,), emb_dim=16, cond_vocab=(4, 4)).eval()
    meta = {
        "name": "shapes",
        "kind": "images",
        "sample_shape": [3, 8, 8],
        "attributes": [{"name": a.name, "values": list(a.values)} for a in ATTRIBUTES],
    }
    return GenerativeModel(net, Diffusion(steps=3), meta, {"task": "shapes", "model": "diffusion"})


REQUEST = ForgetRequest("concept", concept="circle", anchor="shape")


@pytest.fixture(scope="module")
def pool(tiny):
    return make_anchor_pool(tiny, prompt_pairs(tiny.attributes, "circle", "shape"), 6, steps=2, guidance=2.0, seed=0)


def test_prompt_pairs_keep_colour(tiny):
    pairs = prompt_pairs(tiny.attributes, "circle", "square")
    assert pairs.target.tolist() == [[0, c] for c in range(5)]
    assert pairs.anchor.tolist() == [[1, c] for c in range(5)]
    assert prompt_pairs(tiny.attributes, "circle", "shape").anchor[:, 0].tolist() == [4] * 5  # shape unspecified


def test_kl_is_half_mse_with_parallel_gradients(tiny, pool):
    from genunlearn.methods.fdiv import FDivConfig

    net, process = tiny.net, tiny.process
    t = torch.tensor([5, 300, 700, 999, 40, 500])
    xt = process.add_noise(pool.x[:6], t, torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(1)))
    target = process.predict_eps(net, xt, t, pool.anchor[:6]).detach()
    losses, grads = {}, {}
    for name in ("mse", "kl"):
        net.zero_grad()
        per, _, _ = closed_loss(
            FDivConfig(divergence=name),
            process.predict_eps(net, xt, t, pool.target[:6]),
            target,
            t,
            kl_weights(process),
        )
        losses[name] = per
        per.mean().backward()
        grads[name] = torch.cat([p.grad.flatten() for p in net.parameters()])
    assert torch.equal(losses["kl"], losses["mse"] / 2)
    assert torch.allclose(grads["kl"], grads["mse"] / 2, rtol=1e-5, atol=1e-9)
    assert torch.nn.functional.cosine_similarity(grads["kl"], grads["mse"], 0) > 1 - 1e-6


def test_exact_scale_is_the_gaussian_kl(tiny):
    """div_scale=exact: K = ω_t ‖Δε‖² equals ‖μ_Φ − μ_Φ̂‖² / (2β_t) with the DDPM posterior means."""
    process = tiny.process
    ab = process.alphas_cumprod.double()
    t = 123
    alpha = ab[t] / ab[t - 1]
    beta = 1 - alpha
    d_eps = torch.randn(50, dtype=torch.float64)
    d_mu = beta / ((1 - ab[t]).sqrt() * alpha.sqrt()) * d_eps
    assert math.isclose(
        float(kl_weights(process)[t]) * float(d_eps.pow(2).sum()), float(d_mu.pow(2).sum() / (2 * beta)), rel_tol=1e-5
    )


def fixed_objective(name, frozen_net, net, process, pool):
    from genunlearn.methods.fdiv import FDivConfig

    g = torch.Generator().manual_seed(7)
    t = process.sample_timesteps(len(pool.x), g)
    xt = process.add_noise(pool.x, t, torch.randn(pool.x.shape, generator=g))
    with torch.no_grad():
        target = process.predict_eps(frozen_net, xt, t, pool.anchor)
        per, _, _ = closed_loss(
            FDivConfig(divergence=name), process.predict_eps(net, xt, t, pool.target), target, t, kl_weights(process)
        )
    return float(per.mean())


@pytest.mark.parametrize("name", ["mse", "kl", "jeffreys", "hellinger", "chi2", "alpha:0.5", "alpha:2"])
def test_closed_loss_decreases(tiny, pool, name):
    m = get_method("fdiv", {"divergence": name, "lr": 3e-3, "batch_size": 16, "seed": 0})
    out = m.unlearn(tiny, REQUEST, budget=25, anchor_pool=pool)
    before = fixed_objective(name, tiny.net, tiny.net, tiny.process, pool)  # trainable starts as the frozen copy
    assert before > 0
    assert fixed_objective(name, tiny.net, out.net, tiny.process, pool) < 0.5 * before


@pytest.mark.parametrize("name", list(divergences.VARIATIONAL))
def test_variational_runs_and_moves_model(tiny, pool, name):
    logs = []
    m = get_method(
        "fdiv",
        {
            "divergence": name,
            "form": "variational",
            "critic_warmup": 3,
            "critic_conditioning": "xt_t" if name == "js" else "none",
            "lr": 1e-3,
            "batch_size": 8,
        },
    )
    out = m.unlearn(tiny, REQUEST, budget=4, anchor_pool=pool, callbacks=(lambda step, rec: logs.append(rec),))
    assert logs and all(math.isfinite(r["loss"]) and math.isfinite(r["critic/loss"]) for r in logs)
    assert any(not torch.equal(a, b) for a, b in zip(out.net.parameters(), tiny.net.parameters()))


def test_critic_steps_updates_the_critic_k_times_per_model_step(tiny, pool, monkeypatch):
    calls = []
    real = divergences.critic_loss
    monkeypatch.setattr(divergences, "critic_loss", lambda *a: calls.append(1) or real(*a))
    m = get_method(
        "fdiv", {"divergence": "js", "form": "variational", "critic_warmup": 1, "critic_steps": 3, "batch_size": 4}
    )
    m.unlearn(tiny, REQUEST, budget=2, anchor_pool=pool)
    assert len(calls) == 1 + 3 * 2
    with pytest.raises(GenUnlearnError, match="critic_steps"):
        get_method("fdiv", {"form": "variational", "divergence": "js", "critic_steps": 0})


def test_conditioning_group_only_moves_film_and_embeddings(tiny, pool):
    m = get_method("fdiv", {"divergence": "kl", "params": "conditioning"})
    out = m.unlearn(tiny, REQUEST, budget=3, anchor_pool=pool)
    for (n, a), b in zip(out.net.named_parameters(), tiny.net.parameters()):
        moved = not torch.equal(a, b)
        assert moved == (n.startswith("cond.") or ".film." in n), n
    assert out.info["unlearn"]["config"]["lr"] == 1e-3


def test_concept_ablation_is_the_mse_case(tiny, pool):
    a = get_method("concept_ablation").unlearn(tiny, REQUEST, budget=3, anchor_pool=pool)
    b = get_method("fdiv", {"divergence": "mse"}).unlearn(tiny, REQUEST, budget=3, anchor_pool=pool)
    assert all(torch.equal(x, y) for x, y in zip(a.net.parameters(), b.net.parameters()))


def test_seeded_run_is_reproducible_and_generates_its_anchors(tiny):
    cfg = {"divergence": "hellinger", "anchor_images": 11, "anchor_sampler_steps": 2}  # 5 anchor prompts: 2 each
    a = get_method("fdiv", cfg).unlearn(tiny, REQUEST, budget=2)
    b = get_method("fdiv", cfg).unlearn(tiny, REQUEST, budget=2)
    assert a.info["unlearn"]["anchor_images"] == 10
    assert all(torch.equal(x, y) for x, y in zip(a.net.parameters(), b.net.parameters()))


# --- CLI ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_dir(tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("fdiv") / "base"
    tiny.save_pretrained(path)
    return path


FAST = ["--steps", "2", "--set", "anchor_images=2", "--set", "anchor_sampler_steps=2"]


def test_cli_unlearn_hellinger(tiny_dir, tmp_path, cli):
    from genunlearn.generative.model import GenerativeModel

    code, out, err = cli(
        "unlearn",
        str(tiny_dir),
        "--method",
        "fdiv",
        "--divergence",
        "hellinger",
        "--concept",
        "circle",
        "--anchor",
        "shape",
        "--out",
        str(tmp_path / "u"),
        *FAST,
    )
    assert code == 0, err
    model = GenerativeModel.from_pretrained(tmp_path / "u")
    assert (
        model.info["unlearn"]["config"]["divergence"] == "hellinger"
        and model.info["forget"] == "concept=circle;anchor=shape"
    )


@pytest.mark.parametrize(
    "args,match",
    [
        (["--method", "fdiv", "--concept", "circel", "--anchor", "shape"], "unknown concept word 'circel'"),
        (["--method", "fdiv", "--concept", "circle", "--anchor", "blob"], "unknown concept word 'blob'"),
        (["--method", "fdiv", "--concept", "circle", "--anchor", "red"], "anchor 'red' must be a shape word"),
        (["--method", "fdiv", "--concept", "circle", "--anchor", "circle"], "is the concept itself"),
        (
            ["--method", "fdiv", "--divergence", "tv", "--concept", "circle", "--anchor", "shape"],
            "unknown closed-form divergence 'tv'",
        ),
        (["--method", "fdiv", "--forget", "classes=1"], "does not accept 'classes'"),
    ],
)
def test_cli_bad_words_one_line(tiny_dir, tmp_path, cli, args, match):
    code, out, err = cli("unlearn", str(tiny_dir), *args, "--out", str(tmp_path / "u"), *FAST)
    assert code == 2 and err.startswith("error: ") and match in err and err.count("\n") == 1, err
    assert not (tmp_path / "u").exists()
