"""Unlearning methods, one file each, registered by (family, name) (baselines are methods too)."""

from genunlearn.methods.base import REGISTRY, Method, get_method, method_class, register

# every module that registers methods: generative ones here, the other families' in their packages
_MODULES = (
    *(f"genunlearn.methods.{m}" for m in ("retrain", "continualflow", "finetune", "salun", "random_label", "esd", "sfd", "fdiv", "uce", "advunlearn")),
    "genunlearn.classify.methods",
    "genunlearn.i2i.methods",
)


def load_all() -> None:
    import importlib

    for m in _MODULES:
        importlib.import_module(m)


__all__ = ["REGISTRY", "Method", "get_method", "load_all", "method_class", "register"]
