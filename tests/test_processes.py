import torch
from torch import nn

from genunlearn.processes.conditioning import drop_condition, guided
from genunlearn.processes.diffusion import Diffusion
from genunlearn.processes.flow_matching import FlowMatching


class ConstVelocity(nn.Module):
    """v(x, t) = c: every solver must map x0 to x0 + c exactly."""

    class config:
        cond_vocab = ()

    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, x, t, cond=None):
        return self.c.expand_as(x)


def test_flow_path_and_per_sample_loss(gen):
    fm = FlowMatching()
    x0, x1, t = torch.randn(5, 2, generator=gen), torch.randn(5, 2, generator=gen), torch.rand(5, generator=gen)
    xt, u = fm.path(x0, x1, t)
    assert torch.allclose(xt, (1 - t[:, None]) * x0 + t[:, None] * x1) and torch.equal(u, x1 - x0)
    net = ConstVelocity(torch.zeros(2))
    loss = fm.loss(net, x1, x0=x0, t=t)
    assert loss.shape == (5,)
    assert torch.allclose(loss, (x1 - x0).pow(2).mean(1))


def test_flow_solvers_exact_on_constant_field(gen):
    fm = FlowMatching()
    c = torch.tensor([1.5, -2.0])
    x0 = torch.randn(4, 2, generator=gen)
    for solver in ("euler", "midpoint", "heun"):
        x1 = fm.sample(ConstVelocity(c), 4, shape=(2,), solver=solver, steps=7, x0=x0)
        assert torch.allclose(x1, x0 + c, atol=1e-5)


def test_diffusion_noising_and_x0_recovery(gen):
    d = Diffusion()
    ab = d.alphas_cumprod
    assert abs(ab[0].item() - (1 - 1e-4)) < 1e-6 and ab[-1] < 1e-4
    x0 = torch.randn(6, 1, 4, 4, generator=gen)
    eps = torch.randn(6, 1, 4, 4, generator=gen)
    t = torch.tensor([0, 10, 100, 500, 900, 999])
    xt = d.add_noise(x0, t, eps)

    class Oracle(nn.Module):
        class config:
            cond_vocab = ()

        def forward(self, x, tt, cond=None):
            return eps

    assert torch.allclose(d.predict_x0(Oracle(), xt, t), x0, atol=1e-3)
    assert torch.allclose(d.loss(Oracle(), x0, t=t, noise=eps), torch.zeros(6), atol=1e-10)


def test_diffusion_samplers_shapes(gen):
    from genunlearn.models import build_network

    net = build_network({"_class_name": "MLPNet", "dim": 16, "hidden": 16, "depth": 1, "cond_vocab": [3]})
    d = Diffusion(steps=5)
    for sampler in ("ddim", "ddpm"):
        x = d.sample(net, 3, torch.tensor([[0], [1], [2]]), shape=(1, 4, 4), sampler=sampler, generator=gen)
        assert x.shape == (3, 1, 4, 4) and torch.isfinite(x).all()


class Affine(nn.Module):
    class config:
        cond_vocab = (3,)

    def forward(self, x, t, cond):
        return x + cond.float()


def test_guidance_formula():
    x = torch.zeros(2, 1)
    cond = torch.tensor([[0], [1]])
    out = guided(Affine(), x, torch.zeros(2), cond, scale=3.0)
    null = 3.0
    assert torch.allclose(out, null + 3.0 * (cond.float() - null))
    assert torch.equal(guided(Affine(), x, torch.zeros(2), cond, scale=1.0), cond.float())


def test_condition_dropout_rates(gen):
    cond = torch.zeros(20000, 2, dtype=torch.long)

    class Net:
        class config:
            cond_vocab = (4, 4)

    out = drop_condition(Net(), cond, p_null=0.1, p_attr=0.3, generator=gen)
    null_rows = (out == 4).all(1).float().mean().item()
    one_attr = (out[:, 0] == 4).float().mean().item()
    assert abs(null_rows - (0.1 + 0.9 * 0.09)) < 0.01
    assert abs(one_attr - (0.1 + 0.9 * 0.3)) < 0.015
