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


@pytest.mark.parametrize(
    "opt",
    [
        dict(optimizer="sgd", momentum=0.9, weight_decay=5e-4),
        dict(optimizer="adamw", weight_decay=0.1),
        dict(optimizer="adam", weight_decay=0.01),
    ],
)
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


# --- several objectives ------------------------------------------------------------------------
def critic_problem(calls=None):
    """A generator net and a critic net: the critic is updated k times per generator step."""
    from genunlearn.training import Objective, Optim

    torch.manual_seed(0)
    gen = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4))
    critic = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    calls = [] if calls is None else calls

    def critic_loss(model, g):
        calls.append("critic")
        assert all(p.requires_grad for p in critic.parameters()) and not any(p.requires_grad for p in gen.parameters())
        z = torch.randn(16, 4, generator=g)
        with torch.no_grad():
            fake = gen(z)
        real = torch.randn(16, 4, generator=g) + 1.0
        return model(fake).mean() - model(real).mean() + 0.1 * model(real).pow(2).mean(), {"gap": 0.0}

    def gen_loss(model, g):
        calls.append("gen")
        assert not any(p.requires_grad for p in critic.parameters())
        return -critic(model(torch.randn(16, 4, generator=g))).mean()

    objectives = [
        Objective(
            "critic", critic, critic_loss, Optim(lr=1e-2, optimizer="adam", betas=(0.0, 0.9)), every=3, warmup_updates=2
        ),
        Objective("gen", gen, gen_loss, Optim(lr=1e-2, lr_schedule="cosine"), ema_decay=0.9),
    ]
    return objectives, calls


def weights(objectives):
    return [v.clone() for o in objectives for v in o.net.state_dict().values()]


def test_update_schedule_and_freezing():
    from genunlearn.training import train_objectives

    objectives, calls = critic_problem()
    logs = []
    res = train_objectives(
        objectives, steps=4, log_every=2, progress=False, callbacks=(lambda step, rec: logs.append(rec),)
    )
    assert (
        calls == ["critic"] * 2 + (["critic"] * 3 + ["gen"]) * 4
    )  # warm-up, then k = 3 critic updates per generator update
    assert len(res.losses) == 2 and [r["loss"] for r in logs] == res.losses
    assert {"critic/loss", "critic/lr", "critic/gap", "loss", "lr"} <= set(logs[0])
    assert all(p.requires_grad for o in objectives for p in o.net.parameters())  # restored afterwards


def test_two_objectives_resume_bit_identically(tmp_path):
    from genunlearn.training import train_objectives

    ref, _ = critic_problem()
    train_objectives(ref, steps=12, log_every=3, progress=False)

    class Interrupt(Exception):
        pass

    def stop(step, record):
        if step >= 9:
            raise Interrupt

    run, calls = critic_problem()
    with pytest.raises(Interrupt):
        train_objectives(
            run, steps=12, log_every=3, checkpoint_every=6, out_dir=tmp_path, progress=False, callbacks=(stop,)
        )
    names = {p.name for p in (tmp_path / "checkpoint").iterdir()}
    assert {
        "critic.safetensors",
        "critic.optimizer.pt",
        "gen.safetensors",
        "gen.ema.safetensors",
        "gen.optimizer.pt",
        "rng.safetensors",
    } <= names
    again, calls = critic_problem()  # a fresh process: weights from scratch, state from disk
    res = train_objectives(
        again, steps=12, log_every=3, checkpoint_every=6, out_dir=tmp_path, resume=True, progress=False
    )
    assert calls == (["critic"] * 3 + ["gen"]) * 6  # steps 6..11, no warm-up again on resume
    assert all(torch.equal(a, b) for a, b in zip(weights(ref), weights(again)))
    assert len(res.losses) == 4 and len((tmp_path / "log.jsonl").read_text().splitlines()) == 4


def test_objective_checks():
    from genunlearn.training import Objective, train_objectives

    net, loss = regression_problem()
    with pytest.raises(GenUnlearnError, match="every"):
        Objective("a", net, loss, every=0)
    with pytest.raises(GenUnlearnError, match="distinct"):
        train_objectives([Objective("a", net, loss), Objective("a", net, loss)], steps=1, progress=False)


def test_the_loop_hands_a_drawn_batch_to_the_objective_that_reuses_it():
    """f-DMU's shape: the critic draws a batch per update; the model's update gets the critic's last."""
    from genunlearn.training import Objective, train_objectives

    critic, model = nn.Linear(1, 1), nn.Linear(1, 1)
    drawn, seen = [], []

    def draw(g):
        drawn.append(torch.rand(1, generator=g).item())
        return drawn[-1]

    def critic_loss(net, g, batch):
        return net(torch.tensor([[batch]])).pow(2).mean()

    def model_loss(net, g, batch):
        seen.append(batch)
        return net(torch.tensor([[batch]])).pow(2).mean()

    objectives = [
        Objective("critic", critic, critic_loss, every=2, warmup_updates=1, batch=draw),
        Objective("model", model, model_loss, batch_of="critic"),
    ]
    train_objectives(objectives, steps=3, progress=False)
    assert len(drawn) == 1 + 2 * 3 and seen == [drawn[2], drawn[4], drawn[6]]
    with pytest.raises(GenUnlearnError, match="must come before it and draw one"):
        train_objectives(objectives[::-1], steps=1, progress=False)
    with pytest.raises(GenUnlearnError, match="not both"):
        Objective("x", model, model_loss, batch=draw, batch_of="critic")


def test_train_generative_on_replacement_data_keeps_the_task():
    """A benchmark that grows a task's data trains on it; the model still names the task (its judge
    and held-out splits), and a retrain splits the replacement data, not the task's."""
    from genunlearn.data import load_dataset
    from genunlearn.forget.request import ForgetRequest
    from genunlearn.generative.recipes import TrainJob, train_generative

    ring = load_dataset("ring8")
    model = train_generative(TrainJob("ring8", "flow", steps=2), data=ring.subset(torch.arange(64)), progress=False)
    assert model.info["task"] == "ring8" and model.info["steps"] == 2
    only_zero = ring.subset((ring.labels == 0).nonzero().flatten()[:64])
    with pytest.raises(GenUnlearnError, match="retain split is empty"):
        train_generative(
            TrainJob("ring8", "flow", forget=ForgetRequest.of_classes(0), steps=2), data=only_zero, progress=False
        )


def test_every_step_callbacks_run_after_each_step_log_callbacks_at_log_steps():
    from genunlearn.training.loop import every_step

    seen = []
    net = torch.nn.Linear(2, 1)
    callbacks = (every_step(lambda s, rec: seen.append((s, rec is not None))), lambda s, rec: seen.append(("log", s)))
    train(
        net,
        lambda m, g: m(torch.ones(1, 2)).pow(2).sum(),
        TrainConfig(steps=5, log_every=2),
        progress=False,
        callbacks=callbacks,
    )
    assert seen == [(1, False), (2, True), ("log", 2), (3, False), (4, True), ("log", 4), (5, True), ("log", 5)]
