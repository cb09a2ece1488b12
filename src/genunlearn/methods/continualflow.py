"""ContinualFlow: energy-reweighted flow matching (Simone et al., arXiv:2506.18747).

Target q̃(x) ∝ q0(x)·σ(−λF(x)): the pretrained model's own distribution q0 with the forget region
(high energy F) subtracted. The loss is the flow process's per-sample loss on samples x1 of a
pool drawn once from the frozen pretrained model, weighted by w = σ(−λF(x1)) and normalised by
Σw. The unlearning stage never reads data: only the energy stage does (``classes`` requests train
a retain-vs-forget proxy first, see ``genunlearn.forget.energy``).

Modes. ``finetune`` (default, a project choice): the pretrained network is fine-tuned in place from
noise to q̃, so sampling is unchanged. ``composed`` (the reference code): a new network transports
pool samples to reweighted pool samples (independent pairs); the model becomes a ``ComposedNet``
sampled by the ``ComposedFlow`` process (unconditional models only). Composed mode never changes the
base stage q0: each request trains one transport from q0's pool with every energy in force, so
applying −F of an earlier energy F restores its region (the pair cancels; none left: q0 itself).

Conditional models (project rule): a condition is "vanishing" (a forgotten class) when the energy
removes the majority of its mass, Z_c / max Z < ``tau_c`` = ½ (a Z-ratio test, logged per condition
with its standard error); it and the null condition (with the base's dropout probability) learn the
reweighted marginal from the whole pool (or anchor class k with ``fallback="class:k"``).

Continual use: every energy applied is stored in ``info["continualflow"]["energies"]``; a later
request multiplies all weights, w = Π_k σ(−λ_k F_k), with the pool drawn from the current model.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass
from typing import Literal

import torch

from genunlearn import device
from genunlearn.forget.energy import Energy, energy_for_request, restore_energy
from genunlearn.config import check_bounds
from genunlearn.errors import GenUnlearnError
from genunlearn.methods.base import Method
from genunlearn.progress import stage
from genunlearn.training.loop import check_schedule

ESS_WARN = 0.05


@dataclass
class ContinualFlowConfig:
    lam: float = 5.0  # suppression strength λ (paper/reference: 5)
    # finetune (in place, default) or composed (a new transport flow, the reference code)
    mode: Literal["finetune", "composed"] = "finetune"
    # logodds (F = logit P(forget)) or neglogretain (reference: −log P(retain))
    energy: Literal["logodds", "neglogretain"] = "logodds"
    pool: int = 10000  # M samples drawn once from the frozen pretrained model
    steps: int = 1000  # optimiser steps (the CLI's --steps overrides)
    lr: float | None = None  # None: the base recipe's lr / 10 (finetune) or 1e-2 (composed, reference)
    batch: int = 512
    lr_schedule: str = "constant"  # or "cosine" (decay to 0 over the steps)
    ema_decay: float | None = None  # finetune mode: sample from an EMA of the fine-tuned weights
    eps: float = 1e-8  # clamp of Σw in the normaliser
    # conditional models: c vanishes when Z_c / max Z < tau_c (½: the energy removes most of its mass; docs)
    tau_c: float = 0.5
    fallback: str = "marginal"  # vanishing conditions learn the reweighted marginal, or "class:k"
    # share of each batch given to vanishing conditions (None: their pool share, 1/K each)
    vanishing_share: float | None = None
    keep_previous: bool = True  # multiply in the energies of earlier ContinualFlow requests
    pool_steps: int | None = None  # sampler steps for the pool (None: the model's own)
    transport_steps: int = 10  # composed mode: midpoint steps of the transport flow (reference: 10)
    seed: int = 0

    def __post_init__(self):
        check_bounds(
            "continualflow",
            lam=(self.lam, 0, None, "()"),
            pool=(self.pool, 2, None),
            steps=(self.steps, 1, None),
            batch=(self.batch, 1, None),
            tau_c=(self.tau_c, 0, 1, "[)"),
        )
        if self.vanishing_share is not None:
            check_bounds("continualflow", vanishing_share=(self.vanishing_share, 0, 1, "()"))
        check_schedule(self.lr_schedule, self.ema_decay)
        if self.fallback != "marginal" and not (self.fallback.startswith("class:") and self.fallback[6:].isdigit()):
            raise GenUnlearnError(f"bad fallback {self.fallback!r}: expected 'marginal' or 'class:K'")


def erfm_loss(per_sample: torch.Tensor, w: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Σ w·err / max(Σw, ε): the self-normalised energy-reweighted flow-matching loss."""
    return (w * per_sample).sum() / w.sum().clamp_min(eps)


def weighted_flow_loss(process, net, x1, w, cond=None, *, eps: float = 1e-8, **loss_kw) -> torch.Tensor:
    """The process's own per-sample loss, reweighted (equal weights give the plain mean)."""
    per_sample = process.loss(net, x1, cond, **loss_kw)
    return erfm_loss(per_sample, w.to(per_sample.device), eps)


def pool_weights(energies: list[tuple[float, Energy]], x: torch.Tensor) -> torch.Tensor:
    """w = Π_k σ(−λ_k F_k(x)), computed once, without gradient."""
    with torch.no_grad():
        w = torch.ones(x.shape[0], device=x.device)
        for lam, energy in energies:
            w = w * torch.sigmoid(-lam * energy(x))
    return w


@dataclass
class Pool:
    x: torch.Tensor
    w: torch.Tensor
    cond: torch.Tensor | None  # (M, A) conditions that produced each sample, or None


class ContinualFlow(Method):
    Config = ContinualFlowConfig

    def check(self, model, request) -> None:
        super().check(model, request)
        if model.process.name == "composed" and self.config.mode != "composed":
            raise GenUnlearnError("this model is a composed flow: unlearn it again with mode=composed")
        if self.config.mode == "composed" and model.conditional:
            raise GenUnlearnError("mode=composed supports unconditional models only; use mode=finetune")

    def unlearn(self, model, request, data, *, budget=None, callbacks=()):
        """Build the energy from ``request`` (the only stage that may read ``data``), then unlearn."""
        self.check(model, request)
        t0 = time.perf_counter()
        energy = energy_for_request(request, data, form=self.config.energy, task=model.info.get("task"))
        energy_wall = time.perf_counter() - t0
        return self.unlearn_energy(
            model, energy, budget=budget, callbacks=callbacks, energy_seconds=max(energy.seconds, energy_wall)
        )

    def unlearn_energy(self, model, energy: Energy, *, budget=None, callbacks=(), energy_seconds: float = 0.0):
        """Unlearn the region where ``energy`` is high; reads no data at all."""
        cfg = self.config
        t0 = time.perf_counter()
        history, restored = self._history_after(model, energy)
        energies = [(h["lam"], restore_energy(h["energy"])) for h in (history if restored else history[:-1])] + (
            [] if restored else [(cfg.lam, energy)]
        )
        source = self._base_stage(model) if cfg.mode == "composed" else model  # composed: pool from q0, kept intact
        if not energies:  # every energy restored: the base stage itself, exactly
            info = self.unlearned_info(
                model.info,
                steps=0,
                seconds=time.perf_counter() - t0 + energy_seconds,
                energy_info=energy.info,
                restored=energy.spec,
            )
            info["continualflow"] = {"energies": []}
            return source.with_net(source.net, process=source.process, info=info)
        pool = self.draw_pool(source, energies)
        pool_seconds = time.perf_counter() - t0
        stats = self._pool_stats(pool)
        steps = budget or cfg.steps
        if cfg.mode == "finetune":
            net, result = self._finetune(model, pool, steps, callbacks)
            process = model.process
        else:
            from genunlearn.processes.composed import ComposedFlow

            net, result = self._compose(source, pool, steps, callbacks)
            process = ComposedFlow(base=source.process, steps=cfg.transport_steps)
        seconds = time.perf_counter() - t0 + energy_seconds
        if restored:
            stats["restored"] = energy.spec
        info = self.unlearned_info(
            model.info,
            steps=steps,
            seconds=seconds,
            cost_seconds={
                "energy": round(energy_seconds, 3),
                "pool": round(pool_seconds, 3),
                "train": round(result.seconds, 3),
            },
            energy_info=energy.info,
            **stats,
        )
        info["continualflow"] = {"energies": history}  # model state: what later requests keep forgotten

        return model.with_net(net, process=process, info=info)

    def _history_after(self, model, energy: Energy) -> tuple[list[dict], bool]:
        """The energies in force after this request, and whether it restored one: −F_k at λ_k
        cancels an earlier F_k (both drop out); any other energy is added."""
        cfg = self.config
        history = list(model.info.get("continualflow", {}).get("energies", [])) if cfg.keep_previous else []
        plain = lambda spec: {k: v for k, v in spec.items() if k != "negate"}  # noqa: E731
        for k, h in enumerate(history):
            if (
                h["lam"] == cfg.lam
                and plain(h["energy"]) == plain(energy.spec)
                and bool(h["energy"].get("negate")) != bool(energy.spec.get("negate"))
            ):
                if cfg.mode != "composed":
                    raise GenUnlearnError(
                        "restoring an applied energy needs mode=composed: a fine-tuned model no longer holds the region, so its pool cannot bring it back"
                    )
                return history[:k] + history[k + 1 :], True
        return history + [{"lam": cfg.lam, "energy": energy.spec}], False

    @staticmethod
    def _base_stage(model):
        """A composed model's first stage (q0, which composed mode never changes); any other model itself."""
        while model.process.name == "composed":
            model = model.with_net(model.net.base, process=model.process.base)
        return model

    # --- pool ------------------------------------------------------------------------------------
    def draw_pool(self, model, energies: list[tuple[float, Energy]]) -> Pool:
        """M samples of the frozen current model (balanced per condition), weighted once."""
        cfg = self.config
        g = torch.Generator().manual_seed(cfg.seed)
        kw = {"steps": cfg.pool_steps} if cfg.pool_steps else {}
        cond = None
        if model.conditional:
            k = len(model.attributes[0].values)
            labels = torch.arange(k).repeat_interleave(math.ceil(cfg.pool / k))
            cond = model.cond_for_labels(labels)
            kw["guidance"] = 1.0  # q0(x|c) as the network models it: guidance applies once, when sampling later
        n = cfg.pool if cond is None else cond.shape[0]
        stage(
            f"continualflow: sampling a pool of {n} from the frozen model",
            "the samples the reweighted loss trains on; drawn once",
        )
        x = model.generate(
            n, cond, generator=g, **kw
        ).cpu()  # the model itself is never trained (a copy is); the pool lives with the data
        return Pool(x, pool_weights(energies, x), cond)

    def _pool_stats(self, pool: Pool) -> dict:
        w, m = pool.w, pool.w.shape[0]
        ess = float(w.sum() ** 2 / (w.pow(2).sum().clamp_min(1e-30)))
        stats = {"Z": float(w.mean()), "ess": ess, "ess_fraction": ess / m, "pool": m}
        if ess / m < ESS_WARN:
            warnings.warn(
                f"continualflow: effective sample size {ess:.0f} of {m} pool samples (< {ESS_WARN:.0%}); lower lam or enlarge the pool",
                stacklevel=3,
            )
        if pool.cond is not None:
            z, ratio, se = self._z_ratio_test(pool)
            vanishing = ratio < self.config.tau_c
            stats.update(
                Z_per_condition=z.tolist(),
                Z_ratio=ratio.tolist(),
                Z_ratio_se=se.tolist(),
                vanishing_conditions=vanishing.nonzero().squeeze(1).tolist(),
            )
            stage(
                f"continualflow: Z_c / max Z per condition {[round(r, 3) for r in ratio.tolist()]}; vanishing (< {self.config.tau_c}): {stats['vanishing_conditions']}",
                "conditions whose mass the energy mostly removes learn the fallback",
            )
            close = ((ratio - self.config.tau_c).abs() < 2 * se).nonzero().squeeze(1).tolist()
            if close:
                warnings.warn(
                    f"continualflow: conditions {close} have Z_c / max Z within 2 standard errors of {self.config.tau_c}; the pool is too small to tell forgotten from retained, enlarge it",
                    stacklevel=3,
                )
        return stats

    @staticmethod
    def _condition_z(pool: Pool) -> torch.Tensor:
        labels = pool.cond[:, 0]
        k = int(labels.max()) + 1
        return torch.zeros(k).index_add_(0, labels, pool.w) / torch.bincount(labels, minlength=k).clamp_min(1)

    @classmethod
    def _z_ratio_test(cls, pool: Pool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per condition: Z_c, Z_c / max Z (the share of its mass the target keeps, relative to the
        least-touched condition) and that ratio's standard error over the condition's pool items."""
        labels, z = pool.cond[:, 0], cls._condition_z(pool)
        n = torch.bincount(labels, minlength=z.shape[0]).clamp_min(2)
        var = torch.zeros_like(z).index_add_(0, labels, (pool.w - z[labels]).pow(2)) / (n - 1)
        top = z.max().clamp_min(1e-30)
        return z, z / top, (var / n).sqrt() / top

    def _vanishing(self, pool: Pool) -> torch.Tensor:
        return self._z_ratio_test(pool)[1] < self.config.tau_c

    # --- mode A: fine-tune in place -------------------------------------------------------------
    def _lr(self, model, default: float) -> float:
        if self.config.lr is not None:
            return self.config.lr
        base = model.info.get("recipe", {}).get("train", {}).get("lr")
        return base / 10 if base and self.config.mode == "finetune" else default

    def _finetune(self, model, pool: Pool, steps: int, callbacks):
        from genunlearn.processes.conditioning import null_cond
        from genunlearn.training import TrainConfig, train

        cfg, process = self.config, model.process
        net = copy.deepcopy(model.net)
        batch, m = cfg.batch, pool.x.shape[0]
        sources = self._condition_sources(pool) if pool.cond is not None else None
        p_null = getattr(process, "cond_dropout", 0.0)

        def step_loss(model_net, g):
            i = (
                torch.randint(m, (batch,), generator=g)
                if sources is None or cfg.vanishing_share is None
                else self._share_batch(sources, batch, g)
            )
            if sources is None:
                return weighted_flow_loss(
                    process, model_net, pool.x[i], pool.w[i], None, eps=cfg.eps, generator=g, drop_cond=False
                )
            cond = pool.cond[i]
            null = device.rand(batch, g, device=pool.cond.device) < p_null
            cond = torch.where(null[:, None], null_cond(model_net, batch, cond.device), cond)
            j = self._redirect(sources, pool.cond[i, 0], null, g)
            return weighted_flow_loss(
                process, model_net, pool.x[j], pool.w[j], cond, eps=cfg.eps, generator=g, drop_cond=False
            )

        tc = TrainConfig(
            steps=steps,
            lr=self._lr(model, 1e-4),
            optimizer="adam",
            grad_clip=1.0,
            lr_schedule=cfg.lr_schedule,
            ema_decay=cfg.ema_decay,
            seed=cfg.seed,
            log_every=max(1, min(50, steps)),
        )
        result = train(net, step_loss, tc, desc="continualflow", callbacks=callbacks, progress=False)
        return net, result

    def _condition_sources(self, pool: Pool) -> dict:
        """Where each condition's x1 come from: its own pool items, or (vanishing) the fallback."""
        labels = pool.cond[:, 0]
        vanishing = self._vanishing(pool)
        own = [(labels == c).nonzero().squeeze(1) for c in range(len(vanishing))]
        if self.config.fallback == "marginal":
            fallback = torch.arange(labels.shape[0])
        else:
            k = int(self.config.fallback[6:])
            if not 0 <= k < len(vanishing) or vanishing[k]:
                raise GenUnlearnError(f"fallback class {k} is not a retained condition of this model")
            fallback = own[k]
        return {"own": own, "vanishing": vanishing, "fallback": fallback}

    def _share_batch(self, sources: dict, batch: int, g) -> torch.Tensor:
        """Pool items with ``vanishing_share`` of the batch from vanishing conditions. Each condition
        keeps its own target; only how often the loss visits it changes (the forgotten conditions
        have the furthest to move, the retained ones are near their target already)."""
        own = sources["own"]
        groups = [
            torch.cat(
                [own[c] for c in range(len(own)) if sources["vanishing"][c] == v] or [torch.zeros(0, dtype=torch.long)]
            )
            for v in (True, False)
        ]
        if not len(groups[0]) or not len(groups[1]):
            return torch.cat(groups)[torch.randint(sum(map(len, groups)), (batch,), generator=g)]
        n_v = round(self.config.vanishing_share * batch)
        return torch.cat(
            [grp[torch.randint(len(grp), (n,), generator=g)] for grp, n in zip(groups, (n_v, batch - n_v))]
        )

    @staticmethod
    def _redirect(sources: dict, labels: torch.Tensor, null: torch.Tensor, g) -> torch.Tensor:
        """Pool indices of x1 per batch item: same-condition items, or the fallback set."""
        out = torch.empty(labels.shape[0], dtype=torch.long)
        to_fallback = null | sources["vanishing"][labels]
        fb = sources["fallback"]
        out[to_fallback] = fb[torch.randint(len(fb), (int(to_fallback.sum()),), generator=g)]
        for c, own in enumerate(sources["own"]):
            sel = (labels == c) & ~to_fallback
            out[sel] = own[torch.randint(len(own), (int(sel.sum()),), generator=g)]
        return out

    # --- mode B: composed flow ------------------------------------------------------------------
    def _compose(self, model, pool: Pool, steps: int, callbacks):
        from genunlearn.models import build_network, network_config
        from genunlearn.models.composed import ComposedNet
        from genunlearn.processes.flow_matching import FlowMatching
        from genunlearn.training import TrainConfig, train

        cfg = self.config
        torch.manual_seed(cfg.seed)
        flow_net = build_network({**network_config(model.net), "cond_vocab": []})
        transport, m = FlowMatching(solver="midpoint", steps=cfg.transport_steps), pool.x.shape[0]

        def step_loss(net, g):
            i = torch.randint(m, (cfg.batch,), generator=g)  # x0: pool draws
            j = torch.randint(m, (cfg.batch,), generator=g)  # x1: independent pool draws
            return weighted_flow_loss(
                transport, net, pool.x[j], pool.w[j], None, eps=cfg.eps, x0=pool.x[i], generator=g, drop_cond=False
            )

        tc = TrainConfig(
            steps=steps,
            lr=self._lr(model, 1e-2),
            optimizer="adam",
            grad_clip=None,
            lr_schedule=cfg.lr_schedule,
            seed=cfg.seed,
            log_every=max(1, min(50, steps)),
        )
        result = train(flow_net, step_loss, tc, desc="continualflow (composed)", callbacks=callbacks, progress=False)
        return ComposedNet.of(model.net, flow_net), result
