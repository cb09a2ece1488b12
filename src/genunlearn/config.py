"""Typed configs from TOML/YAML files and ``key=value`` overrides, validated up front."""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path

from genunlearn.errors import GenUnlearnError


def read_config_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise GenUnlearnError(f"{path}: config file not found")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
            if not isinstance(data, dict):
                raise GenUnlearnError(f"{path}: expected a mapping at the top level")
            return data
    except GenUnlearnError:
        raise
    except Exception as e:  # tomllib / yaml parse errors have no common base
        raise GenUnlearnError(f"{path}: cannot parse ({str(e).splitlines()[0]})") from None
    raise GenUnlearnError(f"{path}: config files must be .toml, .yaml or .yml")


def parse_overrides(items: typing.Iterable[str]) -> dict:
    """``["lam=5", "mode=composed"]`` → dict of strings (coerced later against the config type)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise GenUnlearnError(f"bad --set {item!r}: expected key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _coerce(name: str, value, typ):
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin is typing.Literal:  # a typed choice: the value must be one of the listed ones
        if value in args:
            return value
        raise GenUnlearnError(f"{name} must be one of {', '.join(str(a) for a in args)}, not {value!r}")
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(name, value, a)
            except GenUnlearnError as e:
                errors.append(e)
        raise errors[0]
    if origin in (tuple, list):
        items = value.split(",") if isinstance(value, str) else list(value)
        inner = args[0] if args else str
        return tuple(_coerce(name, v, inner) for v in items)
    try:
        if typ is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if typ in (int, float, str):
            if typ is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            out = typ(value)
            if typ is float and not math.isfinite(out):
                raise GenUnlearnError(f"bad value for {name!r}: {value!r} is not a finite number")
            return out
    except (TypeError, ValueError, OverflowError):
        raise GenUnlearnError(f"bad value for {name!r}: {value!r} is not a {typ.__name__}") from None
    return value


def build_config(cls, values: dict):
    """Instantiate dataclass ``cls`` from ``values``; unknown keys and bad values fail with one line."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise GenUnlearnError(f"unknown config key {unknown[0]!r} for {cls.__name__}; known: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(k, v, hints[k]) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise GenUnlearnError(f"bad {cls.__name__}: {e}") from None


def check_bounds(owner: str, **bounds) -> None:
    """One line naming the first value out of its range. ``name=(value, low, high[, ends])``: ``low``
    / ``high`` may be None (unbounded); ``ends`` is "[]" (default), "()", "[)" or "(]"."""
    for name, (value, low, high, *ends) in bounds.items():
        ends = ends[0] if ends else "[]"
        below = low is not None and (value < low if ends[0] == "[" else value <= low)
        above = high is not None and (value > high if ends[1] == "]" else value >= high)
        if below or above or value != value:
            lo = "" if low is None else f"{low} {'<=' if ends[0] == '[' else '<'} "
            hi = "" if high is None else f" {'<=' if ends[1] == ']' else '<'} {high}"
            raise GenUnlearnError(f"{owner}: {name} must satisfy {lo}{name}{hi}, got {value}")
