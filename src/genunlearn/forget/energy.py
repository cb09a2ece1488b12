"""Energies F(x) that say what to forget: a scalar per sample, high = forget-like.

Building an energy is a stage of its own, before any unlearning: energy-based methods
(ContinualFlow) then read only the energy, never the data. Kinds:

* ``classifier``: a small retain-vs-forget proxy trained on labelled data with its own seed and
  width (never the evaluation judge). ``logodds`` gives F = logit P(forget | x); ``neglogretain``
  (the reference code's choice) gives F = −log P(retain | x) ≥ 0. The proxy trains on balanced
  batches (forget examples over-sampled), so F = 0 where both likelihoods are equal. Trained
  proxies are cached by config hash, like judges, and their training time is recorded so that a
  method can count it in its cost even when the proxy is reloaded.
* ``region``: a named region of the data set (``Dataset.regions``), already a signed distance.
* ``callable``: any function ``x -> (N,)`` tensor; it cannot be saved, only used in-session.

Every energy has a JSON ``spec`` from which ``restore_energy`` rebuilds it (continual use).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from genunlearn.device import place
from genunlearn.errors import GenUnlearnError

ENERGY_FORMS = ("logodds", "neglogretain")
PROXY_SEED = 777  # distinct from the judge's seed (12345) and from base-model seeds
_PROXY_OPT = {"optimizer": "adamw", "weight_decay": 1e-4, "lr_schedule": "cosine"}
PROXY_TRAIN = {
    "points": {"steps": 200, "lr": 1e-2, "batch": 256, **_PROXY_OPT},
    "images": {"steps": 400, "lr": 3e-3, "batch": 128, **_PROXY_OPT},
}
HOLDOUT_FRACTION = 0.1  # labelled points kept aside for the sign check and the proxy's accuracy


@dataclass
class Energy:
    """F(x) with a JSON spec to rebuild it; ``seconds`` is what building it cost."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    spec: dict
    seconds: float = 0.0
    info: dict = field(default_factory=dict)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        out = torch.cat([self.fn(x[i : i + batch_size]).reshape(-1).float() for i in range(0, x.shape[0], batch_size)])
        if out.shape[0] != x.shape[0] or not torch.isfinite(out).all():
            raise GenUnlearnError(
                f"energy {self.spec.get('name', self.spec['kind'])!r} must return one finite value per sample"
            )
        return out

    @property
    def restorable(self) -> bool:
        return self.spec["kind"] != "callable"

    def negated(self) -> "Energy":
        """−F: high where F is low. ContinualFlow reads −F of an energy it applied as "restore it"."""
        fn = self.fn
        return Energy(
            lambda x: -fn(x), {**self.spec, "negate": not self.spec.get("negate", False)}, self.seconds, dict(self.info)
        )


def check_sign(energy: Callable, x_forget: torch.Tensor, x_retain: torch.Tensor) -> tuple[float, float]:
    """Mean energy on forget- and retain-labelled points; raise when forget is not higher."""
    f, r = float(energy(x_forget).mean()), float(energy(x_retain).mean())
    if not f > r:
        raise GenUnlearnError(
            f"energy sign looks reversed: mean F on forget points {f:.3g} <= on retain points {r:.3g} (high F must mean forget-like)"
        )
    return f, r


def callable_energy(fn: Callable, name: str | None = None) -> Energy:
    return Energy(fn, {"kind": "callable", "name": name or getattr(fn, "__name__", "callable")})


def region_energy(data, name: str, task: str | None = None) -> Energy:
    """A region registered by the data set (a signed distance: > 0 inside)."""
    name = str(name).removeprefix("region:")
    return Energy(data.energy_fn(name), {"kind": "region", "task": task or data.name, "name": name})


def _proxy_network(data) -> dict:
    if data.kind == "points":
        return {"_class_name": "MLPClassifier", "dim": data.sample_shape[0], "hidden": 64, "depth": 2, "heads": [2]}
    # narrower than the judge (channels 32, 64; features 128)
    return {
        "_class_name": "ConvClassifier",
        "in_channels": data.sample_shape[0],
        "channels": [16, 32],
        "heads": [2],
        "feature_dim": 64,
    }


def _logit_gap(net) -> Callable[[torch.Tensor], torch.Tensor]:
    """l_forget − l_retain = logit P(forget | x) of the binary proxy."""

    def gap(x):
        net.eval()
        logits = net(place(net, x.clamp(-1, 1) if x.dim() == 4 else x)[0])
        return (logits[:, 1] - logits[:, 0]).to(x.device)

    return gap


def _shape_energy(gap: Callable, form: str) -> Callable:
    if form == "logodds":
        return gap
    return lambda x: torch.nn.functional.softplus(gap(x))  # −log P(retain) = softplus(l_f − l_r)


def _trained_proxy(data, binary, ids: list[int], *, task, seed: int, use_cache: bool, progress: bool):
    """(the retain-vs-forget proxy trained on ``binary``, its training seconds), from the cache when an
    entry for the same labelled data, classes, network, training and seed is there."""
    from genunlearn.data.fingerprint import dataset_hash
    from genunlearn.io.cache import cache_root, config_hash, read_entry, store_network
    from genunlearn.models import build_network, load_network
    from genunlearn.training.classifier import fit_on_data

    net_cfg = _proxy_network(data)
    data_id = {"source": task or data.name, "fingerprint": dataset_hash(data)}  # the labelled data's content
    train_cfg = PROXY_TRAIN[data.kind]
    key = config_hash(
        {"proxy": data_id["fingerprint"], "classes": ids, "net": net_cfg, "train": train_cfg, "seed": seed}
    )
    folder = cache_root() / "proxies" / f"{data.name.replace('/', '_')}-{key}"
    cfg = read_entry(folder, "proxy", key, data_id) if use_cache else None
    if cfg is not None:
        net, seconds = load_network(folder, cfg["network"]), cfg["train_seconds"]
    else:
        from genunlearn.progress import stage

        stage(
            f"training an energy proxy for classes {ids} ({train_cfg['steps']} steps)",
            "a small retain-vs-forget classifier whose logit is the energy the method reads; cached afterwards",
        )
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        net = build_network(net_cfg)
        fit_on_data(
            net, binary, train_cfg, seed=seed, augment=data.kind == "images", progress=progress, desc="energy proxy"
        )
        seconds = time.perf_counter() - t0
        store_network(
            folder, "proxy", net, key=key, data=data_id, task=task or data.name, classes=ids, train_seconds=seconds
        )
    return net, seconds


def classifier_energy(
    data,
    classes,
    *,
    form: str = "logodds",
    task: str | None = None,
    seed: int = PROXY_SEED,
    use_cache: bool = True,
    progress: bool = True,
) -> Energy:
    """Train (or reload) a retain-vs-forget proxy on ``data``'s labels and return its energy.

    Reads the labelled data, forget examples included: this is the energy stage, before unlearning.
    A seeded tenth of the data is held out for the sign check and the proxy's accuracy.
    """
    from genunlearn.data.dataset import Attribute, Dataset

    if form not in ENERGY_FORMS:
        raise GenUnlearnError(f"unknown energy form {form!r}; expected one of {', '.join(ENERGY_FORMS)}")
    ids = sorted({data.class_id(c) for c in classes})
    is_forget = torch.isin(data.labels, torch.tensor(ids))
    if is_forget.all() or not is_forget.any():
        raise GenUnlearnError(
            f"cannot train an energy proxy: classes {ids} cover {'all' if is_forget.all() else 'none'} of {data.name}"
        )
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    n_hold = max(2, int(HOLDOUT_FRACTION * len(data)))
    hold, fit = perm[:n_hold], perm[n_hold:]
    # balanced classes: repeat forget examples until they match the retain count
    f_idx, r_idx = fit[is_forget[fit]], fit[~is_forget[fit]]
    reps = max(1, round(len(r_idx) / max(1, len(f_idx))))
    idx = torch.cat([r_idx, f_idx.repeat(reps)])
    binary = Dataset(data.name, data.x[idx], is_forget[idx].long(), (Attribute("forget", ("retain", "forget")),))
    net, seconds = _trained_proxy(data, binary, ids, task=task, seed=seed, use_cache=use_cache, progress=progress)
    net.eval()
    gap = _logit_gap(net)
    energy = Energy(
        _shape_energy(gap, form),
        {"kind": "classifier", "task": task or data.name, "classes": ids, "form": form, "seed": seed},
        seconds,
    )
    with torch.no_grad():
        acc = float(((Energy(gap, {"kind": "classifier"})(data.x[hold]) > 0) == is_forget[hold]).float().mean())
    mean_f, mean_r = (
        check_sign(energy, data.x[hold][is_forget[hold]], data.x[hold][~is_forget[hold]])
        if is_forget[hold].any() and (~is_forget[hold]).any()
        else (None, None)
    )
    energy.info = {"proxy_holdout_accuracy": acc, "mean_energy_forget": mean_f, "mean_energy_retain": mean_r}
    return energy


def energy_for_request(request, data, *, form: str = "logodds", task: str | None = None) -> Energy:
    """The energy a forget request describes (``classes`` trains a proxy; ``energy`` wraps it).

    An energy request may carry labelled validation points, ``options={"validation": (x, is_forget)}``;
    the sign is then checked.
    """
    if request.kind == "classes":
        return classifier_energy(data, request.classes, form=form, task=task)
    if request.kind != "energy":
        raise GenUnlearnError(f"cannot build an energy from a {request.kind!r} request (use classes= or energy=)")
    e = request.energy
    energy = e if isinstance(e, Energy) else callable_energy(e) if callable(e) else region_energy(data, e, task)
    if "validation" in request.options:
        x, is_forget = request.options["validation"]
        is_forget = torch.as_tensor(is_forget, dtype=torch.bool)
        check_sign(energy, x[is_forget], x[~is_forget])
    return energy


def restore_energy(spec: dict) -> Energy:
    """Rebuild a saved energy from its spec (proxies reload from the cache or retrain, seeded)."""
    from genunlearn.data import load_dataset

    kind = spec.get("kind")
    if spec.get("negate"):
        return restore_energy({k: v for k, v in spec.items() if k != "negate"}).negated()
    if kind == "region":
        return region_energy(load_dataset(spec["task"]), spec["name"], spec["task"])
    if kind == "classifier":
        return classifier_energy(
            load_dataset(spec["task"]), spec["classes"], form=spec["form"], task=spec["task"], seed=spec["seed"]
        )
    raise GenUnlearnError(f"energy {spec.get('name', kind)!r} was a Python callable and cannot be rebuilt from disk")
