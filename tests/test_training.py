import pytest
import torch
from torch import nn

from genunlearn.errors import GenUnlearnError
from genunlearn.training import TrainConfig, train


def regression_problem():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    w = torch.randn(4, 1)

    def step_loss(model, g):
        x = torch.randn(32, 4, generator=g)
        return (model(x) - x @ w).pow(2).mean()

    return net, step_loss


def test_loss_decreases():
    net, step_loss = regression_problem()
    res = train(net, step_loss, TrainConfig(steps=300, lr=1e-2, log_every=50), progress=False)
    assert res.losses[-1] < 0.2 * res.losses[0]


def test_subnormals_flushed_only_while_training():
    tiny = torch.tensor(1e-310, dtype=torch.float64)  # a subnormal double
    seen = []
    net, step_loss = regression_problem()

    def probing_loss(model, g):
        seen.append(float(tiny * 1.0))
        return step_loss(model, g)

    train(net, probing_loss, TrainConfig(steps=2, lr=1e-2), progress=False)
    assert seen == [0.0, 0.0]  # flushed inside the loop (speed on CPU)
    assert float(tiny * 1.0) == 1e-310  # and restored for code that runs afterwards


def test_seeded_runs_are_bit_identical():
    a, loss_a = regression_problem()
    b, loss_b = regression_problem()
    cfg = TrainConfig(steps=40, lr=1e-2, ema_decay=0.9)
    train(a, loss_a, cfg, progress=False)
    train(b, loss_b, cfg, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_exact_resume(tmp_path):
    cfg = TrainConfig(steps=40, lr=1e-2, ema_decay=0.9, checkpoint_every=20, log_every=10)
    ref, loss_ref = regression_problem()
    train(ref, loss_ref, cfg, progress=False)

    class Interrupt(Exception):
        pass

    def stop_at_25(step, record):
        if step >= 30:
            raise Interrupt

    net, loss = regression_problem()
    with pytest.raises(Interrupt):
        train(net, loss, cfg, out_dir=tmp_path, progress=False, callbacks=(stop_at_25,))
    assert (tmp_path / "checkpoint" / "state.json").is_file()
    net2, loss2 = regression_problem()  # a fresh process: weights from scratch, state from disk
    res = train(net2, loss2, cfg, out_dir=tmp_path, resume=True, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(ref.state_dict().values(), net2.state_dict().values()))
    assert len(res.losses) == 4 and not (tmp_path / "checkpoint").exists()
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 4


@pytest.mark.parametrize("opt", [dict(optimizer="sgd", momentum=0.9, weight_decay=5e-4), dict(optimizer="adamw", weight_decay=0.1), dict(optimizer="adam", weight_decay=0.01)])
def test_masked_weights_never_move(opt):
    net, loss = regression_problem()
    before = {k: v.clone() for k, v in net.named_parameters()}
    g = torch.Generator().manual_seed(3)
    masks = {k: (torch.rand(v.shape, generator=g) < 0.5).float() for k, v in net.named_parameters()}
    train(net, loss, TrainConfig(steps=30, lr=1e-2, **opt), grad_mask=masks, progress=False)
    for k, p in net.named_parameters():
        frozen = masks[k] == 0
        assert torch.equal(p[frozen], before[k][frozen])
        assert not torch.equal(p[~frozen], before[k][~frozen])


def test_bad_configs_and_divergence():
    with pytest.raises(GenUnlearnError, match="unknown optimizer"):
        TrainConfig(optimizer="lion")
    net, _ = regression_problem()
    with pytest.raises(GenUnlearnError, match="loss became"):
        train(net, lambda m, g: m(torch.ones(1, 4)).sum() * float("inf"), TrainConfig(steps=3), progress=False)
