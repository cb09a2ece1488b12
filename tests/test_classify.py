"""Classifier unlearning: SalUn and baselines on a tiny digits run, metrics and the CLI."""

import copy

import pytest
import torch

from genunlearn.classify.model import Recipe, eval_splits, random_request, train_classifier
from genunlearn.classify.unlearn import UnlearnConfig, classifier_saliency, random_labels
from genunlearn.config import build_config
from genunlearn.data import load_dataset
from genunlearn.errors import GenUnlearnError
from genunlearn.eval.classification import avg_gap, classification_metrics, mia_efficacy
from genunlearn.forget.request import ForgetRequest
from genunlearn.methods import get_method
from genunlearn.classify.model import ClassifierModel

TINY = Recipe(epochs=6)


@pytest.fixture(scope="module")
def setup():
    train, test = load_dataset("digits"), load_dataset("digits", "test")
    small = train.subset(torch.arange(500))
    net, _ = train_classifier(small, 0, TINY)
    request = ForgetRequest.of_classes(3)
    return small, test, net, request, eval_splits(small, test, request)


def unlearn_request(net, data, request, method, **values):
    """The registered classifier method ``method`` on a copy of ``net``: (net, run record)."""
    model = ClassifierModel(copy.deepcopy(net), data.meta(), {"task": "digits"})
    out = get_method(method, values, family="classifier").unlearn(model, request, data)
    return out.net, out.info["unlearn"]


def test_random_labels_never_true():
    y = torch.arange(10).repeat(100)
    g = torch.Generator().manual_seed(0)
    r = random_labels(y, 10, g)
    assert (r != y).all() and set(r.tolist()) == set(range(10))


@pytest.mark.parametrize("method", ["salun", "random_label"])
def test_ua_rises_ra_holds(setup, method):
    small, test, net, request, splits = setup
    before = classification_metrics(net, *splits)
    out, info = unlearn_request(net, small, request, method, lr=1e-2, epochs=2)
    after = classification_metrics(out, *splits)
    assert before["UA"] < 20 and after["UA"] > 80
    assert after["RA"] > before["RA"] - 5 and after["TA"] > before["TA"] - 5
    assert info["steps"] == 2 * 9  # two epochs of (1 forget + 8 retain) batches, sequential


def test_masked_weights_bit_identical(setup):
    small, _, net, request, (forget, _, _) = setup
    cfg = UnlearnConfig(lr=5e-2, epochs=1, mask_ratio=0.3, momentum=0.9, weight_decay=5e-4)
    mask = classifier_saliency(
        copy.deepcopy(net), forget, 0.3, cfg.mask_batch_size, torch.Generator().manual_seed(cfg.seed)
    )
    before = {k: v.clone() for k, v in net.named_parameters()}
    out, info = unlearn_request(
        net, small, request, "salun", lr=5e-2, epochs=1, mask_ratio=0.3, momentum=0.9, weight_decay=5e-4
    )
    assert info["mask_density"] == pytest.approx(0.3, abs=1e-5)
    after = dict(out.named_parameters())
    for k, m in mask.items():  # SGD + momentum + weight decay: frozen coordinates bit-identical
        assert torch.equal(after[k][m == 0], before[k][m == 0])
    assert sum(int((after[k] != before[k]).sum()) for k in mask) > 0.2 * sum(m.numel() for m in mask.values())


def test_soft_threshold_shrinks_the_update():
    from genunlearn.methods.saliency import soft_threshold_

    net = torch.nn.Linear(4, 1)
    init = {k: v.detach().clone() for k, v in net.named_parameters()}
    with torch.no_grad():
        net.weight += torch.tensor([[0.1, -0.4, 0.3, -0.2]])
        net.bias += 0.5
    tau = soft_threshold_(net, init, 0.4)  # k = 2 of 5: τ = 0.2
    assert tau == pytest.approx(0.2)
    assert torch.allclose(net.weight - init["weight"], torch.tensor([[0.0, -0.2, 0.1, 0.0]])) and torch.allclose(
        net.bias - init["bias"], torch.tensor([0.3])
    )


def test_salun_soft_holds_weights_at_the_original(setup):
    small, _, net, request, splits = setup
    out, info = unlearn_request(net, small, request, "salun", lr=1e-2, epochs=2, mask="soft", mask_ratio=0.6)
    before, after = (torch.cat([p.detach().flatten() for p in n.parameters()]) for n in (net, out))
    held = float((after == before).float().mean())
    assert 0.3 <= held < 0.9  # the last proximal step holds ≥ 0.6 · (1 − 1/2) of the weights at θ_o
    assert (
        classification_metrics(out, *splits)["UA"] > classification_metrics(net, *splits)["UA"] + 20
        and "mask_density" not in info
    )
    with pytest.raises(GenUnlearnError, match="mask must be one of hard, soft, not 'medium'"):
        build_config(UnlearnConfig, {"mask": "medium"})


def test_baselines_and_gap(setup):
    small, _, net, request, splits = setup
    forget, retain, test = splits
    ref, _ = train_classifier(retain, 0, Recipe(epochs=2))
    ref_m = classification_metrics(ref, *splits)
    assert avg_gap(ref_m, ref_m) == 0 and ref_m["UA"] == 100  # a class never seen is never predicted
    for method in ("finetune", "grad_ascent", "l1_sparse"):
        out, info = unlearn_request(net, small, request, method, lr=1e-3, epochs=1)
        assert info["seconds"] > 0 and 0 <= avg_gap(classification_metrics(out, *splits), ref_m) <= 100
    assert 0 <= mia_efficacy(net, forget, retain, test) <= 100


def test_class_request_removes_class_from_test(setup):
    small, test, _, request, (forget, retain, test_r) = setup
    assert (test_r.labels != 3).all() and len(test_r) < len(test)
    req = random_request(small, 0.1, seed=1)
    assert req.kind == "samples" and len(req.samples) == 50 and random_request(small, 0.1, seed=1) == req


def test_bad_requests(setup):
    small, _, net, _, _ = setup
    with pytest.raises(GenUnlearnError, match="does not accept 'concept' requests"):
        unlearn_request(net, small, ForgetRequest("concept", concept="3", anchor="digit"), "salun")
    with pytest.raises(GenUnlearnError, match="unknown class"):
        unlearn_request(net, small, ForgetRequest.of_classes(12), "salun")
    with pytest.raises(GenUnlearnError, match="unknown method 'salun2' for classifier models"):
        get_method("salun2", family="classifier")


def test_cli(tmp_path, capsys):
    from genunlearn.cli import main

    def run(*args):
        with pytest.raises(SystemExit) as e:
            main(list(args))
            raise SystemExit(0)
        return e.value.code, capsys.readouterr()

    assert run("classify", "train", "--out", str(tmp_path / "orig"), "--epochs", "1")[0] == 0
    assert run("classify", "train", "--out", str(tmp_path / "rt"), "--epochs", "1", "--forget", "classes=3")[0] == 0
    code, _ = run(
        "classify",
        "unlearn",
        str(tmp_path / "orig"),
        "--forget",
        "classes=3",
        "--out",
        str(tmp_path / "u"),
        "--set",
        "epochs=1",
    )
    assert code == 0
    code, out = run(
        "classify", "evaluate", str(tmp_path / "u"), "--forget", "classes=3", "--retrain", str(tmp_path / "rt")
    )
    assert code == 0 and "UA" in out.out and "AvgGap" in out.out
    code, out = run(
        "classify",
        "unlearn",
        str(tmp_path / "orig"),
        "--forget",
        "classes=3",
        "--random",
        "0.1",
        "--out",
        str(tmp_path / "x"),
    )
    assert code == 2 and out.err.startswith("error: give exactly one")
