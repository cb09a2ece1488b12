"""The image-to-image family: inpainting/outpainting encoder–decoders, judged by their completions
of held-out forget and retain images against the noise reference S_noise of the original model."""

from __future__ import annotations

import numpy as np
import torch

from genunlearn.errors import GenUnlearnError
from genunlearn.families.base import Family, MetricSpec, reject_options


def _mask_metrics(mask: str) -> tuple[MetricSpec, ...]:
    return (
        MetricSpec(f"{mask}_forget_accuracy", f"{mask}: forgotten class still completed ↓", "{:.1%}", "lower"),
        MetricSpec(f"{mask}_forget_similarity", f"{mask}: forget completions' similarity ↓", "{:.3f}", "lower"),
        MetricSpec(f"{mask}_s_noise", f"{mask}: S_noise (similarity with no information)", "{:.3f}"),
        MetricSpec(f"{mask}_retain_accuracy", f"{mask}: retained class completed ↑", "{:.1%}", "higher"),
        MetricSpec(f"{mask}_retain_similarity", f"{mask}: retain completions' similarity ↑", "{:.3f}", "higher"),
    )


def flatten(nested: dict, prefix: str = "") -> dict:
    """``{"inpaint": {"forget": {"similarity": v}}}`` → ``{"inpaint_forget_similarity": v}``."""
    out = {}
    for k, v in nested.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}_"))
        else:
            out[f"{prefix}{k}"] = v
    return out


class I2IFamily(Family):
    name = "i2i"
    metrics = (*_mask_metrics("inpaint"), *_mask_metrics("outpaint"))

    @property
    def model_class(self):
        from genunlearn.i2i.model import I2IModel

        return I2IModel

    def job(self, task, kind, *, forget=None, steps=None, seed=0, options=None):
        from genunlearn.i2i.recipe import I2IJob

        reject_options(self.name, dict(options or {}))
        return I2IJob(task, forget=forget, steps=steps, seed=seed)

    def train(self, job, *, use_cache=True, progress=True):
        from genunlearn.i2i.recipe import train_cached

        return train_cached(job, use_cache=use_cache, progress=progress)

    def bench_steps(self, task, kind, scale):
        from genunlearn.i2i.recipe import I2IRecipe

        return max(50, int(I2IRecipe().train["steps"] * scale))

    def uses_reference(self, request):
        return True  # S_noise: the original model completing noise

    def evaluator(self, task, request, *, reference=None, n_per_prompt=100, seed=0, split="test", progress=True):
        """Per mask task and split: completion similarity, FD, judge accuracy, masked MSE, and
        S_noise of ``reference`` (the original; default: the model judged)."""
        from genunlearn.eval.i2i import evaluate_i2i
        from genunlearn.eval.judge import load_judge
        from genunlearn.i2i.unlearn import proxy_classes

        if request is None:
            raise GenUnlearnError("I2I evaluation compares forget and retain classes: give --forget classes=...")
        judge = load_judge(task, progress=progress, verbose=False)

        def evaluate(model):
            exclude = proxy_classes(model.info.get("unlearn", {}))
            return flatten(
                evaluate_i2i(
                    model,
                    request,
                    reference=reference or model,
                    judge=judge,
                    exclude_classes=exclude,
                    seed=seed,
                    split=split,
                )
            )

        return evaluate

    def format(self, metrics):
        from genunlearn.eval.i2i import METRICS, SPLITS
        from genunlearn.i2i.masks import TASKS

        lines = [
            f"{'task':<9} {'split':<7} "
            + " ".join(f"{m:>10}" for m in METRICS)
            + f" {'S_noise':>10} {'S_noise_vis':>11}"
        ]
        for task in TASKS:
            for s in SPLITS:
                extra = (
                    f" {metrics[f'{task}_s_noise']:>10.3f} {metrics[f'{task}_s_noise_visible']:>11.3f}"
                    if s == "forget"
                    else ""
                )
                lines.append(
                    f"{task:<9} {s:<7} " + " ".join(f"{metrics[f'{task}_{s}_{m}']:>10.3f}" for m in METRICS) + extra
                )
        return "\n".join(lines)

    def sample(self, model, n, *, seed=0, labels=None, mask=None, **options):
        """Completions of ``n`` seeded test images (of the ``labels`` classes) under ``mask``, with
        ``originals``, ``masked`` inputs (hidden pixels grey) and ``hidden`` (1 = generated), all
        uint8 ``(N, H, W, C)``, and ``labels``."""
        from genunlearn.data import load_dataset
        from genunlearn.i2i.masks import task_mask
        from genunlearn.io.samples import to_uint8_images

        reject_options(self.name, options)
        mask = mask or "inpaint"
        test = load_dataset(model.info.get("task", model.data["name"]), "test")
        pool = torch.arange(len(test))
        if labels:
            ids = torch.tensor([test.class_id(t.strip()) for t in labels.split(",") if t.strip()])
            pool = torch.isin(test.labels, ids).nonzero().squeeze(1)
            if not len(pool):
                raise GenUnlearnError(f"no test images of classes {labels}")
        g = torch.Generator().manual_seed(seed)
        idx = pool[torch.randperm(len(pool), generator=g).repeat((n + len(pool) - 1) // len(pool))[:n]]
        x = test.x[idx]
        visible = task_mask(mask, n, model.net.grid)
        hidden = model.net.hidden_pixels(visible)
        return {
            "images": to_uint8_images(model.complete(x, visible)),
            "originals": to_uint8_images(x),
            "masked": to_uint8_images(x * (1 - hidden)),
            "hidden": (hidden.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8),
            "labels": test.labels[idx].numpy(),
        }

    def preview(self, model, request):
        """Centre-inpainting completions of the first 8 held-out forget and 8 retain images."""
        from genunlearn.eval.i2i import held_out_splits
        from genunlearn.i2i.masks import task_mask
        from genunlearn.io.samples import to_uint8_images

        splits = held_out_splits(model.info.get("task", model.data["name"]), request)
        x = torch.cat([splits["forget"].x[:8], splits["retain"].x[:8]])
        labels = torch.cat([splits["forget"].labels[:8], splits["retain"].labels[:8]])
        comp = model.complete(x, task_mask("inpaint", len(x), model.net.grid))
        return {"images": to_uint8_images(comp), "labels": labels.numpy()}
