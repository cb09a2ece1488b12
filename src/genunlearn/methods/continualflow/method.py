"""The ContinualFlow method: build the energy, draw and weigh the pool, train one of the two modes,
record what later requests keep forgotten (``info["continualflow"]["energies"]``).

Conditional models (project rule): a condition is "vanishing" (a forgotten class) when the energy
removes the majority of its mass, Z_c / max Z < ``tau_c`` = ½ (a Z-ratio test, logged per condition
with its standard error); it and the null condition (with the base's dropout probability) learn the
reweighted marginal from the whole pool (or anchor class k with ``fallback="class:k"``).
"""

from __future__ import annotations

import time

from genunlearn.errors import GenUnlearnError
from genunlearn.forget.energy import Energy, energy_for_request, restore_energy
from genunlearn.methods.base import Method
from genunlearn.methods.continualflow.config import ContinualFlowConfig
from genunlearn.methods.continualflow.finetune import finetune
from genunlearn.methods.continualflow.history import base_stage, energies_after
from genunlearn.methods.continualflow.pool import draw_pool, pool_stats
from genunlearn.methods.continualflow.transport import transport


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
        cfg, composed = self.config, self.config.mode == "composed"
        t0 = time.perf_counter()
        history, restored = energies_after(model, cfg.lam, energy, keep_previous=cfg.keep_previous, composed=composed)
        energies = [(h["lam"], restore_energy(h["energy"])) for h in (history if restored else history[:-1])] + (
            [] if restored else [(cfg.lam, energy)]
        )
        source = base_stage(model) if composed else model  # composed: pool from q0, kept intact
        if not energies:  # every energy restored: the base stage itself, exactly
            seconds = time.perf_counter() - t0 + energy_seconds
            info = self.unlearned_info(
                model.info, steps=0, seconds=seconds, energy_info=energy.info, restored=energy.spec
            )
            info["continualflow"] = {"energies": []}
            return source.with_net(source.net, process=source.process, info=info)
        pool = draw_pool(source, energies, cfg.pool, cfg.seed, cfg.pool_steps)
        pool_seconds = time.perf_counter() - t0
        stats = pool_stats(pool, cfg.tau_c)
        steps = budget or cfg.steps
        if composed:
            from genunlearn.processes.composed import ComposedFlow

            net, result = transport(source, pool, cfg, steps, self._lr(model, 1e-2), callbacks)
            process = ComposedFlow(base=source.process, steps=cfg.transport_steps)
        else:
            net, result = finetune(model, pool, cfg, steps, self._lr(model, 1e-4), callbacks)
            process = model.process
        if restored:
            stats["restored"] = energy.spec
        cost = {"energy": energy_seconds, "pool": pool_seconds, "train": result.seconds}
        info = self.unlearned_info(
            model.info,
            steps=steps,
            seconds=time.perf_counter() - t0 + energy_seconds,
            cost_seconds={k: round(v, 3) for k, v in cost.items()},
            energy_info=energy.info,
            **stats,
        )
        info["continualflow"] = {"energies": history}  # model state: what later requests keep forgotten
        return model.with_net(net, process=process, info=info)

    def _lr(self, model, default: float) -> float:
        """The configured lr; else the base recipe's lr / 10 in finetune mode; else ``default``."""
        if self.config.lr is not None:
            return self.config.lr
        base = model.info.get("recipe", {}).get("train", {}).get("lr")
        return base / 10 if base and self.config.mode == "finetune" else default
