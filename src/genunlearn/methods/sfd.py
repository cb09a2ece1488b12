"""SFD, Score Forgetting Distillation (Chen, Zhang & Zhou, ICLR 2025): a data-free distillation of a
class-conditional diffusion (or flow) teacher into a one-step generator that has forgotten classes.

Three copies of the teacher network: the teacher f_φ (frozen), a fake score f_ψ and the generator
G_θ(z, c) = f_θ(b_{t*} z, t*, c) (``OneStep`` process). Each iteration:
1. fake-score step: denoising score matching of f_ψ on sg[G(z, c)] for retained c and on sg[G(z′, c_f)];
2. generator step: SiD loss ℓ(r, s, x_g) = Σ (r − s) ⊙ [(r − x_g) − α (r − s)] / ω,
   ω = sg mean|r − x_g|, with r = f_φ(x_t, t, c), s = f_ψ(x_t, t, c) for retained c, and the
   cross-condition forgetting term r = f_φ(x_t, t, **c_o**), s = f_ψ(x_t, t, **c_f**) on G(z′, c_f).
   Gradients reach θ through the inputs x_t of f_φ and f_ψ (their parameters are frozen, not no_grad).
Nothing real is read: retained labels are a uniform draw over the retained classes; ``data`` is ignored.

Loop integration: two objectives of the shared loop, the fake score f_ψ then the generator G (both
Adam β1 = 0, clip by value, fused; EMA on G), so both are prepared by accelerate, checkpointed and
resumed. Under several processes each is averaged across ranks in its own update; inside G's
update f_ψ is the plain frozen module (never its data-parallel wrapper).
Spec: ../shared/methods/sfd.md; user doc: docs/methods/sfd.md.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable, Literal

import torch

from genunlearn import device
from genunlearn.config import check_bounds
from genunlearn.errors import GenUnlearnError
from genunlearn.methods.base import Method
from genunlearn.methods.lifecycle import split_snapshots
from genunlearn.methods.common import check_conditional, class_ids, copy_net, set_dropout
from genunlearn.processes.one_step import OneStep

DEFAULT_OVERRIDE = {("digits", 3): 8}  # a look-alike safe class; otherwise the next retained class


@dataclass
class SFDConfig:
    steps: int = 1000  # iterations, each one fake-score and one generator update
    batch_size: int = 32  # retain and forget batches each
    alpha: float = 1.2  # SiD α; α = 1 keeps only the cross term (r − s)ᵀ(s − x_g)/ω
    t_star: int = 440  # generator time (σ ≈ 2.5 on linear β 1e-4..0.02, T = 1000)
    t_min: int = 38  # distillation times t ~ U{t_min, …, t_max − 1} (σ ≈ 0.137 .. 13.1)
    t_max: int = 712
    lambda_fake_retain: float = 1.0  # λψ_r
    lambda_fake_forget: float = 0.1  # λψ_f (paper: 0.01 for 50k iterations)
    lambda_gen_retain: float = 1.0  # λG_r
    lambda_gen_forget: float = 0.1  # λG_f (paper: 0.01 for 50k iterations)
    lr_fake: float = 1e-4
    lr_gen: float = 1e-4
    adam_beta2: float = 0.999  # Adam β1 is 0 (reference)
    grad_clip: float = 1.0  # by value (reference), both networks
    ema_decay: float | None = 0.99  # EMA of G (paper 0.9999 over 50k iterations)
    # guidance scale of the teacher f_φ only; None: the teacher's own sampler's; 1 = none (reference)
    guidance: float | None = None
    override: int | str | None = None  # c_o for mode "fixed"; None: 3 → 8 on digits, else the next retained class
    # fixed | random (uniform over retained classes per sample) | classifier
    override_mode: Literal["fixed", "random", "classifier"] = "fixed"
    override_classifier: str | None = None  # folder of a saved classifier (mode "classifier"; not the judge)
    forget_warmup: float = 0.0  # fraction of iterations whose forget branches draw t from [0.02T, 0.98T)
    # dropout of G and f_ψ while distilling; None: the networks' own, in train mode (reference)
    dropout: float | None = 0.0
    distill_only: bool = False  # plain SiD distillation of every class (no forgetting; the request is ignored)
    seed: int = 0

    def __post_init__(self):
        if self.override_mode == "classifier" and not self.override_classifier:
            raise GenUnlearnError("sfd: override_mode=classifier needs override_classifier (a saved classifier folder)")
        check_bounds(
            "sfd",
            steps=(self.steps, 1, None),
            batch_size=(self.batch_size, 1, None),
            lr_fake=(self.lr_fake, 0, None, "()"),
            lr_gen=(self.lr_gen, 0, None, "()"),
        )
        if not 0 <= self.t_min < self.t_max:
            raise GenUnlearnError(f"sfd needs 0 <= t_min < t_max, got t_min={self.t_min}, t_max={self.t_max}")
        if min(self.lambda_fake_retain, self.lambda_fake_forget, self.lambda_gen_retain, self.lambda_gen_forget) < 0:
            raise GenUnlearnError("sfd: loss weights (lambda_*) must be >= 0")
        if self.lambda_gen_forget > 0 and self.lambda_fake_forget == 0:
            raise GenUnlearnError(
                "sfd: lambda_gen_forget > 0 needs lambda_fake_forget > 0 (the fake score must track G's forget output)"
            )
        if not 0 <= self.forget_warmup <= 1:
            raise GenUnlearnError(f"sfd: forget_warmup is a fraction of the iterations, got {self.forget_warmup}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise GenUnlearnError(f"sfd: dropout must be in [0, 1) or none, got {self.dropout}")


def sid_loss(r: torch.Tensor, s: torch.Tensor, x_g: torch.Tensor, alpha: float) -> torch.Tensor:
    """Per-sample SiD generator loss Σ (r − s) ⊙ [(r − x_g) − α (r − s)] / ω, ω = sg mean|r − x_g| ≥ 1e-5."""
    omega = (r - x_g).abs().flatten(1).mean(1).clamp_min(1e-5).detach()
    d = r - s
    return (d * ((r - x_g) - alpha * d)).flatten(1).sum(1) / omega


def sid_terms(
    process, teacher, fake, x_g, t, eps, cond, teacher_cond, alpha: float, guidance: float = 1.0
) -> torch.Tensor:
    """Per-sample SiD loss of generated ``x_g`` at one shared (x_t, t, ε): s = f_ψ(x_t, t, ``cond``) and
    r = f_φ(x_t, t, ``teacher_cond``) (the override where ``cond`` is the forget class). Both nets are
    called with gradients so that the loss reaches x_g through their inputs."""
    x_t = process.corrupt(x_g, t=t, noise=eps)[0]
    s = process.denoise(fake, x_t, t, cond)
    r = process.denoise(teacher, x_t, t, teacher_cond, guidance)
    return sid_loss(r, s, x_g, alpha)


class Overrides:
    """Chooses c_o for each forget sample: a fixed class, a uniform retained class, or a classifier's pick."""

    def __init__(self, cfg: SFDConfig, model, forget: list[int], retained: list[int]):
        self.mode, self.forget, self.retained = cfg.override_mode, forget, torch.tensor(retained)
        self.fixed = self.classifier = None
        if self.mode == "fixed":
            default = DEFAULT_OVERRIDE.get(
                (model.data["name"], forget[0]), next((c for c in retained if c > forget[0]), retained[0])
            )
            self.fixed = class_ids(model, [cfg.override])[0] if cfg.override is not None else default
            if self.fixed in forget:
                raise GenUnlearnError(f"sfd: the override class {self.fixed} is itself being forgotten")
        elif cfg.override is not None:
            raise GenUnlearnError(f"sfd: override={cfg.override!r} only applies to override_mode=fixed")
        if self.mode == "classifier":
            from genunlearn.classify.model import ClassifierModel

            self.classifier = ClassifierModel.from_pretrained(cfg.override_classifier).net.eval().requires_grad_(False)

    def __call__(self, n: int, g: torch.Generator, denoised: Callable[[], torch.Tensor]) -> torch.Tensor:
        """(n,) override class ids; ``denoised()`` gives f_ψ(x_t^f, t, c_f), called by the classifier mode only."""
        if self.mode == "fixed":
            return torch.full((n,), self.fixed, dtype=torch.long)
        if self.mode == "random":
            return self.retained[torch.randint(len(self.retained), (n,), generator=g)]
        with torch.no_grad():
            logits = self.classifier.split_heads(self.classifier(denoised().clamp(-1, 1)))[0]
        logits[:, self.forget] = -torch.inf
        return logits.argmax(1)

    def describe(self) -> str:
        return f"fixed {self.fixed}" if self.mode == "fixed" else self.mode


class SFD(Method):
    Config = SFDConfig

    def unlearn(self, model, request, data=None, *, budget=None, callbacks=()):
        """Distil ``model`` into a one-step generator that has forgotten ``request``. ``data`` is never
        read. A ``Snapshots`` among ``callbacks`` receives the generator after each of its ``steps``
        iterations: raw weights before the last iteration, the returned (EMA) model at the last."""
        from genunlearn.training import Objective, Optim, train_objectives

        self.check(model, request)
        check_conditional(self, model)
        cfg = self.config
        process = OneStep.for_teacher(model.process, cfg.t_star)
        if cfg.t_max > process.num_train_timesteps:
            raise GenUnlearnError(
                f"sfd: t_max={cfg.t_max} exceeds the teacher's {process.num_train_timesteps} timesteps"
            )
        forget = [] if cfg.distill_only else sorted(set(class_ids(model, request.classes)))
        retained = [c for c in range(len(model.attributes[0].values)) if c not in forget]
        if not retained:
            raise GenUnlearnError("sfd: cannot forget every class (no retained class to distil)")
        steps = budget or cfg.steps
        callbacks, snaps = split_snapshots(callbacks)
        run = Distillation(cfg, model, process, forget, retained, steps, snaps)
        opt = dict(optimizer="adam", betas=(0.0, cfg.adam_beta2), weight_decay=0.0, grad_clip=cfg.grad_clip)
        opt |= {"clip_mode": "value", "fused": True}
        objectives = [
            Objective("fake", run.fake, run.fake_loss, Optim(lr=cfg.lr_fake, **opt), takes_update=True),
            Objective(
                "generator",
                run.gen,
                run.gen_loss,
                Optim(lr=cfg.lr_gen, **opt),
                ema_decay=cfg.ema_decay,
                takes_update=True,
            ),
        ]
        t0 = time.perf_counter()
        train_objectives(
            objectives, steps=steps, seed=cfg.seed, log_every=max(1, steps // 20), desc=self.name, callbacks=callbacks
        )
        info = self.unlearned_info(
            run.info,
            steps=steps,
            seconds=time.perf_counter() - t0,
            forget_classes=forget,
            retained_classes=retained,
            override=run.overrides.describe() if run.overrides else None,
            teacher_guidance=run.guidance,
            data_free=True,
        )
        result = model.with_net(run.gen, process=process, info=info)
        for snap in snaps:
            if snap.due(steps, steps):
                snap.fn(steps, result)
        return result


class Distillation:
    """One SFD run: the frozen teacher, the fake score and the generator (copies of the model's
    network), and the two losses the loop alternates (fake score first in each iteration). A loss is
    given its update index, the iteration."""

    def __init__(self, cfg: SFDConfig, model, process, forget: list[int], retained: list[int], steps: int, snaps):
        self.cfg, self.model, self.process, self.steps, self.snaps = cfg, model, process, steps, snaps
        self.forget, self.retained = forget, retained
        self.forgetting = bool(forget) and cfg.lambda_gen_forget + cfg.lambda_fake_forget > 0
        self.overrides = Overrides(cfg, model, forget, retained) if self.forgetting else None
        self.guidance = getattr(model.process, "guidance", 1.0) if cfg.guidance is None else cfg.guidance
        self.teacher = copy_net(model.net, trainable=False).eval()
        self.fake = copy_net(model.net, trainable=True)
        self.gen = copy_net(model.net, trainable=True)
        if cfg.dropout is not None:
            for net in (self.fake, self.gen):
                set_dropout(net, cfg.dropout)
        self.warmup_until = cfg.forget_warmup * steps
        self.info = {**model.info, "model": "one_step", "teacher_model": model.info.get("model") or model.process.name}

    def conditions(self, g):
        """Retained conditions (uniform over retained classes), then forget conditions if forgetting."""
        B, retained, forget = self.cfg.batch_size, self.retained, self.forget
        labels = torch.tensor(retained)[torch.randint(len(retained), (B,), generator=g)]
        if self.forgetting:
            labels = torch.cat([labels, torch.tensor(forget)[torch.randint(len(forget), (B,), generator=g)]])
        return self.model.cond_for_labels(labels)

    def times(self, n, g, iteration):
        """t ~ U{t_min, …, t_max − 1}; forget rows from [0.02T, 0.98T) during the forget warm-up."""
        T, B = self.process.num_train_timesteps, self.cfg.batch_size
        t = torch.randint(self.cfg.t_min, self.cfg.t_max, (n,), generator=g)
        if self.forgetting and iteration < self.warmup_until:
            t[B:] = torch.randint(int(0.02 * T), int(0.98 * T), (n - B,), generator=g)
        return t

    def weighted(self, per_sample, w_retain, w_forget):
        B = self.cfg.batch_size
        out = w_retain * per_sample[:B].mean()
        return out + w_forget * per_sample[B:].mean() if self.forgetting else out

    def snapshot(self, iteration):
        for snap in self.snaps:
            if snap.due(iteration, self.steps) and iteration < self.steps:
                info = {**self.info, "snapshot": iteration}
                snap.fn(iteration, self.model.with_net(copy.deepcopy(self.gen).eval(), process=self.process, info=info))

    def fake_loss(self, f_net, g, iteration):
        """Denoising score matching of f_ψ on sg[G(z, c)] (first in each iteration)."""
        self.snapshot(iteration)
        cond, process, gen = self.conditions(g), self.process, self.gen
        with torch.no_grad():
            x_g = process.generate(
                gen, device.randn((cond.shape[0], *self.model.sample_shape), g, device=device.of(gen)), cond
            )
        dsm = process.score_loss(f_net, x_g, cond, t=self.times(x_g.shape[0], g, iteration), generator=g)
        return self.weighted(dsm, self.cfg.lambda_fake_retain, self.cfg.lambda_fake_forget)

    def gen_loss(self, g_net, g, iteration):
        """SiD loss of G through the frozen teacher and fake score (the plain modules)."""
        cfg, process, B = self.cfg, self.process, self.cfg.batch_size
        cond = self.conditions(g)
        x_g = process.generate(
            g_net, device.randn((cond.shape[0], *self.model.sample_shape), g, device=device.of(g_net)), cond
        )
        t, eps = self.times(x_g.shape[0], g, iteration), device.randn(x_g.shape, g, device=x_g.device)
        t_cond = cond
        if self.forgetting:  # the teacher sees the override c_o where the fake score sees c_f
            f = slice(B, None)
            c_o = self.overrides(
                B,
                g,
                lambda: process.denoise(self.fake, process.corrupt(x_g[f], t=t[f], noise=eps[f])[0], t[f], cond[f]),
            )
            t_cond = torch.cat([cond[:B], self.model.cond_for_labels(c_o)])
        per = sid_terms(process, self.teacher, self.fake, x_g, t, eps, cond, t_cond, cfg.alpha, self.guidance)
        logs = {"gen_retain": per[:B].mean().item()}
        if self.forgetting:
            logs["gen_forget"] = per[B:].mean().item()
        return self.weighted(per, cfg.lambda_gen_retain, cfg.lambda_gen_forget), logs
