"""Unlearning methods, one file each, registered by name (baselines are methods too)."""

from genunlearn.methods.base import REGISTRY, Method, get_method, register

_MODULES = ("retrain", "continualflow", "finetune", "salun", "random_label", "esd", "sfd", "fdiv")
_ELSEWHERE = ("genunlearn.i2i.methods",)  # model families with their own package


def load_all() -> None:
    import importlib

    for m in _MODULES:
        importlib.import_module(f"genunlearn.methods.{m}")
    for m in _ELSEWHERE:
        importlib.import_module(m)


__all__ = ["REGISTRY", "Method", "get_method", "load_all", "register"]
