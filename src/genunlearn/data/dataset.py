"""The one in-memory dataset convention every method and metric reads.

Images are ``(N, C, H, W)`` float in ``[-1, 1]``, 2D points ``(N, 2)``; labels are int64 ``(N,)``.
Conditioning is always an int64 ``(N, A)`` tensor of attribute ids (A = 1 for class labels; shapes
has A = 2: shape and colour). Each attribute's "unspecified" id equals its vocabulary size, so the
all-unspecified row is the null condition used by classifier-free guidance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch

from genunlearn.errors import GenUnlearnError
from genunlearn.forget.request import ForgetRequest

FILLER_WORDS = {"a", "an", "the", "of", "image", "picture", "photo"}


@dataclass(frozen=True)
class Attribute:
    """A conditioning attribute: its name (also its generic word, e.g. "shape") and its values."""

    name: str
    values: tuple[str, ...]


PROMPT_ATTRIBUTES = (Attribute("prompt", ()),)  # a text-to-image pipeline with no task: one row, the empty prompt


@dataclass
class Dataset:
    name: str
    x: torch.Tensor
    labels: torch.Tensor
    attributes: tuple[Attribute, ...]
    attrs: torch.Tensor | None = None  # (N, A) when images carry several attributes
    regions: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None  # named energies

    def __post_init__(self):
        if self.x.shape[0] != self.labels.shape[0]:
            raise GenUnlearnError(f"{self.name}: {self.x.shape[0]} inputs but {self.labels.shape[0]} labels")
        if self.x.dim() not in (2, 4):
            raise GenUnlearnError(
                f"{self.name}: expected (N, 2) points or (N, C, H, W) images, got {tuple(self.x.shape)}"
            )

    # --- what it holds ---------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return "points" if self.x.dim() == 2 else "images"

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.attributes[0].values

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def cond_vocab(self) -> tuple[int, ...]:
        return tuple(len(a.values) for a in self.attributes)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return self.x.shape[0]

    def cond(self) -> torch.Tensor:
        """Full conditioning of every item, ``(N, A)``."""
        return self.attrs if self.attrs is not None else self.labels[:, None]

    def resized(self, shape) -> "Dataset":
        """The same items with images fitted to ``shape`` (C, H, W) (see ``fit_images``)."""
        if self.kind != "images" or tuple(shape) == self.sample_shape:
            return self
        return replace(self, x=fit_images(self.x, tuple(shape)))

    def subset(self, index: torch.Tensor) -> "Dataset":
        attrs = None if self.attrs is None else self.attrs[index]
        return replace(self, x=self.x[index], labels=self.labels[index], attrs=attrs)

    def meta(self) -> dict:
        """JSON-able description stored with every model trained on this data."""
        return {
            "name": self.name,
            "kind": self.kind,
            "sample_shape": list(self.sample_shape),
            "attributes": [{"name": a.name, "values": list(a.values)} for a in self.attributes],
        }

    # --- names → ids ---------------------------------------------------------------------------
    def class_id(self, c) -> int:
        return class_id(self.attributes, c, where=self.name)

    def prompt_to_cond(self, prompt: str) -> torch.Tensor:
        return prompt_to_cond(self.attributes, prompt)

    # --- forget / retain -----------------------------------------------------------------------
    def forget_mask(self, request: ForgetRequest) -> torch.Tensor:
        """Boolean ``(N,)``: which items the request covers."""
        n = len(self)
        if request.kind == "classes":
            ids = torch.tensor([self.class_id(c) for c in request.classes])
            return torch.isin(self.labels, ids)
        if request.kind == "samples":
            idx = torch.tensor(request.samples, dtype=torch.long)
            if idx.numel() and (idx.min() < 0 or idx.max() >= n):
                raise GenUnlearnError(f"sample index out of range for {self.name} (0..{n - 1})")
            mask = torch.zeros(n, dtype=torch.bool)
            mask[idx] = True
            return mask
        if request.kind == "concept":  # every item showing any of the concepts
            mask = torch.zeros(n, dtype=torch.bool)
            for concept in request.concepts:
                attr, value = concept_slot(self.attributes, concept)
                if value is None:
                    raise GenUnlearnError(f"concept {concept!r} is generic; name a specific value to forget")
                mask |= self.cond()[:, attr] == value
            concept_slot(self.attributes, request.anchor)  # fail early on a bad anchor word
            return mask

        energy = self.energy_fn(request.energy)
        with torch.no_grad():
            return energy(self.x) > 0

    def energy_fn(self, energy) -> Callable[[torch.Tensor], torch.Tensor]:
        if callable(energy):
            return energy
        regions = self.regions or {}
        name = str(energy).removeprefix("region:")
        if name not in regions:
            known = ", ".join(sorted(regions)) or "none"
            raise GenUnlearnError(f"unknown energy region {name!r} for {self.name}; known: {known}")
        return regions[name]

    def split(self, request: ForgetRequest) -> tuple["Dataset", "Dataset"]:
        """(forget, retain) subsets; both must be non-empty."""
        mask = self.forget_mask(request)
        if not mask.any():
            raise GenUnlearnError(f"forget split is empty: {request.spec()} matches nothing in {self.name}")
        if mask.all():
            raise GenUnlearnError(f"retain split is empty: {request.spec()} covers all of {self.name}")
        return self.subset(mask.nonzero().squeeze(1)), self.subset((~mask).nonzero().squeeze(1))


def fit_images(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Images ``(N, C, H, W)`` in [-1, 1] fitted to ``shape`` = (C', H', W'): bilinear resize
    (antialiased when shrinking), then channels mapped (1 → C' replicated; 3 → 1 by luminance)."""
    import torch.nn.functional as F

    c, h, w = shape
    if x.shape[2:] != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=h < x.shape[2])
    if x.shape[1] == c:
        return x
    if x.shape[1] == 1:
        return x.repeat(1, c, 1, 1)
    if x.shape[1] == 3 and c == 1:
        return 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    raise GenUnlearnError(f"cannot map {x.shape[1]}-channel images to {c} channels")


def class_id(attributes, c, *, where: str = "this model") -> int:
    """A class id or name → its id in the first attribute's vocabulary (no data needed)."""
    names = attributes[0].values
    if isinstance(c, int) or (isinstance(c, str) and c.lstrip("-").isdigit() and c not in names):
        i = int(c)
        if not 0 <= i < len(names):
            raise GenUnlearnError(f"unknown class {c} for {where}: ids are 0..{len(names) - 1}")
        return i
    if c in names:
        return names.index(c)
    raise GenUnlearnError(f"unknown class {c!r} for {where}; classes are {', '.join(names)}")


def concept_slot(attributes, word: str) -> tuple[int, int | None]:
    """Map a concept word (or a one-word prompt, "a circle") to (attribute index, value id); a generic
    word ("shape") gives value None."""
    words = [w for w in word.lower().replace(",", " ").split() if w not in FILLER_WORDS]
    if len(words) != 1:
        raise GenUnlearnError(f"a concept is one word (e.g. circle or 'a circle'), got {word!r}")
    w = words[0]
    for i, a in enumerate(attributes):
        if w in a.values:
            return i, a.values.index(w)
        if w == a.name:
            return i, None
    vocab = sorted({v for a in attributes for v in a.values} | {a.name for a in attributes})
    raise GenUnlearnError(f"unknown concept word {word!r}; known words: {', '.join(vocab)}")


def prompt_to_cond(attributes, prompt: str) -> torch.Tensor:
    """ "a red circle" → ``(A,)`` ids; unmentioned attributes are unspecified."""
    cond = torch.tensor([len(a.values) for a in attributes], dtype=torch.long)
    for word in prompt.lower().replace(",", " ").split():
        if word in FILLER_WORDS:
            continue
        attr, value = concept_slot(attributes, word)
        if value is not None:
            cond[attr] = value
    return cond


def cond_to_prompt(attributes, cond) -> str:
    """Inverse of ``prompt_to_cond`` for display: the first attribute is the noun, the rest adjectives."""
    words = [a.values[int(v)] if int(v) < len(a.values) else None for a, v in zip(attributes, cond)]
    if len(attributes) == 1:
        return words[0] or "(unconditional)"
    if all(w is None for w in words):
        return "(unconditional)"
    phrase = " ".join([w for w in words[1:] if w] + [words[0] or attributes[0].name])
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase
