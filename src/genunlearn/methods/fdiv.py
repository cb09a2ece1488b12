"""f-DMU: concept erasure as f-divergence minimisation (Novello et al., arXiv:2509.21167), and
Concept Ablation (Kumari et al. 2023) as its MSE case.

The trainable model under the **target** prompt ("a red circle") is pulled towards the frozen original
under the **anchor** prompt ("a red shape"): per DDPM step, D_f(p_Φ(x_{t−1}|x_t, anchor) ‖
p_Φ̂(x_{t−1}|x_t, target)). Anchor images are drawn once from the original model with the anchor
prompts (never real data); each step takes (x_0, anchor prompt, target prompt) triples, one shared
(x_t, t, ε), target = sg ε_Φ(x_t, t, anchor), pred = ε_Φ̂(x_t, t, target). The pairs are the task's
attribute rows, or on a text-to-image pipeline the request's prompts (``methods.concepts``: any
text, several concepts, preserved prompts paired with themselves so their outputs stay).

* ``form="closed"``: per-sample m_b = mean (pred − target)², K_b = m_b / 2 (``div_scale="mean"``, the
  reference) or K_b = ω_t Σ (pred − target)² with ω_t = β_t / (2 α_t (1 − ᾱ_t)) (``"exact"``: the
  true Gaussian KL for σ_t² = β_t); loss = mean_b g(K_b) with g from ``divergences.py``.
* ``form="variational"``: f-GAN. A small spectral-norm PatchGAN critic sees ε-maps (real = target,
  fake = pred; with ``critic_conditioning="xt_t"`` also x_t and a t/T channel). The critic is an
  objective of the shared loop before the model (AdamW): ``critic_warmup`` critic-only updates first,
  then per step ``critic_steps`` critic updates, each on a fresh batch, and one model update on the
  last of those batches.

Spec: ../shared/methods/fdivergence.md; user doc: docs/methods/fdiv.md.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from genunlearn.config import check_bounds
from genunlearn.errors import GenUnlearnError
from genunlearn.methods import divergences
from genunlearn.forget.request import ForgetRequest
from genunlearn.methods.lifecycle import Plan, TrainedMethod
from genunlearn.methods.concepts import as_text, text_conditions, word_slots
from genunlearn.progress import stage
from genunlearn.training.loop import Objective, Optim
from genunlearn.methods.common import ParamGroup, check_conditional, copy_net, select_params

DEFAULT_LR = {"all": 1e-4, "conditioning": 1e-3, "non_conditioning": 1e-4}


@dataclass
class FDivConfig:
    # closed: mse|kl|jeffreys|hellinger|chi2|alpha:A; variational: kl|rkl|js|hellinger|chi2|tv
    divergence: str = "hellinger"
    form: Literal["closed", "variational"] = "closed"
    # mean: K = per-element-mean MSE / 2 (reference) | exact: Gaussian KL ω_t Σ Δε²
    div_scale: Literal["mean", "exact"] = "mean"
    # all | conditioning (condition embeddings, FiLM projections, cross-attention K/V) | non_conditioning (the rest)
    params: ParamGroup = "all"
    steps: int = 400
    lr: float | None = None  # None: 1e-3 for params=conditioning, else 1e-4
    batch_size: int = 32
    weight_decay: float = 1e-2  # AdamW
    grad_clip: float | None = 1.0
    max_exponent: float = 30.0  # clamp of the exponent in chi2 / alpha closed forms
    t_sampling: Literal["uniform", "importance"] = "uniform"  # importance: mostly t in [0.2T, 0.4T]
    # in all, drawn from the original model, spread evenly over the anchor prompts (at least one each)
    anchor_images: int = 1000
    anchor_sampler_steps: int = 25
    anchor_guidance: float = 3.0
    anchor_from_live_model: bool = False  # Concept Ablation's diffusers code: target from the live model (no_grad)
    critic_lr: float = 1e-4
    critic_channels: int = 32
    critic_warmup: int = 30
    critic_steps: int = 1  # critic updates per model update (each on a fresh batch; the model uses the last)
    critic_conditioning: Literal["none", "xt_t"] = "none"  # xt_t: concatenate x_t and a t/T channel
    seed: int = 0

    def __post_init__(self):
        self.divergence = self.divergence.strip().lower()
        if self.form == "closed":
            divergences.closed_form(self.divergence)
        else:
            divergences.variational(self.divergence)
        check_bounds(
            "fdiv",
            steps=(self.steps, 1, None),
            batch_size=(self.batch_size, 1, None),
            anchor_images=(self.anchor_images, 1, None),
            anchor_sampler_steps=(self.anchor_sampler_steps, 1, None),
            critic_channels=(self.critic_channels, 1, None),
            critic_warmup=(self.critic_warmup, 0, None),
            critic_steps=(self.critic_steps, 1, None),
        )
        check_bounds(
            "fdiv",
            lr=(1.0 if self.lr is None else self.lr, 0, None, "()"),
            critic_lr=(self.critic_lr, 0, None, "()"),
            max_exponent=(self.max_exponent, 0, None, "()"),
        )
        if self.lr is None:
            self.lr = DEFAULT_LR[self.params]


@dataclass
class ConceptAblationConfig(FDivConfig):
    """Concept Ablation (model-based): the ``mse`` closed form of f-DMU, nothing else."""

    divergence: str = "mse"

    def __post_init__(self):
        if self.divergence != "mse" or self.form != "closed":
            raise GenUnlearnError(
                "concept_ablation is the closed-form mse case; use --method fdiv for other divergences"
            )
        super().__post_init__()


@dataclass
class PromptPairs:
    """Rows of (anchor condition, target condition); the other attributes are kept ("red" stays red)."""

    anchor: torch.Tensor  # (P, A)
    target: torch.Tensor  # (P, A)


def prompt_pairs(attributes, concept: str, anchor: str) -> PromptPairs:
    """Words route: for each concept ("circle", or several: "circle; square") and every value of the
    other attributes and "unspecified", a target row with the concept and an anchor row with the anchor
    word (a sibling value, or the generic word = unspecified)."""
    attr, values, a_value = word_slots(attributes, ForgetRequest("concept", concept=concept, anchor=anchor))
    vocab = [len(a.values) for a in attributes]
    others = [range(v + 1) if i != attr else [0] for i, v in enumerate(vocab)]
    rows = torch.tensor(list(itertools.product(*others)), dtype=torch.long)
    target, anch = rows.repeat(len(values), 1), rows.repeat(len(values), 1)
    target[:, attr] = torch.tensor(values).repeat_interleave(len(rows))
    anch[:, attr] = vocab[attr] if a_value is None else a_value
    return PromptPairs(anch, target)


def request_pairs(model, request) -> PromptPairs:
    """The pairs of either route (``methods.concepts``); on the text route each (prompt, anchor prompt)
    pair, and each preserved prompt paired with itself (its output is kept where it is)."""
    if not as_text(model, request):
        return prompt_pairs(model.attributes, request.concept, request.anchor)
    c = text_conditions(model, request)
    return PromptPairs(torch.cat([c.anchor, c.preserve]), torch.cat([c.target, c.preserve]))


@dataclass
class AnchorPool:
    """Anchor images from the original model, each with its anchor and target condition rows."""

    x: torch.Tensor
    anchor: torch.Tensor
    target: torch.Tensor


@torch.no_grad()
def make_anchor_pool(
    model, pairs: PromptPairs, n_per_prompt: int, *, steps: int, guidance: float, seed: int
) -> AnchorPool:
    """``n_per_prompt`` samples per anchor prompt (in the model's space: latents for a latent model), drawn by ``model`` (the original) with a seeded generator."""
    anchor = pairs.anchor.repeat_interleave(n_per_prompt, 0)
    target = pairs.target.repeat_interleave(n_per_prompt, 0)
    stage(
        f"sampling {len(anchor)} anchor images ({n_per_prompt} per anchor prompt) from the original model",
        "the targets the erased prompts are pulled towards; drawn once",
    )
    x = model.generate(
        anchor.shape[0], anchor, generator=torch.Generator().manual_seed(seed), steps=steps, guidance=guidance
    )
    return AnchorPool(x, anchor, target)


class Critic(nn.Module):
    """PatchGAN-style critic on ε-maps: 4×4 convs (stride 2, then 1), LeakyReLU 0.2, spectral norm on all
    but the last layer; the output map is averaged to one value per sample."""

    def __init__(self, in_channels: int, channels: int = 32):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.net = nn.Sequential(
            sn(nn.Conv2d(in_channels, channels, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            sn(nn.Conv2d(channels, 2 * channels, 4, 1, 1)),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * channels, 1, 4, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1).mean(1)


def kl_weights(process) -> torch.Tensor:
    """ω_t = β_t / (2 α_t (1 − ᾱ_t)): KL per squared ε error between the two reverse kernels, σ_t² = β_t."""
    ab = process.alphas_cumprod.double()
    alpha = ab / torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])
    return ((1 - alpha) / (2 * alpha * (1 - ab))).float()


def closed_loss(cfg: FDivConfig, pred: torch.Tensor, target: torch.Tensor, t: torch.Tensor, omega: torch.Tensor):
    """Per-sample closed-form loss g(K_b), with K_b and the per-sample MSE m_b (reduce first, then g)."""
    diff2 = (pred - target).pow(2).flatten(1)
    mse = diff2.mean(1)
    k = mse / 2 if cfg.div_scale == "mean" else omega.to(t.device)[t] * diff2.sum(1)
    g_of_k = divergences.closed_form(cfg.divergence)
    return g_of_k(mse if cfg.divergence == "mse" else k, cfg.max_exponent), k, mse


def importance_timesteps(process, n: int, generator) -> torch.Tensor:
    """t ∝ σ(0.05(t − 0.2T)) − σ(0.05(t − 0.4T)) (the reference's option)."""
    T = process.num_train_timesteps
    t = torch.arange(T, dtype=torch.float64)
    w = torch.sigmoid(0.05 * (t - 0.2 * T)) - torch.sigmoid(0.05 * (t - 0.4 * T))
    return torch.multinomial(w.clamp_min(0), n, replacement=True, generator=generator)


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
            critic, loss = self.variational(model, net, frozen_target, batch)
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

    def variational(self, model, net, frozen_target, batch):
        """The variational form: (the critic's objective, the model's loss against the critic); both
        losses take the batch the loop drew (``batch``) for the critic's update."""
        cfg, process = self.config, model.process
        fgan = divergences.variational(cfg.divergence)
        extra = 1 + model.sample_shape[0] if cfg.critic_conditioning == "xt_t" else 0
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed)
            critic = Critic(model.sample_shape[0] + extra, cfg.critic_channels).train()

        def critic_input(eps, xt, t):
            if cfg.critic_conditioning == "none":
                return eps
            tt = process.net_time(t).view(-1, 1, 1, 1).expand(-1, 1, *xt.shape[2:])
            return torch.cat([eps, xt, tt], 1)

        def critic_loss(c_net, gen, batch):
            """f-GAN critic loss: real = the frozen anchor target, fake = the model's prediction (no gradient)."""
            xt, t, c_anchor, c_target = batch
            real = frozen_target(net, xt, t, c_anchor)
            with torch.no_grad():
                pred = process.predict_eps(net, xt, t, c_target)
            return divergences.critic_loss(fgan, c_net(critic_input(real, xt, t)), c_net(critic_input(pred, xt, t)))

        def loss(m, gen, batch):
            """The generator side of the f-GAN bound, through the plain (frozen) critic."""
            xt, t, _, c_target = batch
            return divergences.generator_loss(
                fgan, critic(critic_input(process.predict_eps(m, xt, t, c_target), xt, t))
            )

        optim = Optim(lr=cfg.critic_lr, optimizer="adamw", weight_decay=cfg.weight_decay, grad_clip=None)
        every, warmup = cfg.critic_steps, cfg.critic_warmup
        return Objective("critic", critic, critic_loss, optim, every=every, warmup_updates=warmup, batch=batch), loss


class ConceptAblation(FDiv):
    """Concept Ablation (model-based variant) = f-DMU's closed-form ``mse`` loss with the same pairs."""

    Config = ConceptAblationConfig
