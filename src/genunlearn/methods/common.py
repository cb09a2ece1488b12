"""Helpers several methods share: model checks, frozen/trainable copies, parameter groups, class ids."""

from __future__ import annotations

import copy
from typing import Literal, get_args

import torch

from genunlearn.errors import GenUnlearnError

# parameter-name pieces of the conditioning path: ConvUNet's condition embedding tables (``cond.*``) and
# every ResBlock's FiLM projection (``.film.``); DiffusersUNet's class embedding; cross-attention K/V
CONDITIONING_PARAMS = (".cond.", ".film.", ".class_embedding.", ".attn2.to_k.", ".attn2.to_v.")
# what ``non_conditioning`` leaves frozen: the conditioning path and the whole cross-attention block
# (ESD-u trains every weight outside the cross-attention, queries and output projection included)
CONDITIONED_PARAMS = (*CONDITIONING_PARAMS, ".attn2.")
# the trainable-parameter choices of the papers: every weight; the conditioning path (cross-attention
# K/V: ESD-x, Concept Ablation, f-DMU); everything but it (ESD-u's "non-cross-attention")
ParamGroup = Literal["all", "conditioning", "non_conditioning"]
PARAM_GROUPS = get_args(ParamGroup)


def check_conditional(method, model) -> None:
    if not model.conditional:
        raise GenUnlearnError(f"method {method.name!r} needs a class-conditional model; this one is unconditional")


def has_null_condition(model) -> bool:
    """Whether the model has a null (unconditional) input, which guidance and condition dropout need:
    genunlearn's networks always do; a diffusers UNet only with ``num_class_embeds`` = classes + 1."""
    from genunlearn.processes.conditioning import unwrap

    return getattr(unwrap(model.net), "has_null", True)


def without_null(method, model, options: dict[str, tuple]) -> dict:
    """The value of each option (name → (value, stand-in)), or its stand-in when the model has no null
    input to guide against; what changed is said in one line."""
    if has_null_condition(model):
        return {name: value for name, (value, _) in options.items()}
    changed = [f"{name} {value} -> {stand_in}" for name, (value, stand_in) in options.items() if value != stand_in]
    if changed:
        from genunlearn.progress import stage

        stage(
            f"{method.name}: {', '.join(changed)}", "this model has no null class, so there is nothing to guide against"
        )
    return {name: stand_in for name, (_, stand_in) in options.items()}


def class_ids(model, classes) -> list[int]:
    """Class ids or names → ids, resolved against the model's own class names (no data read)."""
    from genunlearn.data.dataset import class_id

    return [class_id(model.attributes, c) for c in classes]


def copy_net(net: torch.nn.Module, *, trainable: bool) -> torch.nn.Module:
    """A copy of a network; frozen copies are still differentiated through their inputs."""
    out = copy.deepcopy(net)
    out.requires_grad_(trainable)
    return out


def set_dropout(net: torch.nn.Module, p: float) -> None:
    for m in net.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = p


def check_param_group(group: str) -> None:
    if group not in PARAM_GROUPS:
        raise GenUnlearnError(f"params must be one of {', '.join(PARAM_GROUPS)}, not {group!r}")


def select_params(net: torch.nn.Module, group: str) -> list[torch.nn.Parameter]:
    """Freeze everything outside ``group`` (one of ``PARAM_GROUPS``) and return the trainable parameters."""
    check_param_group(group)
    if group == "all":
        net.requires_grad_(True)
        return list(net.parameters())
    names = [n for n, _ in net.named_parameters()]
    if group == "conditioning":
        chosen = [n for n in names if any(p in "." + n for p in CONDITIONING_PARAMS)]
    else:
        chosen = [n for n in names if not any(p in "." + n for p in CONDITIONED_PARAMS)]
    if not chosen or len(chosen) == len(names):
        raise GenUnlearnError(
            f"params={group}: {type(net).__name__} has no conditioning parameters ({', '.join(CONDITIONING_PARAMS)})"
        )
    net.requires_grad_(False)
    params = dict(net.named_parameters())
    for n in chosen:
        params[n].requires_grad_(True)
    return [params[n] for n in chosen]


def partly_sampled(model, sampler, c, steps: int, guidance: float, g) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, t): ``sampler`` run from noise to a random step k of a ``steps``-step DDIM schedule
    (in eval mode, its mode restored): ESD's x_t, drawn from the model's own samples."""
    k = int(torch.randint(steps, (1,), generator=g))
    was_training = sampler.training
    sampler.eval()
    xt, t = model.process.sample_until(
        sampler, len(c), c, k, shape=model.sample_shape, steps=steps, sampler="ddim", guidance=guidance, generator=g
    )
    sampler.train(was_training)
    return xt, t
