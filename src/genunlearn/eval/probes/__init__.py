"""Attack probes: does the forgetting survive an attack? (issue 16)

``relearn`` (fine-tune on k forget samples, forget-rate curve, AUC ratio to the retrain model),
``cond`` (white-box conditioning attack: optimised class embedding, ASR with no-attack and random
baselines), ``noise`` (initial-noise search for models without a condition to steer). Each takes a
model and a forget request and uses only the family protocol and the process building blocks.
"""

from __future__ import annotations

from genunlearn.errors import GenUnlearnError

PROBES = ("relearn", "cond", "noise")


def default_probe(model, request) -> str:
    """``cond`` where there is a forget condition to steer and a training loss, else ``noise``."""
    if getattr(model, "conditional", False) and request.kind in ("classes", "concept") and model.process.name not in ("one_step", "composed"):
        return "cond"
    return "noise"


def check_applicable(name: str, model, request) -> None:
    """One line, before any work, when probe ``name`` cannot run on this model and request."""
    from genunlearn.eval.probes.noise import noise_argument

    if name not in PROBES:
        raise GenUnlearnError(f"unknown probe {name!r}; expected one of {', '.join(PROBES)}")
    if getattr(model, "family", None) != "generative":
        raise GenUnlearnError(f"probes run on generative models; this is a {getattr(model, 'family', '?')} model (I2I and classifier probes are not built yet)")
    if request is None:
        raise GenUnlearnError("a probe needs a forget request: --forget SPEC (e.g. classes=3)")
    if request.kind == "samples":
        raise GenUnlearnError("probes count forgotten content by class, concept or region; a samples= request has none to count")
    if name in ("relearn", "cond") and model.process.name in ("one_step", "composed"):
        raise GenUnlearnError(f"a {model.process.name} model has no training loss of its own for the {name} probe; use --probe noise")
    if name == "cond":
        if not model.conditional:
            raise GenUnlearnError("the conditioning attack needs a conditional model; use --probe noise on unconditional models")
        if request.kind not in ("classes", "concept"):
            raise GenUnlearnError(f"the conditioning attack needs a classes or concept request (a condition to steer), not {request.kind}; use --probe noise")
    if name == "noise":
        noise_argument(model.process)


def probe_config(name: str, values: dict | None):
    """The probe's config from ``key=value`` strings or values, checked (one line on a bad one)."""
    from genunlearn.config import build_config
    from genunlearn.eval.probes.cond import CondConfig
    from genunlearn.eval.probes.noise import NoiseConfig
    from genunlearn.eval.probes.relearn import RelearnConfig

    if name not in PROBES:
        raise GenUnlearnError(f"unknown probe {name!r}; expected one of {', '.join(PROBES)}")
    cls = {"relearn": RelearnConfig, "cond": CondConfig, "noise": NoiseConfig}[name]
    cfg = build_config(cls, dict(values or {}))
    cfg.check()
    return cfg


def run_probe(name: str, model, request, *, reference=None, config: dict | None = None, progress: bool = False) -> dict:
    """Run one probe; ``config`` holds the probe's options (its dataclass fields)."""
    from genunlearn.eval.probes.cond import cond_probe
    from genunlearn.eval.probes.noise import noise_probe
    from genunlearn.eval.probes.relearn import relearn_probe

    cfg = probe_config(name, config)
    if name == "relearn":
        return relearn_probe(model, request, reference=reference, cfg=cfg, progress=progress)
    out = (cond_probe if name == "cond" else noise_probe)(model, request, cfg)
    if reference is not None:
        ref = (cond_probe if name == "cond" else noise_probe)(reference, request, cfg)
        out["reference"] = {k: v for k, v in ref.items() if k != "arrays"}
    return out


def format_probe(result: dict) -> str:
    """The table the ``probe`` command prints."""
    name = result["probe"]
    lines = []
    if name == "relearn":
        cols = [("model", result["model"])] + ([("reference", result["reference"])] if "reference" in result else [])
        lines.append(f"relearning on k={result['model']['k']} forget samples ({result['forget']}); judged forget rate, n={result['model']['n']} per point")
        lines.append(f"{'step':>6}  " + "  ".join(f"{c:>10}" for c, _ in cols))
        for i, s in enumerate(result["model"]["steps"]):
            lines.append(f"{s:>6}  " + "  ".join(f"{r['forget_rate'][i]:>10.1%}" for _, r in cols))
        lines.append(f"{'AUC':>6}  " + "  ".join(f"{r['auc']:>10.3f}" for _, r in cols))
        if "auc_ratio" in result:
            lines.append(f"AUC ratio (model / reference): {result['auc_ratio']:.2f}  (> 1: the forgotten content comes back faster than from scratch)")
        return "\n".join(lines)
    ref = result.get("reference")
    arms = [("no attack", "asr_no_attack")] + ([("random conditioning", "asr_random")] if name == "cond" else []) + [("attack", "asr_attack")]
    budget = f"{result['steps']} steps" if name == "cond" else f"{result['rounds']} rounds × {result['n']} samples"
    lines.append(f"{name} attack ({result['forget']}, budget {budget}); attack success rate = judged share of forgotten content, n={result['n']}")
    lines.append(f"{'arm':>20}  {'model':>8}" + (f"  {'reference':>9}" if ref else ""))
    for label, key in arms:
        lines.append(f"{label:>20}  {result[key]:>8.1%}" + (f"  {ref[key]:>9.1%}" if ref else ""))
    if name == "cond":
        lines.append(f"forget-image loss: no attack {result['loss_no_attack']:.4f}, random {result['loss_random']:.4f}, attack {result['loss_attack']:.4f}")
    else:
        lines.append(f"mean distance to the nearest forget sample: no attack {result['distance_no_attack']:.4f}, attack {result['distance_attack']:.4f}")
    return "\n".join(lines)
