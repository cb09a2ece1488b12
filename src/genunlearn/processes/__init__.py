"""Generative processes: how a network becomes a sampler and a loss. They hold no weights."""

from __future__ import annotations

from genunlearn.errors import GenUnlearnError


def build_process(cfg: dict):
    from genunlearn.processes.composed import ComposedFlow
    from genunlearn.processes.diffusion import Diffusion
    from genunlearn.processes.flow_matching import FlowMatching
    from genunlearn.processes.one_step import OneStep

    cfg = dict(cfg)
    kinds = {"flow": FlowMatching, "diffusion": Diffusion, "composed": ComposedFlow, "one_step": OneStep}
    name = cfg.pop("name", None)
    if name not in kinds:
        raise GenUnlearnError(f"unknown process {name!r} (known: {', '.join(kinds)})")
    if name == "composed" and "base" in cfg:
        cfg["base"] = build_process(cfg["base"])
    try:
        return kinds[name](**cfg)
    except TypeError as e:
        raise GenUnlearnError(f"bad {name} process config: {e}") from None
