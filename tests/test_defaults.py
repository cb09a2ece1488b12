"""A method's defaults for a model kind are what its benchmark picked on validation
(benchmarks/picks.json, written by the benchmark's full run), and a model of that kind gets them."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from genunlearn.methods import get_method
from genunlearn.methods.base import REGISTRY, defaults_kind, method_class

PICKS = json.loads((Path(__file__).parents[1] / "benchmarks" / "picks.json").read_text())


@pytest.mark.parametrize(("kind", "name"), [(kind, name) for kind, methods in PICKS.items() for name in methods])
def test_defaults_are_the_recorded_picks(kind, name):
    assert method_class(name, "generative").kind_defaults[kind] == PICKS[kind][name]


def test_every_kind_default_was_picked_by_a_benchmark():
    unrecorded = [(f, n, kind) for (f, n), cls in REGISTRY.items() for kind in cls.kind_defaults if n not in PICKS.get(kind, {})]
    assert not unrecorded


def test_a_model_gets_its_kinds_defaults_and_options_win():
    sd = SimpleNamespace(prompt_cond=None, net=SimpleNamespace(prompt_cond=None), kind="diffusion")
    ddpm = SimpleNamespace(kind="diffusion", net=None)
    assert defaults_kind(sd) == "sd" and defaults_kind(ddpm) == "diffusion"
    name, picked = next((n, v) for n, v in PICKS["sd"].items() if v)
    key, value = next(iter(picked.items()))
    assert getattr(get_method(name, family="generative", model=sd).config, key) == value
    plain = getattr(get_method(name, family="generative", model=ddpm).config, key)
    assert getattr(get_method(name, family="generative").config, key) == plain
    if plain != value:
        assert getattr(get_method(name, {key: plain}, family="generative", model=sd).config, key) == plain
