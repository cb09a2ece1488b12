"""Unlearning methods, one file each, listed in ``catalogue.CATALOGUE`` (baselines are methods too)."""

from genunlearn.methods.base import Method, get_method, method_class, registry

__all__ = ["Method", "get_method", "method_class", "registry"]
