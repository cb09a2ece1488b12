"""A method's defaults for a model kind are what its benchmark picked on validation
(benchmarks/picks.json, written by the benchmark's full run), and a model of that kind gets them."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from genunlearn.methods import get_method
from genunlearn.methods.base import defaults_kind, method_class, registry

PICKS = json.loads((Path(__file__).parents[1] / "benchmarks" / "picks.json").read_text())


@pytest.mark.parametrize(("kind", "name"), [(kind, name) for kind, methods in PICKS.items() for name in methods])
def test_defaults_are_the_recorded_picks(kind, name):
    assert method_class(name, "generative").kind_defaults[kind] == PICKS[kind][name]


def test_every_kind_default_was_picked_by_a_benchmark():
    unrecorded = [
        (f, n, kind) for (f, n), cls in registry().items() for kind in cls.kind_defaults if n not in PICKS.get(kind, {})
    ]
    assert not unrecorded


def test_a_model_gets_its_kinds_defaults_and_options_win(monkeypatch):
    sd = SimpleNamespace(prompt_cond=None, net=SimpleNamespace(prompt_cond=None), kind="diffusion")
    ddpm = SimpleNamespace(kind="diffusion", net=None)
    assert defaults_kind(sd) == "sd" and defaults_kind(ddpm) == "diffusion"
    monkeypatch.setattr(
        method_class("esd", "generative"), "kind_defaults", {"sd": {"sample_steps": 25, "params": "conditioning"}}
    )
    assert (
        get_method("esd", family="generative", model=sd).config.sample_steps,
        get_method("esd", family="generative", model=sd).config.params,
    ) == (25, "conditioning")
    assert (
        get_method("esd", family="generative", model=ddpm).config.sample_steps
        == get_method("esd", family="generative").config.sample_steps
        == 50
    )
    assert (
        get_method("esd", {"sample_steps": 10}, family="generative", model=sd).config.sample_steps == 10
    )  # the user's option wins
