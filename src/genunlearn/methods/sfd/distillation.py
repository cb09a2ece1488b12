"""One SFD run: three copies of the teacher network and the two losses the loop alternates."""

from __future__ import annotations

import copy

import torch

from genunlearn import device
from genunlearn.methods.common import copy_net, set_dropout
from genunlearn.methods.sfd.config import SFDConfig
from genunlearn.methods.sfd.loss import sid_terms
from genunlearn.methods.sfd.overrides import Overrides


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
