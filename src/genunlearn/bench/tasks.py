"""Benchmark tasks: data set + base recipe + forget request + the methods judged on it.

Each suite lists its tasks; ``quick`` shrinks every training budget so the whole suite runs in
minutes on 2 cores (numbers are then indicative, not the benchmark figures).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genunlearn.errors import GenUnlearnError


@dataclass(frozen=True)
class Task:
    name: str
    dataset: str
    model: str  # what to train: "flow" | "diffusion" | "sd" | "classifier" | "i2i" (families.KINDS)
    forget: str  # forget spec
    methods: tuple[str, ...]  # cell names; a cell is the method of that name unless its config says "method"
    overrides: dict = field(default_factory=dict, hash=False)  # base-recipe overrides (TrainJob)
    method_config: dict = field(default_factory=dict, hash=False)  # cell name → config values (+ optional "method")
    n_per_prompt: int = 100


_DEMO_STEPS = 200  # per method: what fits the demo's 90 s on 2 cores (benchmarks/demo_time.py)
_DEMO_METHODS = {"finetune": {"steps": _DEMO_STEPS}, "continualflow": {"steps": _DEMO_STEPS}}
# the classifier baselines under the names of the SalUn paper's tables; each runs with the settings
# benchmarks/salun.py picked on validation (methods/picks.json)
_CLASSIFY = {
    "salun": {},
    "rl": {"method": "random_label"},
    "ft": {"method": "finetune"},
    "ga": {"method": "grad_ascent"},
    "l1_sparse": {},
}
_CLASSIFY_TASK = Task(
    "digits-classifier-forget3", "digits", "classifier", "classes=3", tuple(_CLASSIFY), method_config=_CLASSIFY
)
# concept erasure on shapes: f-divergences and their baselines with the same budget and parameter
# group (the conditioning path at lr 1e-3 erased fastest in benchmarks/fdivergence.py)
_COND = {"params": "conditioning", "lr": 1e-3, "steps": 200}
_ERASE = {
    "esd": _COND,
    "concept_ablation": _COND,
    "fdiv-hellinger": {"method": "fdiv", "divergence": "hellinger", **_COND},
    "fdiv-chi2": {"method": "fdiv", "divergence": "chi2", **_COND},
    "fdiv-js-variational": {"method": "fdiv", "divergence": "js", "form": "variational", **_COND},
}
_I2I = {"i2i-proxy": {"method": "i2i", "retain": "proxy"}}
_I2I_QUICK = ("i2i", "i2i-proxy", "i2i_random_encoder")


def _erase_task(methods: tuple[str, ...], model: str = "diffusion", **kw) -> Task:
    """Erase "circle" towards "square" on shapes: the built-in network, or (model="sd") the tiny
    Stable-Diffusion-format pipeline (text encoder, autoencoder, cross-attention UNet)."""
    name = "shapes-erase-circle" if model == "diffusion" else f"shapes-{model}-erase-circle"
    return Task(name, "shapes", model, "concept=circle;anchor=square", methods, method_config=_ERASE, **kw)


def _i2i_task(methods: tuple[str, ...]) -> Task:
    return Task("digits-i2i-forget0-4", "digits", "i2i", "classes=0,1,2,3,4", methods, method_config=_I2I)


SUITES: dict[str, dict] = {
    "demo": {  # `genunlearn demo`: the full recipe, so base and retrain are the released models; short method budgets
        "scale": 1.0,
        "tasks": (
            Task(
                "digits-flow-forget3",
                "digits",
                "flow",
                "classes=3",
                ("finetune", "continualflow"),
                method_config=_DEMO_METHODS,
                n_per_prompt=50,
            ),
        ),
    },
    "quick": {
        "scale": 0.25,  # fraction of each recipe's training steps and of each method's step budget
        "tasks": (
            Task("ring8-forget01", "ring8", "flow", "classes=0,1", ("finetune", "continualflow")),
            Task(
                "digits-flow-forget3",
                "digits",
                "flow",
                "classes=3",
                ("finetune", "continualflow"),
                n_per_prompt=50,
            ),
            _CLASSIFY_TASK,
            _i2i_task(_I2I_QUICK),
        ),  # shapes concept erasure is in "full" only: its base model alone trains for ~10 minutes
    },
    "full": {
        "scale": 1.0,
        "tasks": (
            Task("ring8-forget01", "ring8", "flow", "classes=0,1", ("finetune", "continualflow")),
            Task("checkerboard-quadrant", "checkerboard", "flow", "energy=quadrant", ("finetune", "continualflow")),
            Task("moons-forget-upper", "moons", "flow", "classes=0", ("finetune", "continualflow")),
            Task("circles-forget-inner", "circles", "flow", "classes=1", ("finetune", "continualflow")),
            Task(
                "digits-flow-forget3",
                "digits",
                "flow",
                "classes=3",
                ("finetune", "continualflow", "sfd"),
            ),
            Task(
                "digits-diffusion-forget3",
                "digits",
                "diffusion",
                "classes=3",
                ("finetune", "random_label", "salun", "esd", "sfd"),
            ),
            _CLASSIFY_TASK,
            _erase_task(
                ("esd", "concept_ablation", "fdiv-hellinger", "fdiv-chi2", "fdiv-js-variational"), n_per_prompt=50
            ),
            _erase_task(
                ("esd", "concept_ablation", "fdiv-hellinger", "fdiv-chi2", "fdiv-js-variational"),
                model="sd",
                n_per_prompt=50,
            ),
            _i2i_task((*_I2I_QUICK, "i2i_max_loss", "i2i_noisy_label", "i2i_retain_label")),
        ),
    },
}


def suite_tasks(suite: str) -> tuple[float, tuple[Task, ...]]:
    if suite not in SUITES:
        raise GenUnlearnError(f"unknown suite {suite!r}; expected one of {', '.join(SUITES)}")
    s = SUITES[suite]
    return s["scale"], s["tasks"]
