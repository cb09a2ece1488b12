"""Evaluate a generative model against a forget request, the same way for every method.

Images: samples per prompt, judged; the share of the forgotten class's prompts' samples (of all
samples, unconditional) still judged the class (``forgotten_class_still_drawn``, lower is better;
UA = 1 − it), per-prompt accuracy on retained prompts, FD and KID of retained samples against
held-out real retained images with the real-vs-real floor. 2D: mass per component, off-support
mass, forget mass and MMD to the retained reference, with the real-vs-real MMD (the estimator's
noise).
"""

from __future__ import annotations

import itertools

import torch

from genunlearn.data.dataset import concept_slot, cond_to_prompt
from genunlearn.eval import metrics
from genunlearn.forget.request import ForgetRequest


def prompts_for(attributes) -> torch.Tensor:
    """Every prompt worth judging: each class alone; for multi-attribute data, each full combination
    and each attribute alone."""
    vocab = [len(a.values) for a in attributes]
    if len(vocab) == 1:
        return torch.arange(vocab[0])[:, None]
    rows = list(itertools.product(*[range(v) for v in vocab]))
    for a, v in enumerate(vocab):
        for i in range(v):
            row = list(vocab)
            row[a] = i
            rows.append(tuple(row))
    return torch.tensor(rows)


def forget_prompt_mask(prompts: torch.Tensor, attributes, request: ForgetRequest | None) -> torch.Tensor:
    """Which prompts ask for forgotten content (classes: first attribute; concept: its word)."""
    if request is None:
        return torch.zeros(prompts.shape[0], dtype=torch.bool)
    if request.kind == "classes":
        names = attributes[0].values
        ids = [c if isinstance(c, int) else names.index(c) for c in request.classes]
        return torch.isin(prompts[:, 0], torch.tensor(ids))
    if request.kind == "concept":
        attr, value = concept_slot(attributes, request.concept)
        return prompts[:, attr] == value
    return torch.zeros(prompts.shape[0], dtype=torch.bool)


def _forget_value(attributes, request: ForgetRequest | None) -> tuple[int, list[int]]:
    """(attribute index, forgotten value ids) for judging samples."""
    if request is None:
        return 0, []
    if request.kind == "concept":
        attr, value = concept_slot(attributes, request.concept)
        return attr, [value]
    if request.kind == "classes":
        names = attributes[0].values
        return 0, [c if isinstance(c, int) else names.index(c) for c in request.classes]
    return 0, []


def evaluate(
    model,
    request: ForgetRequest | None = None,
    *,
    n_per_prompt: int = 100,
    seed: int = 0,
    judge=None,
    split: str = "test",
) -> dict:
    """Judge ``model``'s samples against ``request``: forgotten class still drawn, retained accuracy,
    FD/KID to held-out real images (images) or forget mass, off-support and MMD (2D); ``judge``
    defaults to the task's.

    The real references come from the ``split`` split only: ``"test"`` to report, ``"val"`` to tune.
    """
    from genunlearn.data import load_dataset
    from genunlearn.eval.judge import load_judge

    task = model.info.get("task") or model.data["name"]
    judge = judge or load_judge(task, verbose=False)
    g = torch.Generator().manual_seed(seed)
    real = load_dataset(task, split)
    if model.data["kind"] == "points":
        out = _evaluate_points(model, request, judge, g, real, load_dataset(task, "train"), n=n_per_prompt * 50)
    else:
        out = _evaluate_images(model, request, judge, g, real.x, real.cond(), n_per_prompt, seed)
    return {**out, "reference_split": split}


def _evaluate_images(model, request, judge, g, real_x, real_cond, n_per_prompt, seed) -> dict:
    attrs = model.attributes
    vocab = tuple(len(a.values) for a in attrs)
    f_attr, f_values = _forget_value(attrs, request)
    out: dict = {"judge_accuracy": judge.test_accuracy}
    if model.conditional:
        prompts = prompts_for(attrs)
        forget_p = forget_prompt_mask(prompts, attrs, request)
        cond = prompts.repeat_interleave(n_per_prompt, 0)
        x = model.sample(cond.shape[0], cond, generator=g)
        pred = judge.predict(x)
        ok = metrics.prompt_accuracy(pred, cond, vocab).view(len(prompts), n_per_prompt).mean(1)
        out["per_prompt_accuracy"] = {cond_to_prompt(attrs, p): float(a) for p, a in zip(prompts, ok)}
        retain_p = ~forget_p
        out["retain_accuracy"] = float(ok[retain_p].mean())
        sample_forget_p = forget_p.repeat_interleave(n_per_prompt)
        if forget_p.any():
            hits = torch.isin(pred[sample_forget_p, f_attr], torch.tensor(f_values)).float()
            out["forgotten_class_still_drawn"] = float(hits.mean())
            out["unlearning_accuracy"] = 1 - out["forgotten_class_still_drawn"]
        # quality on retained prompts that fully specify the first attribute (classes, shapes)
        full = (cond[:, 0] < vocab[0]) & ~sample_forget_p
        fake = x[full]
    else:
        n = n_per_prompt * vocab[0]
        x = model.sample(n, generator=g)
        pred = judge.predict(x)
        out["class_histogram"] = torch.bincount(pred[:, 0], minlength=vocab[0]).div(n).tolist()
        if f_values:
            out["forgotten_class_still_drawn"] = metrics.class_rate(pred[:, f_attr : f_attr + 1], f_values)
            out["unlearning_accuracy"] = 1 - out["forgotten_class_still_drawn"]
        fake = x[~torch.isin(pred[:, f_attr], torch.tensor(f_values))] if f_values else x
    real_retain = real_x[~torch.isin(real_cond[:, f_attr], torch.tensor(f_values))] if f_values else real_x
    ref_a, ref_b = metrics.halves(real_retain, seed)
    m = min(ref_a.shape[0], fake.shape[0])
    perm = torch.randperm(fake.shape[0], generator=torch.Generator().manual_seed(seed))[:m]
    out["fd_retain"] = metrics.frechet_distance(judge, ref_b[:m], fake[perm])
    out["fd_floor"] = metrics.frechet_distance(judge, ref_b[:m], ref_a[:m])
    out["fd_ratio_to_floor"] = out["fd_retain"] / max(out["fd_floor"], 1e-12)
    out["kid_retain"], out["kid_retain_std"] = metrics.kernel_distance(judge, ref_b[:m], fake[perm], seed=seed)
    out["n_fd"] = m
    return out


def _evaluate_points(model, request, judge, g, test, train, n) -> dict:
    """``test``: the held-out reference split; ``train``: for the real-vs-real MMD floor."""
    toy = judge.toy
    x = model.sample(n, generator=g)
    comp, on = toy.assign(x)
    mass = metrics.component_mass(comp, on, len(toy.components))
    out: dict = {"component_mass": mass, "off_support": float((~on).float().mean())}
    retain, train_retain, retain_ids = test, train, list(range(len(mass)))
    if request is not None and request.kind in ("classes", "energy"):
        (_, retain), (_, train_retain) = test.split(request), train.split(request)
        if request.kind == "classes":
            forget_ids = [test.class_id(c) for c in request.classes]
            out["forget_mass"] = sum(mass[i] for i in forget_ids)
            retain_ids = [i for i in retain_ids if i not in forget_ids]
        else:
            out["forget_mass"] = float((test.energy_fn(request.energy)(x) > 0).float().mean())
            retain_ids = sorted(set(retain.labels.tolist()))
    kept = torch.tensor([mass[i] for i in retain_ids])
    shares = kept / kept.sum().clamp_min(1e-12)
    out["max_share_error"] = float((shares * len(retain_ids) - 1).abs().max())
    out["mmd_retain"] = metrics.mmd2(x, retain.x, toy.mmd_bandwidth)
    out["mmd_floor"] = metrics.mmd2(
        train_retain.x[: x.shape[0]], retain.x, toy.mmd_bandwidth
    )  # real vs real: the estimator's noise
    out["mmd_bandwidth"] = toy.mmd_bandwidth
    return out
