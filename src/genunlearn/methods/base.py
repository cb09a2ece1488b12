"""The method interface and the one registry (every model family's methods), lazy.

A method is a small class with a typed ``Config`` (defaults written next to it) and
``unlearn(model, request, data, *, budget, callbacks) -> model``. Its row in ``catalogue.CATALOGUE``
names it and says its model ``family`` (generative, classifier, i2i), the model kinds and the
forget-request kinds it accepts; others fail with one line before any work starts. A name may exist
once per family (``salun`` is a classifier method and a diffusion method). ``method_class`` imports
only the module of the method asked for.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, ClassVar

from genunlearn.catalogue import BY_TARGET, CATALOGUE
from genunlearn.errors import GenUnlearnError


@dataclass
class EmptyConfig:
    pass


class Method:
    name: ClassVar[str]  # these four come from the class's catalogue row
    family: ClassVar[str]
    model_kinds: ClassVar[tuple[str, ...]]
    accepts: ClassVar[tuple[str, ...]]
    Config: ClassVar[type] = EmptyConfig
    # True: ``unlearn`` is handed ``data=None`` (the request is not resolved against data)
    data_free: ClassVar[bool] = False
    # True: one computed edit, no training steps (no batches drawn, no gradients averaged)
    closed_form: ClassVar[bool] = False
    # False: a concept request may leave the anchor out (the method has a default guide)
    needs_anchor: ClassVar[bool] = True

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        row = BY_TARGET.get(f"{cls.__module__}:{cls.__qualname__}")
        if row is not None:  # a shared base class (e.g. of the classifier methods) has no row
            cls.name, cls.family, cls.model_kinds, cls.accepts = row.name, row.family, row.model_kinds, row.accepts

    def __init__(self, config=None):
        self.config = config if config is not None else self.Config()

    def reads_data(self, model, request) -> bool:
        """Whether ``unlearn`` needs the model's data for this request (else it is handed ``data=None``)."""
        return not self.data_free

    def check(self, model, request) -> None:
        """Fail early on a request kind or model kind this method does not handle."""
        if request.kind not in self.accepts:
            raise GenUnlearnError(
                f"method {self.name!r} does not accept {request.kind!r} requests (accepts: {', '.join(self.accepts)})"
            )
        if model.kind not in self.model_kinds:
            raise GenUnlearnError(
                f"method {self.name!r} works on {'/'.join(self.model_kinds)} models, not {model.kind!r}"
            )
        if request.kind == "concept" and request.anchor is None and self.needs_anchor:
            raise GenUnlearnError(
                f"method {self.name!r} needs an anchor: --anchor WORD, what the concept should become (e.g. --concept circle --anchor shape)"
            )

    def unlearn(self, model, request, data, *, budget: int | None = None, callbacks: tuple[Callable, ...] = ()):
        """Return a new model that has forgotten ``request``; ``model`` is left untouched.
        ``data`` is the training data (methods that are data-free ignore it); ``budget`` overrides
        the configured number of steps (epochs for classifiers); ``callbacks(step, record)`` see
        each logged step."""
        raise NotImplementedError

    def unlearned_info(self, info: dict, *, steps: int, seconds: float, **extra) -> dict:
        """The input model's ``info`` plus the run record every method leaves in the same shape:
        ``info["unlearn"] = {method, config, steps, seconds, ...method-specific}``."""
        record = {
            "method": self.name,
            "config": asdict(self.config),
            "steps": steps,
            "seconds": round(seconds, 3),
            **extra,
        }
        return {**info, "role": "unlearned", "method": self.name, "unlearn": record}


def method_class(name: str, family: str | None = None) -> type[Method]:
    """The class registered as ``name`` (for ``family``; without it, the name must be unique)."""
    matches = {e.family: e for e in CATALOGUE if e.name == name and (family is None or e.family == family)}
    if not matches:
        known = sorted({e.name for e in CATALOGUE if family is None or e.family == family})
        where = f" for {family} models" if family else ""
        raise GenUnlearnError(f"unknown method {name!r}{where}; available: {', '.join(known)}")
    if len(matches) > 1:
        raise GenUnlearnError(
            f"method {name!r} exists for several model families ({', '.join(sorted(matches))}); say which"
        )
    return next(iter(matches.values())).load()


def registry() -> dict[tuple[str, str], type[Method]]:
    """(family, name) → class for every method (imports them all)."""
    return {(e.family, e.name): e.load() for e in CATALOGUE}


def defaults_kind(model) -> str:
    """Which defaults a model gets: ``sd`` for a text-to-image pipeline, else its kind (flow, diffusion,
    classifier, i2i)."""
    from genunlearn.methods.concepts import is_text_model

    return "sd" if is_text_model(model) else getattr(model, "kind", "")


@functools.cache
def picks() -> dict[str, dict[str, dict]]:
    """Model kind → method name → ``{"setting": ..., "by": ...}``: the settings each method's benchmark
    picked on validation for that kind of model (``methods/picks.json``, written by the benchmarks'
    full runs through ``benchmarks/common.record_pick``)."""
    return json.loads((Path(__file__).parent / "picks.json").read_text())


def kind_defaults(name: str, kind: str) -> dict:
    """The picked settings of method ``name`` for models of ``kind`` (empty where none was picked)."""
    return dict(picks().get(kind, {}).get(name, {}).get("setting", {}))


def get_method(name: str, values: dict | None = None, *, family: str | None = None, model=None) -> Method:
    """An instance of method ``name`` configured from ``values`` (validated before any work) over the
    defaults picked for ``model``'s kind (``kind_defaults``; the ``Config``'s own without a model)."""
    from genunlearn.config import build_config

    cls = method_class(name, family)
    picked = kind_defaults(cls.name, defaults_kind(model)) if model is not None else {}
    return cls(build_config(cls.Config, {**picked, **(values or {})}))
