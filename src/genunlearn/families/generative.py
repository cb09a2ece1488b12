"""The generative family: flow-matching, diffusion, one-step and composed models (net + process)."""

from __future__ import annotations

import torch

from genunlearn.errors import GenUnlearnError
from genunlearn.families.base import Family, MetricSpec, reject_options

SAMPLE_SEED = 1234


def check_text_to_image_task(task: str, overrides: dict) -> None:
    """A Stable-Diffusion-format model is trained on labelled images and conditions on prompts:
    refuse other tasks and --unconditional before any work."""
    from genunlearn.data import load_dataset

    if overrides.get("conditional") is False:
        raise GenUnlearnError("--model sd is a text-to-image pipeline: it cannot be --unconditional")
    if load_dataset(task).kind != "images":
        raise GenUnlearnError(
            f"{task}: --model sd needs an image task (digits, shapes, an image folder or an .npz of images); this task holds 2D points"
        )


class GenerativeFamily(Family):
    name = "generative"
    metrics = (
        MetricSpec("forgotten_class_still_drawn", "forgotten class still drawn ↓", "{:.1%}", "lower", 100),
        MetricSpec("concept_still_shown", "concept still shown ↓", "{:.1%}", "lower", 100),
        MetricSpec("UA", "erased concept gone (UA) ↑", "{:.1%}", "higher", 100),
        MetricSpec("IRA", "same-kind concepts kept (IRA) ↑", "{:.1%}", "higher", 100),
        MetricSpec("CRA", "other attributes kept (CRA) ↑", "{:.1%}", "higher", 100),
        MetricSpec("generality", "gone on paraphrases ↑", "{:.1%}", "higher", 100),
        MetricSpec("UA_unnamed", "gone when left unnamed ('a red object') ↑", "{:.1%}", "higher", 100),
        MetricSpec("anchor_rate", "drawn as the anchor", "{:.1%}"),
        MetricSpec("attribute_preservation", "other attributes kept ↑", "{:.1%}", "higher", 100),
        MetricSpec("shape_accuracy_delta_points", "Δ shape acc, other prompts (pts) ↑", "{:+.1f}", "higher"),
        MetricSpec("colour_accuracy_delta_points", "Δ colour acc, other prompts (pts) ↑", "{:+.1f}", "higher"),
        MetricSpec("fd_vs_base", "FD to base samples ↓", "{:.2f}", "lower"),
        MetricSpec("fd_vs_base_floor", "FD floor (base vs base)", "{:.2f}"),
        MetricSpec("forget_mass", "mass on forgotten region ↓", "{:.3f}", "lower", 100),
        MetricSpec("retain_accuracy", "retained prompts drawn right ↑", "{:.1%}", "higher", 100),
        MetricSpec("fd_retain", "FD retained vs real ↓", "{:.2f}", "lower"),
        MetricSpec("fd_floor", "FD floor (real vs real)", "{:.2f}"),
        MetricSpec("kid_retain", "KID retained vs real ↓", "{:.3f}", "lower"),
        MetricSpec("off_support", "mass off support ↓", "{:.3f}", "lower", 100),
        MetricSpec("mmd_retain", "MMD retained vs real ↓", "{:.4f}", "lower"),
    )

    @property
    def model_class(self):
        from genunlearn.generative.model import GenerativeModel

        return GenerativeModel

    def load(self, path, *, task=None, scheduler=None, **options):
        """A genunlearn folder, or a diffusers pipeline/model folder (``task``: its data; ``scheduler``:
        the scheduler folder of a bare model folder)."""
        from genunlearn.interop.diffusers.folders import DiffusersModel, is_diffusers_folder

        reject_options(self.name, options)
        if is_diffusers_folder(path):
            return DiffusersModel.from_pretrained(path, task=task, scheduler=scheduler)
        reject_options(self.name, {"task": task, "scheduler": scheduler})
        return self.model_class.from_pretrained(path)

    def job(self, task, kind, *, forget=None, steps=None, seed=0, options=None):
        from genunlearn.generative.recipes import TrainJob

        options = dict(options or {})
        overrides = {"conditional": False} if options.pop("unconditional", False) else {}
        if options.pop("network", "builtin") == "unet2d":
            from genunlearn.generative.recipes import UNET2D

            from genunlearn.data import load_dataset

            if kind == "sd":
                raise GenUnlearnError(
                    "--network unet2d is for flow and diffusion models; an sd pipeline has its own UNet2DConditionModel"
                )
            if load_dataset(task).kind != "images":
                raise GenUnlearnError(f"--network unet2d is an image network; {task} holds 2D points")
            overrides["network"] = dict(UNET2D)
        overrides.update(options.pop("overrides", {}))
        reject_options(self.name, options)
        if kind == "sd":
            check_text_to_image_task(task, overrides)
        return TrainJob(task, kind, forget=forget, steps=steps, seed=seed, overrides=overrides)

    def train(self, job, *, use_cache=True, progress=True):
        from genunlearn.generative.recipes import train_cached

        return train_cached(job, use_cache=use_cache, progress=progress)

    def bench_steps(self, task, kind, scale):
        from genunlearn.generative.recipes import recipe_for

        return max(50, int(recipe_for(task, kind).train["steps"] * scale))

    def uses_reference(self, request):
        return request is not None and request.kind == "concept"

    def evaluator(self, task, request, *, reference=None, n_per_prompt=100, seed=0, split="test", progress=True):
        """Forgotten class still drawn, retained accuracy and FD/KID (images) or mass/MMD (2D); for
        concept requests, concept still shown, attribute preservation and collateral damage against
        ``reference`` (the base model) samples on the same prompts; on a captioned task (canvas),
        UnlearnCanvas's UA, IRA, CRA, generality and FD vs base (``eval.erasure``, its own sample
        sizes: ``n_per_prompt`` does not apply)."""
        from genunlearn.data import caption_pool
        from genunlearn.eval.judge import load_judge

        judge = load_judge(task, progress=progress, verbose=False)
        if request is not None and request.kind == "concept":
            from genunlearn.eval.concept import concept_reference, evaluate_concept

            if reference is None:
                raise GenUnlearnError(
                    "concept erasure is judged against the base model's samples: pass --reference BASE_MODEL"
                )
            if caption_pool(task) is not None:  # a captioned task (canvas): UnlearnCanvas's protocol
                from genunlearn.eval.erasure import ErasureEvaluator

                erasure = ErasureEvaluator(reference, list(request.concepts), judge, split=split, noise=seed)
                return lambda model: {**erasure(model), "base": erasure.base}
            ref = concept_reference(reference, request, judge, n_per_prompt=n_per_prompt, seed=seed, split=split)
            return lambda model: evaluate_concept(model, request, ref, judge)
        from genunlearn.eval.evaluate import evaluate

        return lambda model: evaluate(model, request, n_per_prompt=n_per_prompt, seed=seed, judge=judge, split=split)

    def sample(self, model, n, *, seed=0, labels=None, prompt=None, steps=None, guidance=None, **options):
        """Images uint8 ``(N, H, W, C)`` or points float32 ``(N, 2)``, plus the labels asked for."""
        import numpy as np

        from genunlearn.io.samples import conditions, to_uint8_images

        reject_options(self.name, options)
        cond, lab = conditions(model, n, labels, prompt)
        kw = {k: v for k, v in {"steps": steps, "guidance": guidance}.items() if v is not None}
        x = model.sample(n, cond, generator=torch.Generator().manual_seed(seed), **kw)
        if model.data["kind"] == "points":
            return {"samples": x.numpy().astype(np.float32), "labels": lab}
        return {"images": to_uint8_images(x), "labels": lab}

    def preview(self, model, request):
        """Fixed-seed samples: 8 per class for conditional models, 2,000 points for 2D."""
        from genunlearn.io.samples import to_uint8_images

        g = torch.Generator().manual_seed(SAMPLE_SEED)
        if model.data["kind"] == "points":
            return {
                "samples": model.sample(2000, generator=g).numpy(),
                "labels": -torch.ones(2000, dtype=torch.long).numpy(),
            }
        k = len(model.attributes[0].values)
        labels = torch.arange(k).repeat_interleave(8)
        cond = model.cond_for_labels(labels)
        x = model.sample(len(labels), cond, generator=g)
        return {
            "images": to_uint8_images(x),
            "labels": (labels if cond is not None else -torch.ones_like(labels)).numpy(),
        }
