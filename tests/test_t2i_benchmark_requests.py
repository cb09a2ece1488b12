"""benchmarks/t2i_erasure.py turns each grid setting into the request a user would type: the guide,
the preserved values and the templates; a replacement ("-sibling") row never preserves its own guide."""

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the script imports its neighbour common.py
spec = importlib.util.spec_from_file_location("t2i_erasure", BENCHMARKS / "t2i_erasure.py")
t2i = importlib.util.module_from_spec(spec)
spec.loader.exec_module(t2i)
sys.path.remove(str(BENCHMARKS))


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_the_generic_guide_and_the_attribute_s_other_values_preserved():
    setting = {**t2i.CLOSED_FORM, "preserve_scale": 0.3}
    args = t2i.options(setting, None, "circle")
    assert flag(args, "--preserve") == "square; triangle; diamond; cross; star; heart; crescent"
    assert "a striped red {}" in flag(args, "--templates").split("; ")
    assert ("--set", "preserve_scale=0.3") == tuple(args[-2:]) and "tokens=tail" in args
    assert t2i.anchor_args("uce", "object", "circle", setting) == ["--anchor", "object"]
    assert t2i.anchor_args("uce", "style", "striped", setting) == []  # the empty prompt, UCE's own default


def test_a_replacement_row_sends_the_concept_to_a_sibling_it_does_not_preserve():
    method, fixed, grid = t2i.GRID["uce-sibling"]
    setting = {**fixed, **grid[0]}
    for concept, guide in (("circle", "square"), ("striped", "solid"), ("red", "yellow")):
        args = t2i.options(setting, None, concept)
        assert t2i.anchor_args(method, "object", concept, setting) == ["--anchor", guide]
        assert guide not in flag(args, "--preserve").split("; ") and concept not in flag(args, "--preserve")
        assert not any(a.startswith("guide=") for a in args)  # the guide is the request's, not a --set
    assert method == "uce" and t2i.setting_key(setting) != t2i.setting_key({**t2i.GRID["uce"][1], **grid[0]})


def test_many_concepts_replaced_each_by_a_value_not_erased():
    method, fixed, grid = t2i.GRID["uce-sibling"]
    setting = {**fixed, **grid[0]}
    concepts = "; ".join(t2i.MULTI[10])
    args = t2i.options(setting, None, concepts)
    guides = t2i.anchor_args(method, t2i.MULTI_ANCHOR, concepts, setting)[1].split("; ")
    assert len(guides) == 10 and set(guides) == {"diamond", "solid", "cyan"}
    kept = flag(args, "--preserve").split("; ")
    assert not set(kept) & (set(guides) | set(t2i.MULTI[10])) and "star" in kept and "magenta" in kept
