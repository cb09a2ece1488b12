"""Attack probes: does the forgetting survive an attack?

``relearn`` (fine-tune on k forget samples, the curve of forgotten content drawn, AUC ratio to the
retrain model),
``cond`` (white-box conditioning attack: optimised class embedding, ASR with no-attack and random
baselines), ``noise`` (initial-noise search for models without a condition to steer), ``complete``
(I2I models: completion of forget images from a larger visible area), ``prompt`` (text-to-image
pipelines: UnlearnDiffAtk's soft-prompt attack, ASR before and after). Each takes a model and a
forget request and uses only the family protocol and the process building blocks.
"""

from __future__ import annotations

from genunlearn.errors import GenUnlearnError

PROBES = ("relearn", "cond", "noise", "complete", "prompt")
FAMILY_PROBES = {"generative": ("relearn", "cond", "noise", "prompt"), "i2i": ("relearn", "complete")}


def default_probe(model, request) -> str:
    """I2I: ``complete``; a text-to-image pipeline asked to forget a concept: ``prompt`` (its
    conditions are text: the attack writes soft prompt tokens); generative: ``cond`` where there is
    a forget condition to steer and a training loss, else ``noise``."""
    from genunlearn.methods.concepts import is_text_model

    if getattr(model, "family", None) == "i2i":
        return "complete"
    if is_text_model(model) and request.kind == "concept":
        return "prompt"
    if (
        getattr(model, "conditional", False)
        and request.kind in ("classes", "concept")
        and model.process.name not in ("one_step", "composed")
    ):
        return "cond"
    return "noise"


def check_applicable(name: str, model, request) -> None:
    """One line, before any work, when probe ``name`` cannot run on this model and request."""
    from genunlearn.eval.probes.noise import noise_argument

    if name not in PROBES:
        raise GenUnlearnError(f"unknown probe {name!r}; expected one of {', '.join(PROBES)}")
    family = getattr(model, "family", "?")
    if family not in FAMILY_PROBES:
        raise GenUnlearnError(
            f"probes run on generative and I2I models; this is a {family} model (classifier probes are not built yet)"
        )
    if name not in FAMILY_PROBES[family]:
        raise GenUnlearnError(
            f"the {name} probe does not apply to {family} models; expected one of {', '.join(FAMILY_PROBES[family])}"
        )
    if request is None:
        raise GenUnlearnError("a probe needs a forget request: --forget SPEC (e.g. classes=3)")
    if family == "i2i":
        if request.kind != "classes":
            raise GenUnlearnError(
                f"I2I probes judge completions of held-out images of forgotten classes: give a classes= request, not {request.kind}"
            )
        return
    if name == "prompt":
        from genunlearn.eval.probes.prompt import check_prompt_request

        return check_prompt_request(model, request)
    if request.kind == "samples":
        raise GenUnlearnError(
            "probes count forgotten content by class, concept or region; a samples= request has none to count"
        )
    if name in ("relearn", "cond") and model.process.name in ("one_step", "composed"):
        raise GenUnlearnError(
            f"a {model.process.name} model has no training loss of its own for the {name} probe; use --probe noise"
        )
    if name == "cond":
        if not model.conditional:
            raise GenUnlearnError(
                "the conditioning attack needs a conditional model; use --probe noise on unconditional models"
            )
        if request.kind not in ("classes", "concept"):
            raise GenUnlearnError(
                f"the conditioning attack needs a classes or concept request (a condition to steer), not {request.kind}; use --probe noise"
            )
    if name == "noise":
        noise_argument(model.process)


def suite_probes(model, request, *, n: int = 100) -> dict[str, dict]:
    """The probes ``bench`` runs on a cell at a small budget (name → options): relearning (early
    checkpoints, a small learning rate) and the family's attack (generative: the convex
    conditioning attack where there is a condition to steer, else the noise search; I2I: the
    completion attack; a text-to-image pipeline: the prompt attack); those that do not apply to this model and request are left out."""
    if getattr(model, "family", None) == "i2i":
        plan = {"relearn": {"n": n}, "complete": {"n": n}}
    else:
        attack = default_probe(model, request)
        options = {"cond": {"space": "mix", "lr": 0.5, "steps": 50, "n": n}, "prompt": {"n": min(n, 32)}}.get(
            attack, {"rounds": 3, "n": n}
        )
        plan = {"relearn": {"checkpoints": (0, 2, 5, 10), "lr": 2e-4, "n": n}, attack: options}
    out = {}
    for name, options in plan.items():
        try:
            check_applicable(name, model, request)
        except GenUnlearnError:
            continue
        out[name] = options
    return out


def probe_config(name: str, values: dict | None):
    """The probe's config from ``key=value`` strings or values, checked (one line on a bad one)."""
    from genunlearn.config import build_config
    from genunlearn.eval.probes.complete import CompleteConfig
    from genunlearn.eval.probes.cond import CondConfig
    from genunlearn.eval.probes.noise import NoiseConfig
    from genunlearn.eval.probes.prompt import PromptConfig
    from genunlearn.eval.probes.relearn import RelearnConfig

    if name not in PROBES:
        raise GenUnlearnError(f"unknown probe {name!r}; expected one of {', '.join(PROBES)}")
    cls = {
        "relearn": RelearnConfig,
        "cond": CondConfig,
        "noise": NoiseConfig,
        "complete": CompleteConfig,
        "prompt": PromptConfig,
    }[name]
    cfg = build_config(cls, dict(values or {}))
    cfg.check()
    return cfg


def run_probe(
    name: str,
    model,
    request,
    *,
    reference=None,
    config: dict | None = None,
    progress: bool = False,
    judge: str | None = None,
) -> dict:
    """Run one probe; ``config`` holds the probe's options (its dataclass fields); ``judge``: the
    prompt probe's judge folder (default: the task's judge)."""
    from genunlearn.eval.probes.complete import complete_probe
    from genunlearn.eval.probes.cond import cond_probe
    from genunlearn.eval.probes.noise import noise_probe
    from genunlearn.eval.probes.prompt import prompt_probe
    from genunlearn.eval.probes.relearn import relearn_probe

    cfg = probe_config(name, config)
    if name == "prompt":
        return prompt_probe(model, request, cfg, reference=reference, judge=judge)
    if name == "relearn":
        return relearn_probe(model, request, reference=reference, cfg=cfg, progress=progress)
    attack = {"cond": cond_probe, "noise": noise_probe, "complete": complete_probe}[name]
    out = attack(model, request, cfg)
    if reference is not None:
        ref = attack(reference, request, cfg)
        out["reference"] = {k: v for k, v in ref.items() if k != "arrays"}
    return out


def format_probe(result: dict) -> str:
    """The table the ``probe`` command prints."""
    name = result["probe"]
    if name == "prompt":
        from genunlearn.eval.probes.prompt import format_prompt_probe

        return format_prompt_probe(result)
    table = {"relearn": _relearn_table, "complete": _completion_table}.get(name, _attack_table)
    return "\n".join(table(result))


def _relearn_table(result: dict) -> list[str]:
    cols = [("model", result["model"])] + ([("reference", result["reference"])] if "reference" in result else [])
    lines = [
        f"relearning on k={result['model']['k']} forget samples ({result['forget']}); judged share of forgotten content drawn (lower: less came back), n={result['model']['n']} per point",
        f"{'step':>6}  " + "  ".join(f"{c:>10}" for c, _ in cols),
    ]
    for i, s in enumerate(result["model"]["steps"]):
        lines.append(f"{s:>6}  " + "  ".join(f"{r['forgotten_content_drawn'][i]:>10.1%}" for _, r in cols))
    lines.append(f"{'AUC':>6}  " + "  ".join(f"{r['auc']:>10.3f}" for _, r in cols))
    if "auc_ratio" in result:
        lines.append(
            f"AUC ratio (model / reference): {result['auc_ratio']:.2f}  (> 1: the forgotten content comes back faster than from scratch)"
        )
    return lines


def _completion_table(result: dict) -> list[str]:
    ref = result.get("reference")
    lines = [
        f"completion attack ({result['forget']}): judged share of forgotten classes among completions of n={result['n']} held-out forget images",
        f"{'visible':>8}  {'model':>8}" + (f"  {'reference':>9}" if ref else "") + f"  {'fill':>6}  {'MSE':>7}",
    ]
    for i, share in enumerate(result["visible"]):
        lines.append(
            f"{share:>8.1%}  {result['asr'][i]:>8.1%}"
            + (f"  {ref['asr'][i]:>9.1%}" if ref else "")
            + f"  {result['asr_fill'][i]:>6.1%}  {result['mse'][i]:>7.4f}"
        )
    lines.append(
        "fill: hidden pixels set to the image mean, no model (what the visible area alone shows); MSE: the model's hidden pixels"
    )
    return lines


def _attack_table(result: dict) -> list[str]:
    """The conditioning attack and the noise search: success rate without, with a random and with the attack."""
    name, ref = result["probe"], result.get("reference")
    arms = (
        [("no attack", "asr_no_attack")]
        + ([("random conditioning", "asr_random")] if name == "cond" else [])
        + [("attack", "asr_attack")]
    )
    budget = f"{result['steps']} steps" if name == "cond" else f"{result['rounds']} rounds × {result['n']} samples"
    lines = [
        f"{name} attack ({result['forget']}, budget {budget}); attack success rate = judged share of forgotten content, n={result['n']}",
        f"{'arm':>20}  {'model':>8}" + (f"  {'reference':>9}" if ref else ""),
    ]
    for label, key in arms:
        lines.append(f"{label:>20}  {result[key]:>8.1%}" + (f"  {ref[key]:>9.1%}" if ref else ""))
    if name == "cond":
        lines.append(
            f"forget-image loss: no attack {result['loss_no_attack']:.4f}, random {result['loss_random']:.4f}, attack {result['loss_attack']:.4f}"
        )
    else:
        lines.append(
            f"mean distance to the nearest forget sample: no attack {result['distance_no_attack']:.4f}, attack {result['distance_attack']:.4f}"
        )
    return lines
