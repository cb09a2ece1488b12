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


# --- building blocks ---------------------------------------------------------------------------
def tiny_cond_net():
    from genunlearn.models import build_network

    torch.manual_seed(0)
    return build_network({"_class_name": "MLPNet", "dim": 16, "hidden": 16, "depth": 1, "cond_vocab": [3]})


def test_diffusion_corrupt_predict_loss_match_the_formulas():
    d, net = Diffusion(cond_dropout=0.5), tiny_cond_net()
    x0, cond = (
        torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(1)),
        torch.tensor([[0], [1], [2], [0], [1], [2]]),
    )
    xt, t, noise, target = d.corrupt(x0, torch.Generator().manual_seed(2), antithetic=True)
    g = torch.Generator().manual_seed(2)  # the formula, drawing in the same order: t (antithetic), then ε
    t0 = d.sample_timesteps(6, g, antithetic=True)
    eps = torch.randn(x0.shape, generator=g)
    ab = d.alphas_cumprod[t0].view(-1, 1, 1, 1)
    assert torch.equal(t, t0) and torch.equal(noise, eps) and torch.equal(target, eps)
    assert torch.allclose(xt, ab.sqrt() * x0 + (1 - ab).sqrt() * eps)
    null = torch.full_like(cond, 3)
    s = 2.5
    guided_eps = net(torch.cat([xt, xt]), torch.cat([t, t]) / 1000, torch.cat([cond, null]))
    assert torch.allclose(
        d.predict(net, xt, t, cond, guidance=s), guided_eps[6:] + s * (guided_eps[:6] - guided_eps[6:]), atol=1e-6
    )
    g = torch.Generator().manual_seed(2)  # loss: t, ε, then condition dropout, all from one generator
    t0, eps = d.sample_timesteps(6, g, antithetic=True), torch.randn(x0.shape, generator=g)
    dropped = drop_condition(net, cond, 0.5, 0.0, g)
    expected = (net(d.add_noise(x0, t0, eps), t0 / 1000, dropped) - eps).pow(2).flatten(1).mean(1)
    assert torch.equal(d.loss(net, x0, cond, generator=torch.Generator().manual_seed(2), antithetic=True), expected)


def test_flow_corrupt_and_loss_keep_the_draw_order():
    fm, net = FlowMatching(cond_dropout=0.0), tiny_cond_net()
    x1 = torch.randn(5, 16, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(3)
    x0, t = torch.randn(x1.shape, generator=g), torch.rand(5, generator=g)  # noise first, then t
    xt, tt, noise, u = fm.corrupt(x1, torch.Generator().manual_seed(3))
    assert (
        torch.equal(noise, x0)
        and torch.equal(tt, t)
        and torch.equal(u, x1 - x0)
        and torch.allclose(xt, (1 - t[:, None]) * x0 + t[:, None] * x1)
    )
    assert torch.equal(
        fm.loss(net, x1, generator=torch.Generator().manual_seed(3)), (net(xt, t, None) - u).pow(2).mean(1)
    )
    _, t_anti, _, _ = fm.corrupt(x1, torch.Generator().manual_seed(3), antithetic=True)
    assert torch.allclose(t_anti[:2] + t_anti[3:5], torch.ones(2))


def test_ddim_stop_equals_the_first_k_steps_of_the_loop():
    """What ESD's old partial_ddim did by hand: the scheduler loop for k steps from seeded noise."""
    d, net = Diffusion(steps=6), tiny_cond_net()
    cond = torch.tensor([[0], [2], [1]])
    k = 4
    g = torch.Generator().manual_seed(5)
    sched = d.scheduler("ddim")
    sched.set_timesteps(6)
    x = torch.randn((3, 1, 4, 4), generator=g)
    with torch.no_grad():
        for step_t in sched.timesteps[:k]:
            x = sched.step(
                d.predict(net, x, step_t.expand(3), cond, 3.0), step_t, x, eta=d.eta, generator=g
            ).prev_sample
    xt, t = d.sample_until(
        net, 3, cond, k, shape=(1, 4, 4), sampler="ddim", guidance=3.0, generator=torch.Generator().manual_seed(5)
    )
    assert torch.equal(xt, x) and torch.equal(t, sched.timesteps[k].expand(3))
    # deterministic DDIM: stopping at k and starting again from there is the full sampler
    full = d.sample(net, 3, cond, shape=(1, 4, 4), eta=0.0, generator=torch.Generator().manual_seed(5))
    xk, _ = d.sample_until(net, 3, cond, k, shape=(1, 4, 4), eta=0.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(d.sample(net, 3, cond, shape=(1, 4, 4), eta=0.0, x_T=xk, start=k), full)


def test_flow_sampler_stops_and_resumes():
    fm, net = FlowMatching(steps=5), tiny_cond_net()
    x0 = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    full = fm.sample(net, 3, None, shape=(16,), x0=x0)
    xk, t = fm.sample_until(net, 3, None, 2, shape=(16,), x0=x0)
    assert torch.allclose(t, torch.full((3,), 0.4)) and torch.equal(
        fm.sample(net, 3, None, shape=(16,), x0=xk, start=2), full
    )


def test_one_step_score_loss_is_summed_dsm():
    from genunlearn.processes.one_step import OneStep

    p, net = OneStep(), tiny_cond_net()
    x0, t, eps = torch.randn(4, 16), torch.randint(38, 712, (4,)), torch.randn(4, 16)
    cond = torch.tensor([[0], [1], [2], [1]])
    old = (p.schedule.predict_eps(net, p.add_noise(x0, t, eps), t, cond) - eps).pow(2).flatten(1).sum(1)
    assert torch.equal(p.score_loss(net, x0, cond, t=t, noise=eps), old)


def test_unwrap_reads_the_config_through_a_data_parallel_wrapper():
    from genunlearn.processes.conditioning import null_cond, unwrap

    net = tiny_cond_net()
    wrapped = nn.DataParallel(net)
    assert unwrap(wrapped) is net and unwrap(net) is net
    assert null_cond(wrapped, 2).tolist() == [[3], [3]]
