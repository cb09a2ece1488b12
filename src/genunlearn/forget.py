"""What to forget, independent of how: the forget request and its parser.

Spec strings (CLI ``--forget``): ``classes=3``, ``classes=0,1`` or class names, ``samples=4,17,99``,
``concept=circle;anchor=shape``, ``energy=region:quadrant`` (a region registered by the task).
Requests are resolved against a dataset in ``Dataset.split``; that is where unknown names fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from genunlearn.errors import GenUnlearnError

KINDS = ("classes", "concept", "energy", "samples")


@dataclass(frozen=True)
class ForgetRequest:
    """One thing to forget.

    kind: "classes" (ids or names), "concept" (+ anchor word), "energy" (callable E(x), high =
    forget-like, or a named region), "samples" (training-set indices).
    """

    kind: str
    classes: tuple = ()
    concept: str | None = None
    anchor: str | None = None
    energy: Callable[[Any], Any] | str | None = None
    samples: tuple[int, ...] = ()
    options: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise GenUnlearnError(f"unknown forget kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        need = {"classes": self.classes, "concept": self.concept, "energy": self.energy, "samples": self.samples}
        if not need[self.kind]:
            raise GenUnlearnError(f"forget request of kind {self.kind!r} names nothing to forget")
        if self.kind == "concept" and not self.anchor:
            raise GenUnlearnError("a concept request needs an anchor (e.g. concept=circle;anchor=shape)")

    @classmethod
    def of_classes(cls, *classes) -> "ForgetRequest":
        return cls("classes", classes=tuple(classes))

    def spec(self) -> str:
        """The canonical spec string (used in cache keys and reports)."""
        if self.kind == "classes":
            return "classes=" + ",".join(str(c) for c in self.classes)
        if self.kind == "samples":
            return "samples=" + ",".join(str(i) for i in self.samples)
        if self.kind == "concept":
            return f"concept={self.concept};anchor={self.anchor}"
        name = self.energy if isinstance(self.energy, str) else getattr(self.energy, "__name__", "callable")
        return f"energy={name}"


def _int_or_name(token: str):
    token = token.strip()
    return int(token) if token.lstrip("-").isdigit() else token


def parse_forget(spec: str | None) -> ForgetRequest | None:
    """Parse a CLI spec string; ``None``/empty means nothing to forget."""
    if spec is None or not spec.strip():
        return None
    fields: dict[str, str] = {}
    for part in spec.split(";"):
        if "=" not in part:
            raise GenUnlearnError(f"bad forget spec {spec!r}: expected key=value (e.g. classes=3)")
        key, value = part.split("=", 1)
        key, value = key.strip(), value.strip()
        if not value:
            raise GenUnlearnError(f"bad forget spec {spec!r}: {key} has no value")
        fields[key] = value
    known = {"classes", "samples", "concept", "anchor", "energy"}
    unknown = set(fields) - known
    if unknown:
        raise GenUnlearnError(f"bad forget spec {spec!r}: unknown key {sorted(unknown)[0]!r}")
    if "classes" in fields:
        return ForgetRequest.of_classes(*(_int_or_name(t) for t in fields["classes"].split(",") if t.strip()))
    if "samples" in fields:
        try:
            idx = tuple(int(t) for t in fields["samples"].split(",") if t.strip())
        except ValueError:
            raise GenUnlearnError(f"bad forget spec {spec!r}: samples must be integer indices") from None
        return ForgetRequest("samples", samples=idx)
    if "concept" in fields:
        return ForgetRequest("concept", concept=fields["concept"], anchor=fields.get("anchor"))
    if "energy" in fields:
        return ForgetRequest("energy", energy=fields["energy"])
    raise GenUnlearnError(f"bad forget spec {spec!r}: 'anchor' needs a 'concept'")
