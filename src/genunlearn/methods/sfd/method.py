"""The SFD method: check the request, set up the distillation, run its two objectives in the shared
loop, record the run."""

from __future__ import annotations

import time

from genunlearn.errors import GenUnlearnError
from genunlearn.methods.base import Method
from genunlearn.methods.common import check_conditional, class_ids
from genunlearn.methods.lifecycle import split_snapshots
from genunlearn.methods.sfd.config import SFDConfig
from genunlearn.methods.sfd.distillation import Distillation
from genunlearn.processes.one_step import OneStep


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
