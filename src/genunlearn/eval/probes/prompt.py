"""Text-prompt attack on a text-to-image pipeline (UnlearnDiffAtk, Zhang et al., ECCV 2024): does an
erased concept come back under a prompt the attacker writes?

Per concept of the request: the attacker holds ``images`` latents of the concept (drawn by the
reference pipeline, the original, on the concept's prompts; without a reference, the task's
training images of the concept) and optimises ``tokens`` soft tokens in front of the concept's
prompts to minimise the model's own denoising loss on them (``prompt_attack``). The model then
samples ``n`` images with the plain prompts ("no attack") and with the prefixed prompts ("attack"),
same noise, and a judge counts the concept: the attack success rate (ASR). With a reference the same
attack runs on it too, so the table shows what the attack does to a model that never erased anything.

Judges: the task's judge (``eval.judge.load_judge``) on a pipeline with a task, or the user's
``--judge`` folder (a genunlearn classifier or a CLIP folder, as ``genunlearn evaluate --judge``).
Prompts: the request's prompts of the test split (``forget.erase_prompts``: the concept, its
templates, its prompt file rows); a task word alone is written as the task writes it ("a circle").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

import torch

from genunlearn.config import check_bounds
from genunlearn.errors import GenUnlearnError
from genunlearn.eval.probes.common import npz_arrays, task_of
from genunlearn.eval.probes.prompt_attack import AttackTarget, held_out_loss, optimise_prefix


@dataclass
class PromptConfig:
    steps: int = 40  # Adam updates of the soft tokens
    lr: float = 0.1  # Adam's step, a fraction of the vocabulary's RMS embedding entry
    tokens: int | None = None  # soft tokens in front of the prompt (None: UnlearnDiffAtk's 5, or as many as fit)
    n: int = 32  # samples judged per concept and arm
    images: int = 16  # concept images the attacker holds, per concept
    batch_size: int = 8  # images per attack step
    seed: int = 0

    def check(self) -> None:
        check_bounds(
            "prompt",
            steps=(self.steps, 1, 10_000),
            lr=(self.lr, 0, 10, "(]"),
            tokens=(1 if self.tokens is None else self.tokens, 1, 64),
            n=(self.n, 1, 100_000),
            images=(self.images, 1, 10_000),
            batch_size=(self.batch_size, 1, 4096),
        )


def check_prompt_request(model, request) -> None:
    """One line when the prompt attack cannot run on this model and request (before any work)."""
    from genunlearn.methods.concepts import is_text_model

    if not is_text_model(model):
        raise GenUnlearnError(
            "the prompt attack runs on text-to-image pipelines (a Stable-Diffusion-layout folder); use --probe cond or noise on other models"
        )
    if request is None or request.kind != "concept":
        raise GenUnlearnError(
            f"the prompt attack needs a concept request (e.g. --forget 'concept=circle;anchor=shape'), not {getattr(request, 'kind', 'nothing')}"
        )


def task_word(model, text: str) -> tuple[int, int] | None:
    """(attribute, value) of a task word ("circle", "a circle") on a pipeline with a task, else None."""
    from genunlearn.data.dataset import concept_slot

    if not getattr(model, "has_task", False):
        return None
    try:
        attr, value = concept_slot(model.attributes, text)
    except GenUnlearnError:
        return None
    return None if value is None else (attr, value)


def concept_prompts(model, request) -> dict[str, list[str]]:
    """Each concept's prompts (test split), a task word written as the task's row prompt."""
    from genunlearn.data.dataset import cond_to_prompt
    from genunlearn.forget.request import erase_prompts

    p = erase_prompts(request, "test")
    out: dict[str, list[str]] = {c: [] for c in request.concepts}
    for prompt, concept in zip(p.target, p.concept):
        slot = task_word(model, prompt)
        if slot is not None:
            row = [len(a.values) for a in model.attributes]
            row[slot[0]] = slot[1]
            prompt = cond_to_prompt(model.attributes, row)
        out[concept] = list(dict.fromkeys([*out[concept], prompt]))
    return out


@dataclass
class ConceptJudge:
    """``hits(images, concept)``: which images show the concept; ``name`` says which judge."""

    hits: Callable[[torch.Tensor, str], torch.Tensor]
    name: str


def concept_judge(model, request, folder=None) -> ConceptJudge:
    """The user's judge folder, else the task's judge; every concept checked against it."""
    if folder is not None:
        from genunlearn.eval.concept import load_label_judge

        judge = load_label_judge(folder, request.names())
        ids = {c: judge.label(c) for c in request.concepts}
        return ConceptJudge(lambda x, c: judge.classify(x) == ids[c], f"{judge.kind}: {folder}")
    if not getattr(model, "has_task", False):
        raise GenUnlearnError(
            "this pipeline has no task, so no built-in judge: pass --judge FOLDER (a genunlearn classifier or a CLIP folder)"
        )
    slots = {}
    for c in request.concepts:
        slots[c] = task_word(model, c)
        if slots[c] is None:
            raise GenUnlearnError(
                f"the {task_of(model)} judge names task words; {c!r} is not one (pass --judge FOLDER to judge free text)"
            )
    from genunlearn.eval.judge import load_judge

    judge = load_judge(task_of(model), progress=False, verbose=False)
    return ConceptJudge(lambda x, c: judge.predict(x)[:, slots[c][0]] == slots[c][1], f"task judge: {task_of(model)}")


def concept_latents(model, concept: str, prompts: list[str], cfg: PromptConfig, reference=None) -> torch.Tensor:
    """``cfg.images`` latents of the concept: the reference's samples of its prompts, else the task's images of it."""
    g = torch.Generator().manual_seed(cfg.seed + 7919)
    if reference is not None:
        cond = reference.prompt_cond([prompts[i % len(prompts)] for i in range(cfg.images)])
        return reference.generate(cfg.images, cond, generator=g)
    from genunlearn.data.fingerprint import model_dataset

    attr, value = task_word(model, concept)
    data = model_dataset(model)
    mine = (data.cond()[:, attr] == value).nonzero().squeeze(1)
    return model.encode(data.x[mine[torch.randperm(len(mine), generator=g)[: cfg.images]]])


def check_image_source(model, request, reference) -> str:
    """Where the concept images come from ("reference" or "task"); one line when from nowhere."""
    if reference is not None:
        return "reference"
    free = [c for c in request.concepts if task_word(model, c) is None]
    if free:
        raise GenUnlearnError(
            f"the prompt attack needs images of {free[0]!r}: pass --reference BASE (the original pipeline draws them)"
            + (" or name a task word" if getattr(model, "has_task", False) else "")
        )
    return "task"


def attack_model(
    model, targets: dict[str, AttackTarget], judge: ConceptJudge, cfg: PromptConfig
) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """(per-concept ASR and loss with and without the attack, the attacked samples, their concept ids)."""
    from genunlearn.models.soft_prompt import random_prefix

    view, process = model.net, model.process
    view.eval()
    g = torch.Generator().manual_seed(cfg.seed)
    out, samples, labels = {}, [], []
    for k, (concept, target) in enumerate(targets.items()):
        start = random_prefix(view.table.tokenizer, view.table.text_encoder, cfg.tokens, g)
        prefix = optimise_prefix(
            view, process, target, start, steps=cfg.steps, lr=cfg.lr, batch=cfg.batch_size, generator=g
        )
        asked = target.prompts_for(torch.arange(cfg.n))
        with torch.no_grad():
            attacked = view.states_cond(view.prompt_states(asked, prefix))
        seed = cfg.seed + 104729 + k
        plain_x = model.sample(cfg.n, model.prompt_cond(asked), generator=torch.Generator().manual_seed(seed))
        attack_x = model.sample(cfg.n, attacked, generator=torch.Generator().manual_seed(seed))
        out[concept] = {
            "asr_no_attack": float(judge.hits(plain_x, concept).float().mean()),
            "asr_attack": float(judge.hits(attack_x, concept).float().mean()),
            "loss_no_attack": held_out_loss(view, process, target, None, cfg.seed + 1),
            "loss_attack": held_out_loss(view, process, target, prefix, cfg.seed + 1),
        }
        samples.append(attack_x)
        labels.append(torch.full((cfg.n,), k, dtype=torch.long))
    return out, torch.cat(samples), torch.cat(labels)


def summary(by_concept: dict) -> dict:
    """Means over the concepts of every per-concept number, beside them."""
    keys = next(iter(by_concept.values())).keys()
    return {**{k: sum(v[k] for v in by_concept.values()) / len(by_concept) for k in keys}, "by_concept": by_concept}


def prompt_probe(model, request, cfg: PromptConfig | None = None, *, reference=None, judge: str | None = None) -> dict:
    """ASR of the plain and the attacked prompts per concept (and the reference's); the attacked samples (``arrays``)."""
    from genunlearn.models.soft_prompt import prefixed_ids, soft_tokens

    cfg = cfg or PromptConfig()
    cfg.check()
    check_prompt_request(model, request)
    prompts = concept_prompts(model, request)
    every = [p for ps in prompts.values() for p in ps]
    cfg = replace(cfg, tokens=soft_tokens(model.net.table.tokenizer, every, cfg.tokens, "prompt attack"))
    if reference is not None:
        check_prompt_request(reference, request)
        prefixed_ids(reference.net.table.tokenizer, every, cfg.tokens)  # the same soft tokens fit the reference too
    source = check_image_source(model, request, reference)
    concept_judge_ = concept_judge(model, request, judge)
    t0 = time.perf_counter()
    targets = {c: AttackTarget(concept_latents(model, c, ps, cfg, reference), ps) for c, ps in prompts.items()}
    by_concept, x, labels = attack_model(model, targets, concept_judge_, cfg)
    out = {
        "probe": "prompt",
        "forget": request.spec(),
        "steps": cfg.steps,
        "tokens": cfg.tokens,
        "n": cfg.n,
        "images": f"{cfg.images} per concept from the {source}",
        "judge": concept_judge_.name,
        **summary(by_concept),
    }
    if reference is not None:
        out["reference"] = summary(attack_model(reference, targets, concept_judge_, cfg)[0])
    out["seconds"] = round(time.perf_counter() - t0, 2)
    out["arrays"] = npz_arrays(model, x, labels)
    return out


def format_prompt_probe(result: dict) -> str:
    """The table the ``probe`` command prints."""
    ref = result.get("reference")
    lines = [
        f"prompt attack ({result['forget']}; {result['steps']} steps on {result['tokens']} soft tokens, {result['images']}); judged by the {result['judge']}",
        f"attack success rate = share of samples showing the concept, n={result['n']} per concept and arm"
        + ("; reference: the same attack on --reference" if ref else ""),
        f"{'concept':>16}  {'no attack':>9}  {'attack':>7}"
        + (f"  {'ref. no attack':>14}  {'ref. attack':>11}" if ref else ""),
    ]
    rows = [(c, r, ref["by_concept"][c] if ref else None) for c, r in result["by_concept"].items()] + [
        ("mean", result, ref)
    ]
    for name, r, b in rows:
        lines.append(
            f"{name[:16]:>16}  {r['asr_no_attack']:>9.1%}  {r['asr_attack']:>7.1%}"
            + (f"  {b['asr_no_attack']:>14.1%}  {b['asr_attack']:>11.1%}" if b else "")
        )
    lines.append(
        f"denoising loss on the concept images: plain prompts {result['loss_no_attack']:.4f}, attacked {result['loss_attack']:.4f}"
    )
    return "\n".join(lines)
