"""What to forget, independent of how: the forget request, its parser, and a concept request's prompts.

Spec strings (CLI ``--forget``): ``classes=3``, ``classes=0,1`` or class names, ``samples=4,17,99``,
``concept=circle;anchor=shape``, ``energy=region:quadrant`` (a region registered by the task).
A concept request may name several concepts and the concepts to preserve (``|`` between them in a
spec, ``;`` on the CLI's ``--concept``/``--preserve``), a prompt file (``prompts=FILE.csv``: columns
``prompt``, optional ``concept`` and ``split``, the shape of the public ESD and UCE prompt lists) and
prompt templates (``templates=a photo of {}|a painting of {}``); ``erase_prompts`` expands them into
(prompt, anchor prompt) pairs for text-to-image models. Requests are resolved against a dataset in
``Dataset.split``; that is where unknown names fail.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from genunlearn.errors import GenUnlearnError

KINDS = ("classes", "concept", "energy", "samples")
LIST_SEP = "|"  # between several concepts, preserved concepts or templates in a spec string


def split_list(text: str | None, sep: str = ";") -> tuple[str, ...]:
    """ "circle; striped" → ("circle", "striped"); an empty item is refused."""
    if text is None:
        return ()
    items = tuple(s.strip() for s in text.split(sep))
    if not all(items):
        raise GenUnlearnError(f"empty item in {text!r}: name each concept (e.g. 'circle; striped')")
    return items


@dataclass(frozen=True)
class ForgetRequest:
    """One thing to forget.

    kind: "classes" (ids or names), "concept" (+ anchor word, optional for methods with a default guide), "energy" (callable E(x), high =
    forget-like, or a named region), "samples" (training-set indices).
    A concept request's ``concept`` may hold several concepts ("circle; striped"); ``preserve`` the
    concepts to keep, ``prompts`` a prompt file, ``templates`` prompt templates ("a photo of {}; ...").
    """

    kind: str
    classes: tuple = ()
    concept: str | None = None
    anchor: str | None = None
    energy: Callable[[Any], Any] | str | None = None
    samples: tuple[int, ...] = ()
    preserve: str | None = None
    prompts: str | None = None
    templates: str | None = None
    options: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise GenUnlearnError(f"unknown forget kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        need = {"classes": self.classes, "concept": self.concept, "energy": self.energy, "samples": self.samples}
        if not need[self.kind]:
            raise GenUnlearnError(f"forget request of kind {self.kind!r} names nothing to forget")
        if self.kind == "concept" and self.anchor is not None and not self.anchor.strip():
            raise GenUnlearnError(
                "the anchor is empty: say what the concept should become (e.g. --anchor 'a shape'), or leave --anchor out for a method whose guide is the empty prompt (uce, rece)"
            )
        if self.kind != "concept" and (self.preserve or self.prompts or self.templates):
            raise GenUnlearnError("preserve, prompts and templates belong to a concept request (--concept)")
        _ = (self.concepts, self.preserved, self.template_list)  # each list is checked here, before any work
        for t in self.template_list:
            if t.count("{}") != 1:
                raise GenUnlearnError(
                    f"template {t!r} must hold one {{}} where the concept goes (e.g. 'a photo of {{}}')"
                )
        if self.prompts is not None and not Path(self.prompts).is_file():
            raise GenUnlearnError(
                f"prompt file {self.prompts} does not exist (a CSV with a prompt column, and optionally concept and split)"
            )

    @property
    def concepts(self) -> tuple[str, ...]:
        """Every concept to erase ("circle; striped" → two)."""
        return split_list(self.concept)

    @property
    def preserved(self) -> tuple[str, ...]:
        return split_list(self.preserve)

    @property
    def template_list(self) -> tuple[str, ...]:
        return split_list(self.templates)

    def names(self) -> list[str]:
        """Every concept name the request holds: erased, anchor (if any), preserved."""
        return [*self.concepts, *([self.anchor] if self.anchor else []), *self.preserved]

    @property
    def has_prompts(self) -> bool:
        """Whether the request carries prompts of its own (preserved concepts, a prompt file, templates)."""
        return bool(self.preserve or self.prompts or self.templates)

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
            extra = {
                "preserve": self.preserved,
                "prompts": (str(Path(self.prompts).resolve()),) if self.prompts else (),
                "templates": self.template_list,
            }
            anchor = f";anchor={self.anchor}" if self.anchor is not None else ""
            return f"concept={LIST_SEP.join(self.concepts)}{anchor}" + "".join(
                f";{k}={LIST_SEP.join(v)}" for k, v in extra.items() if v
            )
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
    known = {"classes", "samples", "concept", "anchor", "energy", "preserve", "prompts", "templates"}
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
        lists = {k: "; ".join(fields[k].split(LIST_SEP)) for k in ("concept", "preserve", "templates") if k in fields}
        return ForgetRequest("concept", anchor=fields.get("anchor"), prompts=fields.get("prompts"), **lists)

    if "energy" in fields:
        return ForgetRequest("energy", energy=fields["energy"])
    raise GenUnlearnError(f"bad forget spec {spec!r}: 'anchor' needs a 'concept'")


@dataclass(frozen=True)
class PromptRow:
    prompt: str
    concept: str | None
    split: str | None


def read_prompt_file(path) -> list[PromptRow]:
    """The rows of a prompt CSV: a ``prompt`` column, optional ``concept`` and ``split`` columns."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        if "prompt" not in columns:
            raise GenUnlearnError(
                f"{path}: a prompt file needs a 'prompt' column (found: {', '.join(columns) or 'nothing'}; optional: concept, split)"
            )
        rows = [{k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in reader]
    out = [PromptRow(r["prompt"], r.get("concept") or None, r.get("split") or None) for r in rows if r["prompt"]]
    if not out:
        raise GenUnlearnError(f"{path}: no prompts")
    return out


def mentions(row: PromptRow, concept: str) -> bool:
    """A row is about ``concept`` when its concept column says so, or (without one) its prompt names it."""
    if row.concept is not None:
        return row.concept.lower() == concept.lower()
    return concept.lower() in row.prompt.lower()


@dataclass(frozen=True)
class ErasePrompts:
    """A concept request as text: (prompt, anchor prompt) pairs, the concept each erases, and the
    prompts whose outputs are kept."""

    target: tuple[str, ...]
    anchor: tuple[str, ...]
    concept: tuple[str, ...]
    preserve: tuple[str, ...]
    preserve_concept: tuple[str, ...]  # which preserved concept each preserved prompt shows


def _replaced(prompt: str, concept: str, guide: str) -> str:
    """``prompt`` with ``concept`` replaced by ``guide`` (removed, spaces tidied, when ``guide`` is empty)."""
    out = re.sub(re.escape(concept), lambda _: guide, prompt, flags=re.IGNORECASE)
    return out if guide else " ".join(out.split())


def erase_prompts(request: ForgetRequest, split: str = "train") -> ErasePrompts:
    """Each concept alone, in every template and in every prompt of the file that is about it (rows
    of ``split`` or with no split); its anchor prompt is the same text with the concept replaced by
    the anchor (the anchor alone where the prompt does not spell the concept out; with no anchor, the
    prompt without the concept's words, or the empty prompt). Preserved
    concepts are expanded the same way; an erased concept no prompt of the file is about is refused."""
    rows = read_prompt_file(request.prompts) if request.prompts else []
    rows = [r for r in rows if r.split in (None, split)]

    def expand(word: str, *, erased: bool = True) -> list[str]:
        found = [r.prompt for r in rows if mentions(r, word)]
        if request.prompts and erased and not found:
            known = sorted({r.concept for r in rows if r.concept})
            raise GenUnlearnError(
                f"concept {word!r} is in no {split} prompt of {request.prompts}"
                + (f" (its concepts: {', '.join(known)})" if known else " (no prompt names it)")
            )
        return list(dict.fromkeys([word, *(t.format(word) for t in request.template_list), *found]))

    guide = request.anchor or ""
    target, anchor, concept = [], [], []
    for c in request.concepts:
        prompts = expand(c)
        target += prompts
        anchor += [_replaced(p, c, guide) if c.lower() in p.lower() else guide for p in prompts]
        concept += [c] * len(prompts)
    kept = {p: w for w in request.preserved for p in expand(w, erased=False)}
    return ErasePrompts(tuple(target), tuple(anchor), tuple(concept), tuple(kept), tuple(kept.values()))
