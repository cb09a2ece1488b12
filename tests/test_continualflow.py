"""ContinualFlow: loss identity, weight sign, mass removal, data guard, bad requests, continual use."""

import pytest
import torch

from genunlearn.cli import main as cli_main
from genunlearn.data import load_dataset
from genunlearn.forget.energy import Energy, callable_energy, energy_for_request, region_energy
from genunlearn.errors import GenUnlearnError
from genunlearn.eval.evaluate import evaluate
from genunlearn.forget.request import ForgetRequest
from genunlearn.generative.model import GenerativeModel
from genunlearn.methods import get_method
from genunlearn.methods.continualflow import ContinualFlowConfig, Pool, pool_weights, weighted_flow_loss
from genunlearn.methods.continualflow.conditions import condition_sources, redirect, share_batch
from genunlearn.methods.continualflow.pool import pool_stats
from genunlearn.models import build_network
from genunlearn.processes.flow_matching import FlowMatching
from genunlearn.generative.recipes import TrainJob, train_cached

TINY = {
    "network": {"_class_name": "MLPNet", "dim": 2, "hidden": 64, "depth": 2},
    "batch_size": 256,
    "process": {"name": "flow", "solver": "midpoint", "steps": 10},
    "train": {
        "optimizer": "adamw",
        "lr": 5e-3,
        "lr_schedule": "cosine",
        "warmup": 20,
        "grad_clip": 1.0,
        "log_every": 50,
    },
}
FAST = {"pool": 1000, "steps": 100, "batch": 128, "lr": 3e-3}
CENTRES = torch.tensor([[4.0, 0.0], [0.0, 4.0]])  # ring8 modes 0 and 2


def near_modes(x):
    """Signed distance (> 0 within 1.5 of ring8 modes 0 or 2) over a 0.2 length scale: a callable energy."""
    return (1.5 - torch.cdist(x, CENTRES).min(1).values) / 0.2


class NoData:
    """A data object that fails on any access: the unlearning stage must not read data."""

    def __getattr__(self, name):
        raise AssertionError(f"unlearning read data.{name}")


@pytest.fixture(scope="module")
def ring8():
    return train_cached(TrainJob("ring8", "flow", steps=300, overrides=TINY), progress=False)


def test_equal_weights_give_plain_flow_matching_bitwise():
    torch.manual_seed(0)
    net = build_network({"_class_name": "MLPNet", "dim": 2, "hidden": 32, "depth": 2})
    fm, x1 = FlowMatching(), torch.randn(64, 2)
    for value in (1.0, 0.5):
        plain = fm.loss(net, x1, generator=torch.Generator().manual_seed(3)).mean()
        weighted = weighted_flow_loss(fm, net, x1, torch.full((64,), value), generator=torch.Generator().manual_seed(3))
        assert torch.equal(plain, weighted)


def test_weights_lower_inside_region():
    data = load_dataset("checkerboard", "test")
    w = pool_weights([(5.0, region_energy(data, "quadrant"))], data.x)
    inside = (data.x > 0).all(1)
    assert w[inside].mean() < 0.05 < 0.95 < w[~inside].mean()


def test_classifier_energy_sign_and_reversed_sign_fails():
    data = load_dataset("moons")
    energy = energy_for_request(ForgetRequest.of_classes("upper"), data)
    assert (
        energy.info["proxy_holdout_accuracy"] > 0.95
        and energy.info["mean_energy_forget"] > energy.info["mean_energy_retain"]
    )
    x, is_forget = data.x[:500], data.labels[:500] == 0
    with pytest.raises(GenUnlearnError, match="energy sign looks reversed"):
        energy_for_request(
            ForgetRequest("energy", energy=lambda z: -energy(z), options={"validation": (x, is_forget)}), data
        )


def test_mass_leaves_region_without_reading_data(ring8):
    request = ForgetRequest("energy", energy=near_modes)
    before = (near_modes(ring8.sample(2000, generator=torch.Generator().manual_seed(1))) > 0).float().mean()
    out = get_method("continualflow", FAST).unlearn(ring8, request, NoData())
    after = (near_modes(out.sample(2000, generator=torch.Generator().manual_seed(1))) > 0).float().mean()
    assert before > 0.15 and after < 0.25 * before
    info = out.info["unlearn"]
    assert 0 < info["Z"] < 1 and out.info["continualflow"]["energies"][0]["energy"]["kind"] == "callable"
    assert not callable_energy(near_modes).restorable
    assert out.info["task"] == "ring8" and ring8.info.get("role") == "base"  # input model untouched


def test_classes_energy_then_guarded_unlearning(ring8):
    energy = energy_for_request(ForgetRequest.of_classes(0, 1), load_dataset("ring8"))  # energy stage reads labels
    out = get_method("continualflow", FAST).unlearn(ring8, ForgetRequest("energy", energy=energy), NoData())
    assert evaluate(out, ForgetRequest.of_classes(0, 1), n_per_prompt=20)["forget_mass"] < 0.05


def test_bad_requests_and_configs_fail_clearly(ring8):
    method = get_method("continualflow")
    for request in (
        ForgetRequest("samples", samples=(1, 2)),
        ForgetRequest("concept", concept="circle", anchor="shape"),
    ):
        with pytest.raises(GenUnlearnError, match="does not accept"):
            method.unlearn(ring8, request, NoData())
    with pytest.raises(GenUnlearnError, match="mode must be one of finetune, composed, not 'sideways'"):
        get_method("continualflow", {"mode": "sideways"})
    for name in ("continualflow", "finetune"):  # schedule typos fail before any proxy, pool or training
        with pytest.raises(GenUnlearnError, match="unknown lr_schedule 'cos'"):
            get_method(name, {"lr_schedule": "cos"}, family="generative")
        with pytest.raises(GenUnlearnError, match="ema_decay must lie in"):
            get_method(name, {"ema_decay": 1.5}, family="generative")
    with pytest.raises(GenUnlearnError, match="unknown energy region"):
        method.unlearn(ring8, ForgetRequest("energy", energy="nowhere"), load_dataset("ring8"))
    with pytest.raises(GenUnlearnError, match="one finite value"):
        Energy(lambda x: torch.full((x.shape[0],), float("nan")), {"kind": "callable"})(torch.zeros(3, 2))


def test_vanishing_condition_learns_from_whole_pool():
    cond = torch.arange(3).repeat_interleave(4)[:, None]
    pool = Pool(torch.zeros(12, 2), torch.tensor([0.0] * 4 + [1.0] * 8), cond)
    sources = condition_sources(pool, 0.5, "marginal")
    assert sources.vanishing.tolist() == [True, False, False]
    labels, null = torch.tensor([0, 1, 2, 1]), torch.tensor([False, False, False, True])
    j = redirect(sources, labels, null, torch.Generator().manual_seed(0))
    assert cond[j[1], 0] == 1 and cond[j[2], 0] == 2  # retained conditions keep their own samples
    shared = share_batch(sources, 0.5, 10, torch.Generator().manual_seed(0))
    assert (cond[shared, 0] == 0).sum() == 5  # half the batch visits the vanishing condition (pool share: a third)
    with pytest.raises(GenUnlearnError, match="vanishing_share must satisfy 0 < vanishing_share < 1"):
        ContinualFlowConfig(vanishing_share=1.0)
    j = redirect(condition_sources(pool, 0.5, "class:2"), labels, null, torch.Generator().manual_seed(0))
    assert cond[j[0], 0] == 2 and cond[j[3], 0] == 2
    with pytest.raises(GenUnlearnError, match="fallback class 0 is not a retained condition"):
        condition_sources(pool, 0.5, "class:0")


def test_z_ratio_test_redirects_forgotten_not_similar_retained():
    """Majority rule: the forgotten class (30 % of its mass kept, as on a weak base) vanishes; a
    similar retained class that loses a fifth of its mass to the energy (8 next to 3) keeps its own
    samples; a ratio within 2 standard errors of ½ warns."""
    w = torch.tensor([0.0] * 70 + [1.0] * 30 + [0.0] * 20 + [1.0] * 80 + [1.0] * 100)
    pool = Pool(torch.zeros(300, 2), w, torch.arange(3).repeat_interleave(100)[:, None])
    stats = pool_stats(pool, 0.5)
    assert stats["vanishing_conditions"] == [0] and [round(r, 2) for r in stats["Z_ratio"]] == [0.3, 0.8, 1.0]
    assert 0.04 < stats["Z_ratio_se"][0] < 0.05 and stats["Z_ratio_se"][2] == 0
    close = Pool(
        torch.zeros(20, 2),
        torch.tensor([0.0] * 6 + [1.0] * 4 + [1.0] * 10),
        torch.arange(2).repeat_interleave(10)[:, None],
    )
    with pytest.warns(UserWarning, match=r"conditions \[0\] have Z_c / max Z within 2 standard errors"):
        pool_stats(close, 0.5)


def test_sequential_requests_from_cli_keep_first_forgotten(ring8, tmp_path, capsys):
    ring8.save_pretrained(tmp_path / "base")
    sets = [f"--set={k}={v}" for k, v in FAST.items()]
    cli_main(
        [
            "unlearn",
            str(tmp_path / "base"),
            "--method",
            "continualflow",
            "--forget",
            "classes=0",
            "--out",
            str(tmp_path / "one"),
            *sets,
        ]
    )
    said = capsys.readouterr().err  # the flow kind's picked defaults the options left in force, in one line
    assert (
        "continualflow defaults for flow models: lam=5.0, lr_schedule=cosine, vanishing_share=0.75 (picked by benchmarks/"
        in said
    )
    assert "pool=" not in said  # the user's --set pool wins and is not called a default
    cli_main(
        [
            "unlearn",
            str(tmp_path / "one"),
            "--method",
            "continualflow",
            "--forget",
            "classes=4",
            "--out",
            str(tmp_path / "two"),
            *sets,
        ]
    )
    two = GenerativeModel.from_pretrained(tmp_path / "two")
    assert [e["energy"]["classes"] for e in two.info["continualflow"]["energies"]] == [[0], [4]]
    mass = evaluate(two, None, n_per_prompt=40)["component_mass"]
    assert mass[0] < 0.02 and mass[4] < 0.05  # base: about 0.12 each; the first stays forgotten


def test_composed_mode_saves_and_samples(ring8, tmp_path):
    out = get_method("continualflow", {**FAST, "mode": "composed", "steps": 50}).unlearn(
        ring8, ForgetRequest("energy", energy=near_modes), NoData()
    )
    out.save_pretrained(tmp_path / "composed")
    back = GenerativeModel.from_pretrained(tmp_path / "composed")
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert back.process.name == "composed" and torch.equal(back.sample(5, generator=g()), out.sample(5, generator=g()))
    with pytest.raises(GenUnlearnError, match="mode=composed"):
        get_method("continualflow").check(back, ForgetRequest("energy", energy=near_modes))


def test_composed_restore_brings_region_back(ring8):
    """Composed mode keeps q0: −F of an applied energy restores its region, others stay forgotten;
    restoring the last one gives the base model back exactly; fine-tune mode refuses to restore."""
    data = load_dataset("ring8")
    e0, e4 = (energy_for_request(ForgetRequest.of_classes(c), data) for c in (0, 4))
    method = get_method("continualflow", {**FAST, "mode": "composed", "steps": 200})
    two = method.unlearn_energy(method.unlearn_energy(ring8, e0), e4)
    back = method.unlearn_energy(two, e0.negated())
    mass = lambda m: evaluate(m, None, n_per_prompt=40)["component_mass"]  # noqa: E731
    assert [e["energy"]["classes"] for e in back.info["continualflow"]["energies"]] == [[4]] and back.info["unlearn"][
        "restored"
    ]["negate"]
    (m2, mb) = mass(two), mass(back)
    assert m2[0] < 0.05 and m2[4] < 0.05 and mb[0] > 0.08 and mb[4] < 0.05  # base: about 0.12 each
    base_again = method.unlearn_energy(back, e4.negated())
    assert base_again.process.name == "flow" and all(
        torch.equal(a, b) for a, b in zip(base_again.net.state_dict().values(), ring8.net.state_dict().values())
    )
    one = get_method("continualflow", FAST).unlearn_energy(ring8, e0)
    with pytest.raises(GenUnlearnError, match="restoring an applied energy needs mode=composed"):
        get_method("continualflow", FAST).unlearn_energy(one, e0.negated())


def test_finetune_baseline_runs(ring8):
    out = get_method("finetune", {"steps": 20, "batch": 128}, family="generative").unlearn(
        ring8, ForgetRequest.of_classes(0), load_dataset("ring8")
    )
    assert out.info["method"] == "finetune" and out.sample(4).shape == (4, 2)
