"""The contract every registered method keeps, checked over the registry on a tiny model of each kind
it accepts: the input model is untouched, the result keeps its class, kind and format, the step
budget is respected, the run record has one shape, a seeded run is bit-identical, and weights
outside a chosen parameter group do not move. A method added to the catalogue is covered (or must
be listed in ``NOT_FROM_A_MODEL`` with its reason)."""

from __future__ import annotations

import copy

import pytest
import torch
from test_fdiv import tiny  # noqa: F401  (an untrained tiny ConvUNet DDPM on the shapes attributes)
from test_i2i import one_thread  # noqa: F401  (one intra-op thread for this module)
from test_sd import sd_pipe  # noqa: F401  (the tiny Stable-Diffusion-layout pipeline fixture)

from genunlearn.catalogue import CATALOGUE
from genunlearn.data import load_dataset
from genunlearn.forget.request import ForgetRequest
from genunlearn.generative.model import GenerativeModel
from genunlearn.methods import get_method
from genunlearn.methods.common import CONDITIONING_PARAMS
from genunlearn.models import build_network
from genunlearn.processes.diffusion import Diffusion
from genunlearn.processes.flow_matching import FlowMatching

# retraining starts from scratch, not from the model: the gold standard, tested with the recipes
NOT_FROM_A_MODEL = {("generative", "retrain"), ("classifier", "retrain"), ("i2i", "i2i_retrain")}
BUDGET = 2
CLASS3 = ForgetRequest.of_classes(3)
CIRCLE = ForgetRequest("concept", concept="circle", anchor="shape")
# few samples and small batches: the contract, not the quality, is under test
SMALL = {
    "esd": {"batch_size": 4, "sample_steps": 3},
    "salun": {"batch_size": 8, "mask_batch_size": 64},
    "random_label": {"batch_size": 8},
    "finetune": {"batch": 16},
    "sfd": {"batch_size": 4},
    "continualflow": {"pool": 64, "batch": 32},
    "fdiv": {"anchor_images": 4, "anchor_sampler_steps": 2, "batch_size": 4},
    "concept_ablation": {"anchor_images": 4, "anchor_sampler_steps": 2, "batch_size": 4},
    "advunlearn": {"batch_size": 2, "images": 2, "sample_steps": 3, "retain_prompts": 2, "attack_tokens": 1},
}
SMALL_CLASSIFIER = {"salun": {"mask_batch_size": 64}}
SMALL_I2I = {"batch_size": 16}
NEW_KIND = {"sfd": "one_step"}  # SFD distils the model into a one-step generator of the same family


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def mlp(kind, digits):
    torch.manual_seed(0)
    net = build_network({"_class_name": "MLPNet", "dim": 64, "hidden": 32, "depth": 1, "cond_vocab": (10,)})
    process = Diffusion(steps=10) if kind == "diffusion" else FlowMatching(steps=3)
    return GenerativeModel(net, process, digits.meta(), {"task": "digits", "model": kind})


def cases():
    """(family, name, which tiny model, request) for every registered method and kind it accepts."""
    out = []
    for e in CATALOGUE:
        if (e.family, e.name) in NOT_FROM_A_MODEL:
            continue
        if e.family == "generative":
            if e.name in ("uce", "rece", "advunlearn"):
                out.append((e.family, e.name, "sd", CIRCLE))
                continue
            if "concept" in e.accepts and "classes" not in e.accepts:
                out.append((e.family, e.name, "shapes", CIRCLE))
                continue
            for kind in e.model_kinds:
                if e.name == "sfd" and kind == "flow":
                    continue  # SFD distils a diffusion teacher's score; a flow teacher is tested in test_sfd
                out.append((e.family, e.name, kind, CLASS3))
        else:
            out.append((e.family, e.name, e.family, CLASS3))
    return out


@pytest.fixture(scope="module")
def models(digits, sd_pipe, tiny, tmp_path_factory):  # noqa: F811
    """Each tiny model and its data, built once (the i2i one trained a few steps)."""
    from genunlearn.classify.model import ClassifierModel, Recipe, train_classifier
    from genunlearn.families import open_model
    from genunlearn.i2i.recipe import I2IJob, I2IRecipe, train_i2i

    small = digits.subset(torch.arange(300))
    classifier, _ = train_classifier(small, 0, Recipe(epochs=1))
    i2i_recipe = I2IRecipe(
        network={"patch": 2, "enc_dim": 16, "enc_depth": 1, "dec_dim": 16, "dec_depth": 1, "heads": 2}, batch_size=32
    )
    return {
        "flow": (mlp("flow", digits), digits),
        "diffusion": (mlp("diffusion", digits), digits),
        "shapes": (tiny, load_dataset("shapes")),
        "sd": (open_model(sd_pipe, task="shapes")[1], None),
        "classifier": (ClassifierModel(classifier, small.meta(), {"task": "digits"}), small),
        "i2i": (train_i2i(I2IJob(steps=2, recipe=i2i_recipe), progress=False), digits),
    }


def weights(model) -> dict[str, torch.Tensor]:
    """Every tensor of the model's network and of its trainable components (AdvUnlearn trains the
    text encoder of a text-to-image pipeline)."""
    out = {k: v.detach().clone() for k, v in model.net.state_dict().items()}
    for name, part in getattr(model, "components", {}).items():
        if isinstance(part, torch.nn.Module):
            out |= {f"{name}/{k}": v.detach().clone() for k, v in part.state_dict().items()}
    return out


def run(family, name, model, data, request, **values):
    settings = {"generative": SMALL.get(name, {}), "classifier": SMALL_CLASSIFIER.get(name, {}), "i2i": SMALL_I2I}
    method = get_method(name, {**settings[family], **values}, family=family)
    budget = None if getattr(method, "closed_form", False) and name != "rece" else BUDGET
    return method.unlearn(model, request, data, budget=budget), budget


@pytest.mark.parametrize(("family", "name", "kind", "request_"), cases(), ids=lambda v: str(v)[:20])
def test_every_method_keeps_the_contract(models, family, name, kind, request_):
    model, data = models[kind]
    before = weights(model)
    first, budget = run(family, name, model, data, request_)
    second, _ = run(family, name, model, data, request_)
    after = weights(model)
    assert all(before[k].equal(after[k]) for k in before), "the input model changed"
    assert type(first) is type(model) and first.family == model.family
    assert getattr(first, "kind", None) == NEW_KIND.get(name, getattr(model, "kind", None))
    assert first.net is not model.net and set(weights(first)) == set(before)
    record = first.info["unlearn"]
    assert first.info["method"] == name and first.info["role"] == "unlearned"
    assert {"method", "config", "steps", "seconds"} <= set(record) and record["method"] == name
    if budget is not None and name != "rece":
        assert record["epochs" if family == "classifier" else "steps"] == budget
    a, b = weights(first), weights(second)
    assert all(a[k].equal(b[k]) for k in a), "a seeded run is not bit-identical"
    assert any(not a[k].equal(before[k]) for k in a), "nothing moved"


@pytest.mark.parametrize("name", ["esd", "fdiv"])
def test_weights_outside_the_conditioning_group_do_not_move(models, name):
    model, data = models["shapes"]
    out, _ = run("generative", name, model, data, CIRCLE, params="conditioning")
    before, after = weights(model), weights(out)
    moved = {k for k in before if not before[k].equal(after[k])}
    assert moved and all(any(p in "." + k for p in CONDITIONING_PARAMS) for k in moved), sorted(moved)


def test_every_registered_method_is_covered():
    covered = {(f, n) for f, n, _, _ in cases()} | NOT_FROM_A_MODEL
    assert covered == {(e.family, e.name) for e in CATALOGUE}
    assert copy.copy(NOT_FROM_A_MODEL) <= {(e.family, e.name) for e in CATALOGUE}
