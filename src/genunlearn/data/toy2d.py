"""Procedural 2D distributions with known geometry (so mass per component is exact)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from genunlearn.data.dataset import Attribute, Dataset


@dataclass(frozen=True)
class Toy2D:
    """A 2D mixture: how to sample it and which component / support a point belongs to."""

    name: str
    components: tuple[str, ...]
    mmd_bandwidth: float  # Gaussian-kernel bandwidth fixed for this task (reported with MMD)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def assign(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(component id, on-support flag) for each point."""
        raise NotImplementedError

    def regions(self) -> dict:
        return {}


class Ring8(Toy2D):
    radius, std = 4.0, 0.35

    def __init__(self):
        super().__init__("ring8", tuple(str(k) for k in range(8)), mmd_bandwidth=1.0)

    @property
    def centres(self) -> torch.Tensor:
        a = torch.arange(8, dtype=torch.float64) * 2 * math.pi / 8
        return (self.radius * torch.stack([a.cos(), a.sin()], 1)).float()

    def sample(self, n, generator):
        k = torch.randint(0, 8, (n,), generator=generator)
        return self.centres[k] + self.std * torch.randn(n, 2, generator=generator), k

    def assign(self, x):
        d = torch.cdist(x.float(), self.centres)
        dist, k = d.min(1)
        return k, dist < 4 * self.std


class Checkerboard(Toy2D):
    """4×4 board on [-4, 4]²; the 8 cells with (i + j) even are filled; label = filled-cell index."""

    def __init__(self):
        super().__init__("checkerboard", tuple(str(k) for k in range(8)), mmd_bandwidth=1.0)

    @property
    def cells(self) -> torch.Tensor:
        return torch.tensor([(i, j) for j in range(4) for i in range(4) if (i + j) % 2 == 0])

    def sample(self, n, generator):
        k = torch.randint(0, 8, (n,), generator=generator)
        lo = self.cells[k].float() * 2 - 4
        return lo + 2 * torch.rand(n, 2, generator=generator), k

    def assign(self, x):
        ij = torch.floor((x.float() + 4) / 2).long()
        inside = ((ij >= 0) & (ij <= 3)).all(1)
        filled = ((ij.sum(1) % 2) == 0) & inside
        flat = ij[:, 1].clamp(0, 3) * 4 + ij[:, 0].clamp(0, 3)  # row-major over the board
        lookup = torch.full((16,), -1, dtype=torch.long)
        lookup[self.cells[:, 1] * 4 + self.cells[:, 0]] = torch.arange(8)
        k = lookup[flat]
        # off-support points get the nearest filled cell's id (by cell centre)
        centres = self.cells.float() * 2 - 3
        k = torch.where(filled, k, torch.cdist(x.float(), centres).argmin(1))
        return k, filled

    def regions(self):
        # the quadrant x > 0, y > 0 as a signed distance over a length scale (0.1 × data std)
        tau = 0.1 * 2.3
        return {"quadrant": lambda x: torch.minimum(x[:, 0], x[:, 1]) / tau}


class Moons(Toy2D):
    """Two interleaved half circles (unit radius), scaled by 2 and centred; label = moon."""

    scale, noise = 2.0, 0.05
    offset = torch.tensor([0.5, 0.25])

    def __init__(self):
        super().__init__("moons", ("upper", "lower"), mmd_bandwidth=0.5)

    def sample(self, n, generator):
        k = torch.randint(0, 2, (n,), generator=generator)
        a = torch.rand(n, generator=generator) * math.pi
        upper = torch.stack([a.cos(), a.sin()], 1)
        lower = torch.stack([1 - a.cos(), 0.5 - a.sin()], 1)
        p = torch.where(k[:, None] == 0, upper, lower) + self.noise * torch.randn(n, 2, generator=generator)
        return (p - self.offset) * self.scale, k

    def assign(self, x):
        p = x.float() / self.scale + self.offset
        d_up = _arc_distance(p, torch.tensor([0.0, 0.0]), upper=True)
        d_lo = _arc_distance(p, torch.tensor([1.0, 0.5]), upper=False)
        k = (d_lo < d_up).long()
        return k, torch.minimum(d_up, d_lo) < 4 * self.noise


def _arc_distance(p, centre, upper: bool) -> torch.Tensor:
    """Distance from points to a unit half circle (upper or lower half) around ``centre``."""
    q = p - centre
    on_half = (q[:, 1] >= 0) if upper else (q[:, 1] <= 0)
    to_circle = (q.norm(dim=1) - 1).abs()
    ends = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    to_ends = torch.cdist(q, ends).min(1).values
    return torch.where(on_half, to_circle, to_ends)


class Circles(Toy2D):
    """Two concentric circles (radii 3 and 1.5); label 0 = outer, 1 = inner."""

    radii, noise = (3.0, 1.5), 0.15

    def __init__(self):
        super().__init__("circles", ("outer", "inner"), mmd_bandwidth=0.5)

    def sample(self, n, generator):
        k = torch.randint(0, 2, (n,), generator=generator)
        a = torch.rand(n, generator=generator) * 2 * math.pi
        r = torch.tensor(self.radii)[k]
        return r[:, None] * torch.stack([a.cos(), a.sin()], 1) + self.noise * torch.randn(n, 2, generator=generator), k

    def assign(self, x):
        d = (x.float().norm(dim=1, keepdim=True) - torch.tensor(self.radii)).abs()
        dist, k = d.min(1)
        return k, dist < 4 * self.noise


TOYS = {t.name: t for t in (Ring8(), Checkerboard(), Moons(), Circles())}
SIZES = {"train": 20000, "val": 5000, "test": 5000}
SEEDS = {"train": 0, "val": 2, "test": 1}


def load_toy(name: str, split: str = "train") -> Dataset:
    toy = TOYS[name]
    g = torch.Generator().manual_seed(SEEDS[split] * 1000 + sorted(TOYS).index(name))
    x, y = toy.sample(SIZES[split], g)
    return Dataset(name, x, y, (Attribute("class", toy.components),), regions=toy.regions())
