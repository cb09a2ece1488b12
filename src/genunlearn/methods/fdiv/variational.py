"""f-DMU's variational form (f-GAN): a small spectral-norm PatchGAN critic sees ε-maps (real = the
frozen anchor target, fake = the model's prediction; with ``critic_conditioning="xt_t"`` also x_t and a
t/T channel). The critic is an objective of the shared loop before the model (AdamW): ``critic_warmup``
critic-only updates first, then per step ``critic_steps`` critic updates, each on a fresh batch, and one
model update on the last of those batches (the loop hands it over: ``Objective(batch_of="critic")``)."""

from __future__ import annotations

import torch
from torch import nn

from genunlearn.methods import divergences
from genunlearn.methods.fdiv.config import FDivConfig
from genunlearn.training.loop import Objective, Optim


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


def variational(cfg: FDivConfig, model, net, frozen_target, batch):
    """The variational form: (the critic's objective, the model's loss against the critic); both
    losses take the batch the loop drew (``batch``) for the critic's update."""
    process = model.process
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
        return divergences.generator_loss(fgan, critic(critic_input(process.predict_eps(m, xt, t, c_target), xt, t)))

    optim = Optim(lr=cfg.critic_lr, optimizer="adamw", weight_decay=cfg.weight_decay, grad_clip=None)
    every, warmup = cfg.critic_steps, cfg.critic_warmup
    return Objective("critic", critic, critic_loss, optim, every=every, warmup_updates=warmup, batch=batch), loss
