"""Train a class-conditional DDPM on scikit-learn's digits with diffusers alone (no genunlearn
imports): a UNet2DModel with attention blocks, a null class for classifier-free guidance and a
cosine (``squaredcos_cap_v2``) beta schedule, saved as a ``DDPMPipeline`` folder — the kind of
model a user brings to genunlearn. Also the plain diffusers DDIM loop that samples it.

    python benchmarks/diffusers_train_ddpm.py --out runs/interop/ddpm_pipe [--steps 2000] [--data-out digits16.npz]

``--data-out`` also writes the training images as the user's own data file (an ``.npz`` of uint8
images and labels), which is what the user then names with ``genunlearn ... --task``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel
from sklearn.datasets import load_digits

NUM_CLASSES = 10  # class id 10 is the null class (condition dropped)


def digits_16px() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,797 digits in [-1, 1], upsampled to 16×16 (UNet2DModel halves the side per block)."""
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16 * 2 - 1
    return torch.nn.functional.interpolate(x, size=16, mode="bilinear", align_corners=False), torch.tensor(d.target)


def build_unet() -> UNet2DModel:
    return UNet2DModel(
        sample_size=16,
        in_channels=1,
        out_channels=1,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        norm_num_groups=8,
        num_class_embeds=NUM_CLASSES + 1,
    )


def train(
    steps: int, seed: int = 0, batch: int = 128, lr: float = 2e-3, p_uncond: float = 0.1, ema_decay: float = 0.995
) -> tuple[UNet2DModel, DDPMScheduler]:
    """EMA horizon 1 / (1 − decay) = 200 steps, a tenth of the default run: the initial weights keep
    0.995^2000 < 0.01 % of the average (at 0.999 over 1,000 steps they kept 37 %, and the samples
    showed it)."""
    torch.manual_seed(seed)
    x, y = digits_16px()
    unet = build_unet()
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon", clip_sample=False
    )
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    ema = torch.optim.swa_utils.AveragedModel(unet, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(ema_decay))
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for step in range(steps):
        i = torch.randint(len(x), (batch,), generator=g)
        labels = torch.where(torch.rand(batch, generator=g) < p_uncond, NUM_CLASSES, y[i])
        noise = torch.randn(x[i].shape, generator=g)
        t = torch.randint(0, 1000, (batch,), generator=g)
        pred = unet(scheduler.add_noise(x[i], noise, t), t, class_labels=labels).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        sched.step()
        ema.update_parameters(unet)
        if step % 250 == 0 or step == steps - 1:
            print(f"step {step:>5} loss {loss.item():.4f} ({time.perf_counter() - t0:.0f}s)", flush=True)
    unet.load_state_dict(ema.module.state_dict())
    return unet.eval(), scheduler


@torch.no_grad()
def ddim_sample(
    unet: UNet2DModel,
    scheduler_config: dict,
    labels: torch.Tensor,
    *,
    steps: int = 50,
    guidance: float = 2.0,
    seed: int = 0,
) -> torch.Tensor:
    """A plain diffusers DDIM loop with classifier-free guidance (class id 10 = null)."""
    sched = DDIMScheduler.from_config(scheduler_config)
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    size = unet.config.sample_size
    x = torch.randn((len(labels), unet.config.in_channels, size, size), generator=g)
    null = torch.full_like(labels, unet.config.num_class_embeds - 1)
    for t in sched.timesteps:
        out = unet(torch.cat([x, x]), t, class_labels=torch.cat([labels, null])).sample
        cond, uncond = out.chunk(2)
        x = sched.step(uncond + guidance * (cond - uncond), t, x, eta=0.0).prev_sample
    return x.clamp(-1, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--data-out", default=None, help="also write the training images as an .npz (uint8 images, labels)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.data_out:
        x, y = digits_16px()
        images = ((x[:, 0] + 1) / 2 * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        Path(args.data_out).parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.data_out, images=images, labels=y.numpy())
    unet, scheduler = train(args.steps, args.seed)
    DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(args.out)
    x = ddim_sample(unet, scheduler.config, torch.arange(10).repeat(4), steps=20)
    print(f"saved {args.out}; sample range {x.min():.2f}..{x.max():.2f}, mean {np.round(x.mean().item(), 3)}")


if __name__ == "__main__":
    main()
