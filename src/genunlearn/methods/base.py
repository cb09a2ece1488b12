"""The method interface and registry.

A method is a small class with a typed ``Config`` (defaults written next to it) and
``unlearn(model, request, data, *, budget, callbacks) -> model``. It declares which forget-request
kinds it accepts; others fail with one line before any work starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, ClassVar

from genunlearn.errors import GenUnlearnError

REGISTRY: dict[str, type["Method"]] = {}


@dataclass
class EmptyConfig:
    pass


class Method:
    name: ClassVar[str]
    accepts: ClassVar[tuple[str, ...]]
    model_kinds: ClassVar[tuple[str, ...]] = ("flow", "diffusion")
    Config: ClassVar[type] = EmptyConfig

    def __init__(self, config=None):
        self.config = config if config is not None else self.Config()

    def check(self, model, request) -> None:
        """Fail early on a request kind or model family this method does not handle."""
        if request.kind not in self.accepts:
            raise GenUnlearnError(f"method {self.name!r} does not accept {request.kind!r} requests (accepts: {', '.join(self.accepts)})")
        kind = model.info.get("model") or model.process.name
        if kind not in self.model_kinds:
            raise GenUnlearnError(f"method {self.name!r} works on {'/'.join(self.model_kinds)} models, not {kind!r}")

    def unlearn(self, model, request, data, *, budget: int | None = None, callbacks: tuple[Callable, ...] = ()):
        raise NotImplementedError

    def unlearned_info(self, info: dict, *, steps: int, seconds: float, **extra) -> dict:
        """The input model's ``info`` plus the run record every method leaves in the same shape:
        ``info["unlearn"] = {method, config, steps, seconds, ...method-specific}``."""
        record = {"method": self.name, "config": asdict(self.config), "steps": steps, "seconds": round(seconds, 3), **extra}
        return {**info, "role": "unlearned", "method": self.name, "unlearn": record}


def register(cls: type[Method]) -> type[Method]:
    REGISTRY[cls.name] = cls
    return cls


def get_method(name: str, values: dict | None = None) -> Method:
    from genunlearn.config import build_config
    from genunlearn.methods import load_all

    load_all()
    if name not in REGISTRY:
        raise GenUnlearnError(f"unknown method {name!r}; available: {', '.join(sorted(REGISTRY))}")
    cls = REGISTRY[name]
    return cls(build_config(cls.Config, values or {}))
