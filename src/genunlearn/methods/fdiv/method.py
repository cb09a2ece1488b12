"""The f-DMU method: the lifecycle's plan for one run (pairs, anchor images, frozen target, the closed
or variational objective); Concept Ablation is its closed-form mse case."""

from __future__ import annotations

import time

import torch

from genunlearn.methods.common import check_conditional, copy_net, select_params
from genunlearn.methods.concepts import as_text
from genunlearn.methods.fdiv.closed import closed_loss, importance_timesteps, kl_weights
from genunlearn.methods.fdiv.config import ConceptAblationConfig, FDivConfig
from genunlearn.methods.fdiv.pairs import AnchorPool, make_anchor_pool, request_pairs
from genunlearn.methods.fdiv.variational import variational
from genunlearn.methods.lifecycle import Plan, TrainedMethod
from genunlearn.training.loop import Objective, Optim


class FDiv(TrainedMethod):
    Config = FDivConfig

    def reads_data(self, model, request) -> bool:
        """No training image is read on a text-to-image pipeline's prompts (``methods.concepts``)."""
        return not as_text(model, request)

    def check(self, model, request) -> None:
        """Also the concepts and the anchor (words of the model's vocabulary, or prompts its tokenizer
        holds), before any work."""
        super().check(model, request)
        check_conditional(self, model)
        request_pairs(model, request)

    def plan(self, model, request, data, net, steps, *, anchor_pool: AnchorPool | None = None):
        """Erase ``request.concept`` towards ``request.anchor``. ``data`` is not read (anchor images are
        generated); ``anchor_pool`` reuses images from ``make_anchor_pool``."""
        cfg, process = self.config, model.process
        t0 = time.perf_counter()
        pairs = request_pairs(model, request)
        if anchor_pool is None:
            per_prompt = max(1, cfg.anchor_images // len(pairs.anchor))  # a fixed cost whatever the number of prompts
            anchor_pool = make_anchor_pool(
                model, pairs, per_prompt, steps=cfg.anchor_sampler_steps, guidance=cfg.anchor_guidance, seed=cfg.seed
            )
        pool_seconds = time.perf_counter() - t0
        frozen = copy_net(model.net, trainable=False).eval()
        params = select_params(net, cfg.params)
        omega = kl_weights(process)

        def batch(gen):
            """Shared (x_t, t) for one batch of triples, with their anchor and target conditions."""
            i = torch.randint(len(anchor_pool.x), (cfg.batch_size,), generator=gen)
            t = (
                importance_timesteps(process, cfg.batch_size, gen)
                if cfg.t_sampling == "importance"
                else process.sample_timesteps(cfg.batch_size, gen)
            )
            xt, t, _, _ = process.corrupt(anchor_pool.x[i], gen, t=t)
            return xt, t, anchor_pool.anchor[i], anchor_pool.target[i]

        def frozen_target(m, xt, t, c_anchor):
            """ε_θ₀(x_t, c_anchor): the anchor's prediction the erased prompt is pulled towards."""
            with torch.no_grad():
                return process.predict_eps(m if cfg.anchor_from_live_model else frozen, xt, t, c_anchor)

        if cfg.form == "closed":
            before = ()

            def loss(m, gen):
                xt, t, c_anchor, c_target = batch(gen)
                target = frozen_target(m, xt, t, c_anchor)
                per_sample, k, mse = closed_loss(cfg, process.predict_eps(m, xt, t, c_target), target, t, omega)
                return per_sample.mean(), {"mse": mse.mean().item(), "k_mean": k.mean().item(), "k_max": k.max().item()}

        else:  # the critic draws a batch per update; the model's update reuses the critic's last
            critic, loss = variational(cfg, model, net, frozen_target, batch)
            before = (critic,)

        def record(result):
            return {
                "anchor_pool_seconds": round(pool_seconds, 3),
                "anchor_images": len(anchor_pool.x),
                "trainable_params": sum(p.numel() for p in params),
                "final_loss": result.losses[-1] if result.losses else None,
            }

        optim = Optim(lr=cfg.lr, optimizer="adamw", weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip)
        model_objective = Objective("model", net, loss, optim, params=params, batch_of="critic" if before else None)
        return Plan(model_objective, before=before, record=record)


class ConceptAblation(FDiv):
    """Concept Ablation (model-based variant) = f-DMU's closed-form ``mse`` loss with the same pairs."""

    Config = ConceptAblationConfig
