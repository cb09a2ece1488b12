"""What every probe shares: the forget samples an attacker holds, the conditioning rows that ask
for the forgotten content, and the domain judge's count of forgotten content in samples.

Everything here goes through the model family's protocol and the process building blocks
(``model.sample``, ``process.loss``, ``families.get_family(...).evaluator``'s judge,
``eval.judge.load_judge``); nothing knows which method produced the model.
"""

from __future__ import annotations

import math

import torch

from genunlearn.errors import GenUnlearnError


def check_generative(model, probe: str) -> None:
    if getattr(model, "family", None) != "generative":
        raise GenUnlearnError(
            f"the {probe} probe runs on generative models; this is a {getattr(model, 'family', type(model).__name__)} model"
        )


def task_of(model) -> str:
    return str(model.info.get("task") or model.data["name"])


def forget_data(model, request):
    """The forget split of the model's own training data (fingerprint checked), as the model consumes it (its resolution; latents for a latent model)."""
    from genunlearn.data.fingerprint import model_dataset

    if request is None:
        raise GenUnlearnError("a probe needs a forget request (--forget SPEC)")
    data = model.in_model_space(model_dataset(model))
    forget, _ = data.split(request)
    return data, forget


def forget_values(model, request) -> tuple[int, list[int]]:
    """(attribute index, forgotten value ids) of a classes or concept request."""
    from genunlearn.data.dataset import concept_slot

    attrs = model.attributes
    if request.kind == "classes":
        names = attrs[0].values
        return 0, [c if isinstance(c, int) else names.index(c) for c in request.classes]
    if request.kind == "concept":
        attr, value = concept_slot(attrs, request.concept)
        if value is None:
            raise GenUnlearnError(f"concept {request.concept!r} names an attribute, not a value to count")
        return attr, [value]
    return 0, []


def forget_conditions(model, request, n: int) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(conditioning rows asking for the forgotten values, cycled over ``n``; the value each row
    asks for). Unconditional models and energy/sample requests: (None, -1s)."""
    if not model.conditional or request.kind not in ("classes", "concept"):
        return None, torch.full((n,), -1, dtype=torch.long)
    attr, values = forget_values(model, request)
    vocab = [len(a.values) for a in model.attributes]
    asked = torch.tensor(values).repeat(math.ceil(n / len(values)))[:n]
    cond = torch.tensor(vocab).repeat(n, 1)
    cond[:, attr] = asked
    return cond, asked


class Counter:
    """``x -> bool (N,)``: which samples show forgotten content, by the domain judge (classes,
    concept) or the request's region (energy)."""

    def __init__(self, model, request, judge=None, data=None):
        from genunlearn.eval.judge import load_judge

        self.request = request
        if request.kind == "samples":
            raise GenUnlearnError(
                "probes count forgotten content by class, concept or region; a samples= request has no such content to count"
            )
        if request.kind == "energy":
            if data is None:
                data, _ = forget_data(model, request)
            self.energy = data.energy_fn(request.energy)
            self.judge = None
        else:
            self.judge = judge or load_judge(task_of(model), progress=False, verbose=False)
            self.attr, self.values = forget_values(model, request)

    @torch.no_grad()
    def hits(self, x: torch.Tensor) -> torch.Tensor:
        if self.judge is None:
            return self.energy(x) > 0
        pred = self.judge.predict(x)
        return torch.isin(pred[:, self.attr], torch.tensor(self.values))

    def rate(self, x: torch.Tensor) -> float:
        return float(self.hits(x).float().mean())


def forgotten_content_drawn(model, request, counter: Counter, n: int, seed: int, net=None) -> float:
    """The judged share of forgotten content among ``n`` samples asked for it (conditional models: the
    forget prompts; unconditional: plain samples), with a fixed seed."""
    cond, _ = forget_conditions(model, request, n)
    m = model if net is None else model.with_net(net)
    x = m.sample(n, cond, generator=torch.Generator().manual_seed(seed))
    return counter.rate(x)


def npz_arrays(model, x: torch.Tensor, labels: torch.Tensor) -> dict:
    """The ``sample`` command's ``.npz`` format: images uint8 (N, H, W, C) or points float32 (N, 2), labels."""
    import numpy as np

    from genunlearn.io.samples import to_uint8_images

    if model.data["kind"] == "points":
        return {"samples": x.detach().numpy().astype(np.float32), "labels": labels.numpy().astype(np.int64)}
    return {"images": to_uint8_images(x.detach()), "labels": labels.numpy().astype(np.int64)}
