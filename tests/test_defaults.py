"""A method's defaults for a model kind are what its benchmark picked on validation
(``methods/picks.json``, written by the benchmarks' full runs), and a model of that kind gets them."""

from types import SimpleNamespace

import pytest

from genunlearn.catalogue import CATALOGUE
from genunlearn.errors import GenUnlearnError
from genunlearn.methods import get_method
from genunlearn.methods.base import defaults_kind, picks

FAMILY_OF_KIND = {
    "flow": "generative",
    "diffusion": "generative",
    "sd": "generative",
    "classifier": "classifier",
    "i2i": "i2i",
}
PICKED = [(kind, name) for kind, methods in picks().items() for name in methods]


def model_of(kind: str):
    """The attributes ``defaults_kind`` reads, for a model of ``kind``."""
    if kind == "sd":
        return SimpleNamespace(
            kind="diffusion", family="generative", prompt_cond=None, net=SimpleNamespace(prompt_cond=None)
        )
    if kind in ("flow", "diffusion"):
        return SimpleNamespace(kind=kind, family="generative", net=None)
    return SimpleNamespace(kind=kind, family=kind)


@pytest.mark.parametrize(("kind", "name"), PICKED)
def test_a_model_of_the_kind_gets_the_recorded_pick(kind, name):
    entry = picks()[kind][name]
    assert entry["by"].startswith("benchmarks/") and entry["setting"]
    config = get_method(name, family=FAMILY_OF_KIND[kind], model=model_of(kind)).config
    assert {k: getattr(config, k) for k in entry["setting"]} == entry["setting"]


@pytest.mark.parametrize(("kind", "name"), PICKED)
def test_every_pick_names_a_registered_method_of_that_kind(kind, name):
    rows = [r for r in CATALOGUE if r.name == name and r.family == FAMILY_OF_KIND[kind]]
    assert rows and (kind in ("sd", "classifier", "i2i") or kind in rows[0].model_kinds)


def test_kinds_are_told_apart_and_options_win():
    assert [defaults_kind(model_of(k)) for k in FAMILY_OF_KIND] == list(FAMILY_OF_KIND)
    flow = model_of("flow")
    assert (
        get_method("continualflow", family="generative", model=flow).config.pool
        == picks()["flow"]["continualflow"]["setting"]["pool"]
    )
    assert get_method("continualflow", family="generative").config.pool == 10000  # no model: the Config's own
    assert (
        get_method("continualflow", {"pool": 64}, family="generative", model=flow).config.pool == 64
    )  # the user's option wins
    # ESD's pick differs between a DDPM and a text-to-image pipeline
    assert (
        get_method("esd", family="generative", model=model_of("diffusion")).config.lr
        != get_method("esd", family="generative", model=model_of("sd")).config.lr
    )


def test_a_bad_option_is_still_refused_over_the_picks():
    with pytest.raises(GenUnlearnError, match="pool"):
        get_method("continualflow", {"pool": 1}, family="generative", model=model_of("flow"))
