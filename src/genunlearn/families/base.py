"""The model-family protocol: what a kind of model is, so the CLI, ``bench`` and the report never
have to ask.

A family trains its base and retrain models from a recipe (cached), loads its folders, samples,
evaluates a model against a forget request with its judge, names its metrics (the report's
columns) and draws its preview. Methods are registered per family (``methods.base``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

from genunlearn.errors import GenUnlearnError


@dataclass(frozen=True)
class MetricSpec:
    """One reported metric: its key in ``metrics.json``, column label (it says what the number
    holds and ends in ↓, ↑ or "≈ retrain" as ``better`` says), format, which way is better, and
    (``gap``) the factor turning it into points for the gap to retrain (None: not in it)."""

    key: str
    label: str
    fmt: str
    better: str | None = (
        None  # "lower" | "higher" | "retrain" (closest to the retrain model's) | None (a reference, no direction)
    )
    gap: float | None = None


class Family:
    name: ClassVar[str]
    metrics: ClassVar[tuple[MetricSpec, ...]]

    # --- models -----------------------------------------------------------------------------
    @property
    def kinds(self) -> tuple[str, ...]:
        """The ``train --model`` values it trains (``families.FAMILIES``)."""
        from genunlearn.families import FAMILIES

        return FAMILIES[self.name].kinds

    @property
    def model_class(self) -> type:
        """The class of this family's models (a ``ModelFolder``)."""
        raise NotImplementedError

    def load(self, path, **options):
        """The model saved at ``path``; ``options`` (e.g. a foreign model's ``task``) are for families that take them."""
        reject_options(self.name, options)
        return self.model_class.from_pretrained(path)

    def job(
        self, task: str, kind: str, *, forget=None, steps: int | None = None, seed: int = 0, options: dict | None = None
    ):
        """What determines a base (``forget=None``) or retrain model; has ``key()``."""
        raise NotImplementedError

    def train(self, job, *, use_cache: bool = True, progress: bool = True):
        """The model for ``job``, from the cache or trained (and cached)."""
        raise NotImplementedError

    def bench_steps(self, task: str, kind: str, scale: float) -> int:
        """The recipe's training budget scaled for a benchmark suite."""
        raise NotImplementedError

    def reference(self, model):
        """The base model ``model`` is judged against (itself for a base model), from the cache; None if unknown."""
        from genunlearn.io.cache import cache_root

        info = model.info
        if info.get("role") in ("base", "original"):
            return model
        folder = cache_root() / "models" / str(info.get("base_key"))
        return self.load(folder) if info.get("base_key") and (folder / "config.json").is_file() else None

    # --- judging ----------------------------------------------------------------------------
    def uses_reference(self, request) -> bool:
        """Whether ``evaluator`` judges against the base model for this request."""
        return False

    def evaluator(
        self,
        task: str,
        request,
        *,
        reference=None,
        n_per_prompt: int = 100,
        seed: int = 0,
        split: str = "test",
        progress: bool = True,
    ) -> Callable[[object], dict]:
        """``model -> metrics``; the judge and references are built once, here, from the held-out
        ``split`` (``"test"`` to report, ``"val"`` to tune)."""
        raise NotImplementedError

    def format(self, metrics: dict) -> str:
        """How the CLI prints a metrics dict: each key with the way it is better (``MetricSpec``)."""
        return format_metrics(metrics, {s.key: s.better for s in self.metrics})

    # --- robustness ---------------------------------------------------------------------------
    def probes(self, model, request, *, n: int = 100) -> dict[str, dict]:
        """The attack probes ``bench`` runs on a cell (probe name → its small-budget options);
        empty where the family has none."""
        from genunlearn.eval.probes import suite_probes

        return suite_probes(model, request, n=n)

    # --- pictures ---------------------------------------------------------------------------
    def sample(self, model, n: int, *, seed: int = 0, **options) -> dict:
        """Arrays for the ``sample`` command's ``.npz``."""
        raise GenUnlearnError(f"{self.name} models do not generate samples")

    def preview(self, model, request) -> dict | None:
        """Fixed-seed arrays for the report's picture (None: no picture)."""
        return None


ARROWS = {"lower": " ↓", "higher": " ↑", "retrain": " ≈ retrain"}


def format_metrics(metrics: dict, better: dict | None = None) -> str:
    """One ``key: value`` line per metric, the key followed by its arrow when ``better`` names one."""
    named = {k: k + ARROWS.get((better or {}).get(k), "") for k in metrics}
    width = max(map(len, named.values()), default=0)
    lines = []
    for k, v in metrics.items():
        if isinstance(v, dict):
            v = ", ".join(f"{kk}: {vv:.3f}" if isinstance(vv, float) else f"{kk}: {vv}" for kk, vv in v.items())
        elif isinstance(v, list):
            v = "[" + ", ".join(f"{x:.3f}" for x in v) + "]"
        elif isinstance(v, float):
            v = f"{v:.4f}"
        lines.append(f"{named[k]:>{width}}: {v}")
    return "\n".join(lines)


def reject_options(family: str, options: dict, allowed: tuple[str, ...] = ()) -> None:
    """One line for options (CLI flags) that do not apply to this family."""
    bad = [k for k, v in options.items() if v not in (None, False) and k not in allowed]
    if bad:
        raise GenUnlearnError(
            f"{', '.join('--' + b.replace('_', '-') for b in bad)} do{'es' if len(bad) == 1 else ''} not apply to {family} models"
        )
