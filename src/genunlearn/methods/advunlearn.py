"""AdvUnlearn (Zhang et al., NeurIPS 2024): concept erasure that survives the prompt attack, by
adversarial training of the text encoder of a Stable-Diffusion-layout pipeline. Bilevel, every step:

* inner, the attacker: ``attack_steps`` updates of UnlearnDiffAtk's soft prefix (``eval.probes.
  prompt_attack``) against the encoder as it is now, on concept latents the original pipeline drew once;
  the prefix carries over from step to step (AdvUnlearn's "latest" start);
* outer, the defender: ESD's loss on the attacked prompt (x_t from the original's DDIM sampler, the
  target out(x_t, ∅) − η [out(x_t, c) − out(x_t, ∅)] of the original), plus ``retain_weight`` × the
  regression of preserved prompts onto the original's own output for them.

Only the text encoder trains (the UNet stays bit-identical; a saved pipeline rewrites ``text_encoder/``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from genunlearn.config import check_bounds
from genunlearn.errors import GenUnlearnError
from genunlearn.forget.request import erase_prompts
from genunlearn.methods.base import Method
from genunlearn.methods.common import copy_net, partly_sampled
from genunlearn.methods.concepts import is_text_model, kept_prompts
from genunlearn.models.soft_prompt import random_prefix, soft_tokens


@dataclass
class AdvUnlearnConfig:
    steps: int = 200
    lr: float = 1e-4  # Adam on the text encoder (ESD's default here; the paper's 1e-5 is for SD v1.4's CLIP)
    batch_size: int = 4  # concept prompts (and as many preserved prompts) per step
    eta: float = 1.0  # ESD's negative-guidance strength
    retain_weight: float = 1.0  # weight of the preserved prompts' term
    retain_prompts: int = 16  # task prompts kept when no --preserve is given
    attack_steps: int = 1  # inner updates per step (1: the fast sign-gradient attack)
    attack_lr: float = 0.1  # inner step, a fraction of the vocabulary's RMS embedding entry
    attack_tokens: int | None = None  # soft tokens in front of the concept prompt (None: 5, or as many as fit)
    images: int = 8  # concept latents the inner attacker holds
    sample_steps: int = 50  # DDIM steps of the sampler that produces x_t
    sample_guidance: float = 3.0
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self):
        check_bounds(
            "advunlearn",
            steps=(self.steps, 1, None),
            lr=(self.lr, 0, 1, "()"),
            batch_size=(self.batch_size, 1, 4096),
            eta=(self.eta, 0, 100, "(]"),
            retain_weight=(self.retain_weight, 0, 1000),
            retain_prompts=(self.retain_prompts, 1, 100_000),
            attack_steps=(self.attack_steps, 1, 1000),
            attack_lr=(self.attack_lr, 0, 10, "(]"),
            attack_tokens=(1 if self.attack_tokens is None else self.attack_tokens, 1, 64),
            images=(self.images, 1, 10_000),
            sample_steps=(self.sample_steps, 1, 1000),
        )


class AdvUnlearn(Method):
    Config = AdvUnlearnConfig
    data_free = True  # the concept latents are the pipeline's own samples

    def check(self, model, request) -> None:
        """Also the prompts (each fits the tokenizer with the soft tokens) and the preserved prompts, before any work."""
        super().check(model, request)
        if not (is_text_model(model) and "text_encoder" in getattr(model, "components", {})):
            raise GenUnlearnError(
                f"method {self.name!r} trains the text encoder of a Stable-Diffusion-layout pipeline (UNet2DConditionModel + CLIP text encoder); this diffusion model has none"
            )
        prompts = list(erase_prompts(request).target)
        soft_tokens(model.net.table.tokenizer, prompts, self.config.attack_tokens, self.name, say=False)
        model.prompt_cond(prompts + kept_prompts(model, request, self.config.retain_prompts, self.config.seed))

    def unlearn(self, model, request, data, *, budget=None, callbacks=()):
        from genunlearn.eval.probes.prompt_attack import AttackTarget, optimise_prefix
        from genunlearn.training import TrainConfig, train

        self.check(model, request)
        cfg, process, n = self.config, model.process, self.config.batch_size
        t0 = time.perf_counter()
        original = copy_net(model.net, trainable=False).eval()  # the UNet frozen, the table of the original encoder
        encoder = copy_net(model.components["text_encoder"], trainable=True)
        g = torch.Generator().manual_seed(cfg.seed)
        concept = list(erase_prompts(request).target)
        kept = kept_prompts(model, request, cfg.retain_prompts, cfg.seed)
        asked = [concept[i % len(concept)] for i in range(cfg.images)]
        target = AttackTarget(model.generate(cfg.images, model.prompt_cond(asked), generator=g), concept)
        tokens = soft_tokens(original.table.tokenizer, concept, cfg.attack_tokens, self.name)
        prefix = random_prefix(original.table.tokenizer, encoder, tokens, g)
        attack = {"steps": cfg.attack_steps, "lr": cfg.attack_lr, "batch": cfg.batch_size}

        def step_loss(enc, gen):
            nonlocal prefix
            prefix = optimise_prefix(original, process, target, prefix, generator=gen, text_encoder=enc, **attack)
            erase = target.prompts_for(torch.randint(len(concept), (n,), generator=gen))
            keep = [kept[i] for i in torch.randint(len(kept), (n,), generator=gen).tolist()]
            rows = model.prompt_cond(erase + keep)
            xt, t = partly_sampled(model, original, rows, cfg.sample_steps, cfg.sample_guidance, gen)
            with torch.no_grad():  # ESD's target out_∅ − η (out_c − out_∅) for the concept; kept prompts: their own
                away = process.predict(original, xt[:n], t[:n], rows[:n], guidance=-cfg.eta)
                same = process.predict(original, xt[n:], t[n:], rows[n:])
            states = original.prompt_states(erase, prefix, text_encoder=enc)  # the attacked prompts
            attacked = original.denoise(xt[:n], process.net_time(t[:n]), states)
            kept_out = original.denoise(xt[n:], process.net_time(t[n:]), original.prompt_states(keep, text_encoder=enc))
            return (attacked - away).pow(2).mean() + cfg.retain_weight * (kept_out - same).pow(2).mean()

        steps = budget or cfg.steps
        adam = {"lr": cfg.lr, "optimizer": "adam", "weight_decay": 0.0, "grad_clip": cfg.grad_clip}
        tc = TrainConfig(steps=steps, seed=cfg.seed, log_every=max(1, steps // 10), **adam)
        train(encoder, step_loss, tc, desc=self.name, callbacks=callbacks)
        encoder.eval().requires_grad_(False)
        seconds = time.perf_counter() - t0
        record = {"concepts": concept, "preserve": kept, "attack_tokens": tokens}
        info = self.unlearned_info(model.info, steps=steps, seconds=seconds, **record)
        return model.with_text_encoder(encoder, info=info)
