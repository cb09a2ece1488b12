"""A small UnlearnCanvas: procedural objects × fill styles × colours, with paraphrased captions.

Each 32×32 image shows one object (8: circle, square, triangle, diamond, cross, star, heart,
crescent) filled in one style (6: solid, striped, dotted, checkered, outlined, crosshatched) and one
colour (6: red, yellow, green, cyan, blue, magenta) on a dark background, with random size, position,
rotation (±12°), texture phase and stripe direction, brightness, background tint and pixel noise.
Attributes are (object, style, colour), so ``concept=circle``, ``concept=striped`` and
``concept=red`` each name one slot; the row prompt is "a striped red circle". Splits draw all 288
combinations equally often (train 11,520, val and test 2,016 each), each from its own seed.

Captions. Where ``shapes`` has one prompt per attribute row, canvas has many, from templates
("a {style} {colour} {object}", "a {colour} {object} with {pattern}", "a {style} {object} in
{colour}", ...) and synonyms ("round shape" for circle, "hollow" for outlined, "pink" for magenta):

* ``captions(row, split="train")``: every training caption of an attribute row ``(object, style,
  colour)`` (ids; an id equal to the vocabulary size is unspecified: the generic noun "object" or
  "shape", no style or colour word), a sorted tuple, deterministic. The row prompt is among them.
* ``captions(row, split="heldout")``: captions a model never trains on -- every caption that uses a
  held-out template ("a {object} in {colour} with {pattern}", "{style} and {colour}: a {object}",
  ...) or a held-out synonym (disk, banded, crimson, ...), disjoint from the training captions. They
  test whether an erasure reaches phrasings it was not given. Held-out *templates* reorder the
  attribute words the model knows, with a few linking words it never trained on ("picture", "and",
  punctuation); held-out *synonyms* are words a model trained from scratch never saw (they probe
  models whose text encoder knows them, e.g. a pretrained one).
* ``sample_captions(cond, generator, split="train")``: one caption per row of an ``(N, 3)`` id
  tensor, drawn uniformly with ``generator`` (evaluation prompts; training draws from ``sd_pipeline.CaptionBank``).

The all-unspecified row is the empty caption (the unconditional input) in both splits.
"""

from __future__ import annotations

import itertools
import math
import re
from functools import lru_cache

import torch

from genunlearn.data.dataset import Attribute, Dataset
from genunlearn.errors import GenUnlearnError

OBJECTS = ("circle", "square", "triangle", "diamond", "cross", "star", "heart", "crescent")
STYLES = ("solid", "striped", "dotted", "checkered", "outlined", "crosshatched")
COLOURS = ("red", "yellow", "green", "cyan", "blue", "magenta")
ATTRIBUTES = (Attribute("object", OBJECTS), Attribute("style", STYLES), Attribute("colour", COLOURS))
RGB = torch.tensor([[1.0, 0.15, 0.1], [1.0, 0.9, 0.1], [0.15, 0.85, 0.15], [0.1, 0.85, 0.95], [0.2, 0.3, 1.0], [0.95, 0.2, 0.9]])
SIZE = 32
SEEDS = {"train": 20, "val": 22, "test": 21}
REPEATS = {"train": 40, "val": 7, "test": 7}  # copies of each of the 288 combinations per split
DIM = 0.3  # brightness of a textured shape's unpainted part, so its silhouette stays visible
PERIOD = 4  # texture period in pixels (stripes, checker; dots 5)
OUTLINE = 1.75  # outline width in pixels

# --- drawing: signed distances (negative inside), turned into antialiased pixel coverage ---------


def _box(u, v, a, b):
    """Distance to the axis-aligned rectangle of half-sides (a, b) (exact inside, Chebyshev outside)."""
    return torch.maximum(u.abs() - a, v.abs() - b)


def _line(u, v, p, q):
    """Signed distance to the line through p and q; negative on the side a polygon listed
    anticlockwise on screen (v pointing down) has inside."""
    (px, py), (qx, qy) = p, q
    nx, ny = py - qy, qx - px
    return ((u - px) * nx + (v - py) * ny) / math.hypot(nx, ny)


def _convex(u, v, vertices):
    """Distance to a convex polygon: the largest of its edges' line distances."""
    return torch.stack([_line(u, v, p, q) for p, q in zip(vertices, vertices[1:] + vertices[:1])]).amax(0)


def _object_distance(k: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Signed distance to object ``k``, in units of its half-extent (v points down)."""
    name = OBJECTS[k]
    rho = (u**2 + v**2).sqrt()
    if name == "circle":
        return rho - 0.95
    if name == "square":
        return _box(u, v, 0.8, 0.8)
    if name == "triangle":
        return _convex(u, v, [(0.0, -1.0), (-1.0, 0.8), (1.0, 0.8)])
    if name == "diamond":
        return _convex(u, v, [(0.0, -1.0), (-0.75, 0.0), (0.0, 1.0), (0.75, 0.0)])
    if name == "cross":
        return torch.minimum(_box(u, v, 0.36, 1.0), _box(u, v, 1.0, 0.36))
    if name == "star":  # fold into one half-point: inside is the origin's side of the tip–notch line
        sector = 2 * math.pi / 5
        phi = (torch.atan2(u, -v) + sector / 2).remainder(sector) - sector / 2
        a, b = rho * phi.cos(), rho * phi.sin().abs()
        notch = (0.45 * math.cos(sector / 2), 0.45 * math.sin(sector / 2))
        return -_line(a, b, (1.0, 0.0), notch)
    if name == "heart":  # a diamond with a disc on each upper side
        lobe = 0.6
        return torch.minimum(_convex(u, v, [(0.0, -0.7), (-0.85, 0.15), (0.0, 1.0), (0.85, 0.15)]), torch.minimum(((u + 0.425) ** 2 + (v + 0.275) ** 2).sqrt(), ((u - 0.425) ** 2 + (v + 0.275) ** 2).sqrt()) - lobe)
    return torch.maximum(rho - 1.0, 0.8 - ((u - 0.45) ** 2 + (v + 0.15) ** 2).sqrt())  # crescent


def _texture(style: int, px: torch.Tensor, py: torch.Tensor, vertical: torch.Tensor) -> torch.Tensor:
    """Painted fraction of each pixel for fill ``style``, ``(n, H, W)``, from the phase-shifted pixel
    centres ``px`` ``(n, 1, W)`` and ``py`` ``(n, H, 1)``; the outline is drawn in ``render``."""
    name = STYLES[style]
    if name == "striped":
        return torch.where(vertical[:, None, None], px.remainder(PERIOD) < PERIOD / 2, py.remainder(PERIOD) < PERIOD / 2).float()
    if name == "dotted":  # discs of radius 1.3 centred on pixels, 5 pixels apart
        d = ((px + 0.5).remainder(5) - 2.5) ** 2 + ((py + 0.5).remainder(5) - 2.5) ** 2
        return (1.8 - d.sqrt()).clamp(0, 1)
    if name == "checkered":
        return ((px / (PERIOD / 2)).floor() + (py / (PERIOD / 2)).floor()).remainder(2)
    if name == "crosshatched":  # one-pixel diagonal lines both ways, 3.5 pixels apart
        d = torch.minimum(((px + py).remainder(5) - 2.5).abs(), ((px - py).remainder(5) - 2.5).abs()) / math.sqrt(2)
        return (1.0 - d).clamp(0, 1)
    return torch.ones(px.shape[0], py.shape[1], px.shape[2])  # solid (outlined: replaced in render)


def render(obj: torch.Tensor, style: torch.Tensor, colour: torch.Tensor, generator: torch.Generator, size: int = SIZE) -> torch.Tensor:
    """One image per (object, style, colour) id triple, ``(N, 3, size, size)`` in [-1, 1]."""
    n = obj.shape[0]
    r = size * (0.28 + 0.12 * torch.rand(n, generator=generator))  # half-extent in pixels
    cx = r + (size - 2 * r) * torch.rand(n, generator=generator)
    cy = r + (size - 2 * r) * torch.rand(n, generator=generator)
    angle = (torch.rand(n, generator=generator) - 0.5) * math.radians(24)
    phase = torch.randint(0, 20, (n, 2), generator=generator).float()  # a multiple of every texture period
    vertical = torch.rand(n, generator=generator) < 0.5
    brightness = 0.8 + 0.2 * torch.rand(n, 1, 1, 1, generator=generator)
    bg = 0.08 * torch.rand(n, 3, 1, 1, generator=generator)
    noise = 0.02 * torch.randn(n, 3, size, size, generator=generator)
    grid = torch.arange(size, dtype=torch.float32) + 0.5  # pixel centres
    dist = torch.empty(n, size, size)  # to the object's edge, in pixels
    for k in range(len(OBJECTS)):
        i = (obj == k).nonzero().flatten()
        dx = ((grid - cx[i, None]) / r[i, None])[:, None, :]
        dy = ((grid - cy[i, None]) / r[i, None])[:, :, None]
        cos, sin = angle[i].cos()[:, None, None], angle[i].sin()[:, None, None]
        dist[i] = _object_distance(k, cos * dx + sin * dy, cos * dy - sin * dx) * r[i, None, None]
    paint = torch.empty(n, size, size)
    for k in range(len(STYLES)):
        i = (style == k).nonzero().flatten()
        paint[i] = _texture(k, (grid + phase[i, :1])[:, None, :], (grid + phase[i, 1:])[:, :, None], vertical[i])
    cover = (0.5 - dist).clamp(0, 1)
    on, dim = cover * paint, cover * (1 - paint)
    i = (style == STYLES.index("outlined")).nonzero().flatten()
    on[i] = torch.minimum(0.5 - dist[i], dist[i] + OUTLINE + 0.5).clamp(0, 1)  # a band inside the edge; inside it, background
    dim[i] = 0
    on, dim = on[:, None], dim[:, None]
    fg = RGB[colour][:, :, None, None] * brightness
    img = on * fg + dim * DIM * fg + (1 - on - dim) * bg + noise
    return (img.clamp(0, 1) * 2 - 1).contiguous()


@lru_cache(maxsize=4)
def _draw(split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(SEEDS[split] * 100 + size)
    combos = torch.tensor(list(itertools.product(*(range(len(a.values)) for a in ATTRIBUTES))))
    attrs = combos.repeat(REPEATS[split], 1)
    attrs = attrs[torch.randperm(len(attrs), generator=g)]
    return render(*attrs.unbind(1), g, size), attrs


def load_canvas(split: str = "train", size: int = SIZE) -> Dataset:
    """A split: every combination ``REPEATS[split]`` times, shuffled, drawn from the split's seed
    (drawn once per process, since a command reads a split several times)."""
    x, attrs = _draw(split, size)
    return Dataset("canvas", x.clone(), attrs[:, 0].clone(), ATTRIBUTES, attrs=attrs.clone())


# --- captions -------------------------------------------------------------------------------------

# value → (training words, held-out words); {s} a style adjective, {w} a style "with" phrase
OBJECT_WORDS = {
    "circle": (("circle", "round shape"), ("disk",)),
    "square": (("square", "box"), ("block",)),
    "triangle": (("triangle", "three-sided shape"), ("wedge",)),
    "diamond": (("diamond", "rhombus"), ("lozenge",)),
    "cross": (("cross", "plus shape"), ("plus sign",)),
    "star": (("star", "five-pointed star"), ("pentagram",)),
    "heart": (("heart", "love heart"), ("valentine",)),
    "crescent": (("crescent", "crescent moon"), ("sickle",)),
    None: (("object", "shape"), ("figure",)),  # unspecified
}
STYLE_WORDS = {
    "solid": (("solid", "filled"), ("plain",)),
    "striped": (("striped", "stripy"), ("banded",)),
    "dotted": (("dotted", "spotted"), ("speckled",)),
    "checkered": (("checkered",), ("checkerboard",)),
    "outlined": (("outlined", "hollow"), ("unfilled",)),
    "crosshatched": (("crosshatched", "hatched"), ("latticed",)),
}
STYLE_PHRASES = {
    "solid": (("a solid fill",), ("a flat fill",)),
    "striped": (("stripes",), ("bands",)),
    "dotted": (("dots",), ("polka dots",)),
    "checkered": (("a checker pattern",), ("a chessboard pattern",)),
    "outlined": (("an outline",), ("only a border",)),
    "crosshatched": (("crosshatching",), ("a lattice pattern",)),
}
COLOUR_WORDS = {
    "red": (("red",), ("crimson",)),
    "yellow": (("yellow",), ("golden",)),
    "green": (("green",), ("emerald",)),
    "cyan": (("cyan", "turquoise"), ("aqua",)),
    "blue": (("blue",), ("cobalt",)),
    "magenta": (("magenta", "pink"), ("fuchsia",)),
}
# (template, slots that must be specified): {o} object, {s} style adjective, {w} style phrase, {c} colour
TRAIN_TEMPLATES = (("a {s} {c} {o}", ""), ("a {c} {s} {o}", ""), ("an image of a {s} {c} {o}", ""), ("a {c} {o} with {w}", "w"), ("a {s} {o} in {c}", "c"))
HELDOUT_TEMPLATES = (("a {o} in {c} with {w}", "cw"), ("a picture of a {c} {o}, {s}", "s"), ("{s} and {c}: a {o}", "sc"))
CAPTION_SPLITS = ("train", "heldout")


def _tidy(caption: str) -> str:
    """Single spaces; "a" → "an" before a vowel."""
    caption = " ".join(caption.split()).replace(" ,", ",")
    return re.sub(r"\b(a|A) (?=[aeiou])", r"\1n ", caption)


def _fill(templates, words: dict) -> set[str]:
    """Every caption of ``templates`` with every combination of the slot words (a template needing an
    unspecified slot is skipped; unspecified adjectives are left out)."""
    out = set()
    for template, needs in templates:
        if any(not words[slot] for slot in needs):
            continue
        slots = {k: v or ("",) for k, v in words.items()}
        for o, s, w, c in itertools.product(slots["o"], slots["s"], slots["w"], slots["c"]):
            out.add(_tidy(template.format(o=o, s=s, w=w, c=c)))
    return out


def _slot_words(row: tuple[int, int, int], heldout: bool) -> dict:
    """The words of each slot for ``row``: its training words, or (``heldout``) all its words."""
    obj, style, colour = (a.values[i] if i < len(a.values) else None for a, i in zip(ATTRIBUTES, row))

    def words(table, key):
        if key not in table:
            return ()
        train, held = table[key]
        return train + held if heldout else train

    return {"o": words(OBJECT_WORDS, obj), "s": words(STYLE_WORDS, style), "w": words(STYLE_PHRASES, style), "c": words(COLOUR_WORDS, colour)}


@lru_cache(maxsize=None)
def _captions(row: tuple[int, int, int], split: str) -> tuple[str, ...]:
    if all(i >= len(a.values) for a, i in zip(ATTRIBUTES, row)):
        return ("",)
    train = _fill(TRAIN_TEMPLATES, _slot_words(row, heldout=False))
    if split == "train":
        return tuple(sorted(train))
    return tuple(sorted(_fill(TRAIN_TEMPLATES + HELDOUT_TEMPLATES, _slot_words(row, heldout=True)) - train))


def captions(row, split: str = "train") -> tuple[str, ...]:
    """Every caption of attribute row ``row`` = (object, style, colour) ids in ``split``
    (``"train"`` or ``"heldout"``), sorted."""
    if split not in CAPTION_SPLITS:
        raise GenUnlearnError(f"unknown caption split {split!r}: expected one of {', '.join(CAPTION_SPLITS)}")
    row = tuple(int(i) for i in row)
    if len(row) != len(ATTRIBUTES) or any(not 0 <= i <= len(a.values) for a, i in zip(ATTRIBUTES, row)):
        raise GenUnlearnError(f"a canvas row is (object, style, colour) ids in 0..{'/'.join(str(len(a.values)) for a in ATTRIBUTES)}, got {row}")
    return _captions(row, split)


def sample_captions(cond: torch.Tensor, generator: torch.Generator, split: str = "train") -> list[str]:
    """One caption per row of ``cond`` ``(N, 3)``, each drawn uniformly from ``captions(row, split)``."""
    pools = [captions(row, split) for row in cond.tolist()]
    picks = torch.rand(len(pools), generator=generator).tolist()
    return [pool[min(int(p * len(pool)), len(pool) - 1)] for pool, p in zip(pools, picks)]
