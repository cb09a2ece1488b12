"""diffusers interop, as a user would do it: a class-conditional DDPM trained with diffusers alone
(``diffusers_train_ddpm.py``: attention blocks, cosine betas, a null class), unlearned by the
``genunlearn unlearn`` command on its pipeline folder (salun, sfd), loaded back with diffusers and
sampled with plain diffusers code (a DDIM loop with guidance for SalUn; one UNet call at the
recorded t* for SFD's generator), then judged by the judge genunlearn trains on the user's own data
file (the 16×16 digits the DDPM was trained on, ``--task digits16.npz``), at their native resolution.

Second table (``--sd-methods``): the Stable-Diffusion-format shapes pipeline (``genunlearn train --task
shapes --model sd``: CLIP tokenizer and text encoder, AutoencoderKL, UNet2DConditionModel) with the
concept "circle" erased towards "shape" by esd, concept_ablation and fdiv through ``genunlearn unlearn
--concept --anchor``, judged by ``genunlearn evaluate`` against the pipeline (erased-concept rate,
attribute preservation, FD to the base's samples) and, as a user would check it, by prompting the
unlearned folder through diffusers' own ``StableDiffusionPipeline`` ("a red circle", …) and counting
circles with the shapes judge.

Columns: forget rate (share of forget-prompt samples judged as the forgotten class; target ≤ 1 %),
retained accuracy (retained prompts judged as their class; target within 3 points of the original),
and the unlearning wall time. The judge's accuracy on the held-out split of that data is printed first.

    python benchmarks/diffusers_interop.py [--train-steps 2000] [--salun-steps 300] [--sfd-steps 200] [--methods salun,sfd] [--n 50] [--out runs/interop]
        [--sd-methods esd,concept_ablation,fdiv] [--sd-steps 200] [--sd-set params=conditioning --sd-set lr=1e-3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from diffusers_train_ddpm import ddim_sample  # noqa: E402  (the user's own diffusers code)

FORGET = 3


def genunlearn(*args: str, quiet: bool = False) -> float:
    """Run the CLI as a user would; returns its wall time (``quiet``: its printout is not shown)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "genunlearn", *args], check=True, stdout=subprocess.DEVNULL if quiet else None)
    return time.perf_counter() - t0


@torch.no_grad()
def one_step(folder: Path, labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """SFD's generator in plain diffusers: y = b_{t*} z, one UNet call, x0 from the prediction type."""
    from diffusers import DDPMScheduler, UNet2DModel

    record = json.loads((folder / "genunlearn.json").read_text())
    t_star = record["process"]["t_star"]
    unet = UNet2DModel.from_pretrained(folder / "unet").eval()
    ab = DDPMScheduler.from_pretrained(folder / "scheduler").alphas_cumprod[t_star]
    a, b = ab.sqrt(), (1 - ab).sqrt()
    size = unet.config.sample_size
    z = torch.randn((len(labels), unet.config.in_channels, size, size), generator=torch.Generator().manual_seed(seed))
    y = b * z
    out = unet(y, float(t_star), class_labels=labels).sample
    if record["process"]["prediction_type"] == "v_prediction":
        return (a * y - b * out).clamp(-1, 1)
    return ((y - b * out) / a).clamp(-1, 1)


def judged(judge, x: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(forget rate, retained accuracy) of samples ``x`` drawn for ``labels``."""
    pred = judge.predict(x)[:, 0]
    f = labels == FORGET
    return float((pred[f] == FORGET).float().mean()), float((pred[~f] == labels[~f]).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-steps", type=int, default=2000)
    ap.add_argument("--n", type=int, default=50, help="samples per class")
    ap.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance of the DDIM loop")
    ap.add_argument("--ddim-steps", type=int, default=25)
    ap.add_argument("--salun-steps", type=int, default=300, help="SalUn's default budget")
    ap.add_argument("--sfd-steps", type=int, default=200, help="SFD iterations (its default 1000 is ~1 h for this UNet on 2 CPU cores)")
    ap.add_argument("--methods", default="salun,sfd", help="which of salun, sfd to run")
    ap.add_argument("--sd-methods", default="esd,concept_ablation,fdiv", help="methods for the Stable-Diffusion-format table ('' skips it)")
    ap.add_argument("--sd-steps", type=int, default=200, help="step budget of each SD-format method")
    ap.add_argument("--sd-set", action="append", default=[], help="method option key=value for every SD-format method (e.g. params=conditioning: cross-attention K/V only, ESD-x)")
    ap.add_argument("--out", default="runs/interop")
    args = ap.parse_args()
    methods = [m for m in ("salun", "sfd") if m in args.methods.split(",")]
    if methods:
        unet_table(args, methods)
    sd_methods = [m for m in args.sd_methods.split(",") if m]
    if sd_methods:
        sd_table(args, sd_methods)


def unet_table(args, methods: list[str]) -> None:
    from diffusers import UNet2DModel

    from genunlearn.eval.judge import load_judge

    out = Path(args.out)
    pipe, data = out / "ddpm_pipe", out / "digits16.npz"
    if not (pipe / "model_index.json").is_file():
        subprocess.run([sys.executable, str(HERE / "diffusers_train_ddpm.py"), "--out", str(pipe), "--steps", str(args.train_steps), "--data-out", str(data)], check=True)
    times = {}
    for method, steps in ((m, {"salun": args.salun_steps, "sfd": args.sfd_steps}[m]) for m in methods):
        target = out / method
        if not (target / "genunlearn.json").is_file():
            times[method] = genunlearn("unlearn", str(pipe), "--method", method, "--forget", f"classes={FORGET}", "--task", str(data), "--steps", str(steps), "--out", str(target))
        else:
            times[method] = json.loads((target / "genunlearn.json").read_text())["info"]["unlearn"]["seconds"]

    judge = load_judge(str(data.resolve()), verbose=False)
    print(f"\njudge (trained on {data.name}, 16×16) accuracy on its held-out split: {next(iter(judge.test_accuracy.values())):.1%}")
    labels = torch.arange(10).repeat_interleave(args.n)
    scheduler_config = json.loads((pipe / "scheduler" / "scheduler_config.json").read_text())
    rows = {}
    for name, folder in (("original", pipe), *((("salun", out / "salun"),) if "salun" in methods else ())):
        unet = UNet2DModel.from_pretrained(folder / "unet").eval()
        x = ddim_sample(unet, scheduler_config, labels, steps=args.ddim_steps, guidance=args.guidance)
        rows[name] = (*judged(judge, x, labels), f"{args.ddim_steps}×2")
    if "sfd" in methods:
        rows["sfd"] = (*judged(judge, one_step(out / "sfd", labels), labels), "1")
    print(f"\nclass-conditional DDPM (diffusers, UNet2DModel with attention, squaredcos_cap_v2), forget class {FORGET}; {args.n} samples per class, DDIM guidance {args.guidance}")
    print(f"{'model':<10} {'forget rate':>12} {'retained acc':>13} {'Δ retained (pts)':>17} {'NFE':>6} {'unlearn s':>10}")
    base_acc = rows["original"][1]
    for name, (forget, acc, nfe) in rows.items():
        t = f"{times[name]:.0f}" if name in times else "–"
        print(f"{name:<10} {forget:>12.1%} {acc:>13.1%} {100 * (acc - base_acc):>+17.1f} {nfe:>6} {t:>10}")



CONCEPT, ANCHOR = "circle", "shape"


@torch.no_grad()
def pipeline_circle_rate(folder: Path, n: int, judge) -> float:
    """Share of circles among images diffusers' own StableDiffusionPipeline draws for the circle prompts."""
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    prompts = [f"a {c} {CONCEPT}" for c in ("red", "green", "blue", "yellow")] + [f"a {CONCEPT}"]
    images = pipe([p for p in prompts for _ in range(n)], height=16, width=16, num_inference_steps=25, guidance_scale=3.0, output_type="pt", generator=torch.Generator().manual_seed(0)).images
    pred = judge.predict(images * 2 - 1)[:, 0]
    return float((pred == 0).float().mean())  # shape id 0 = circle


def sd_table(args, methods: list[str]) -> None:
    from genunlearn.eval.judge import load_judge

    out = Path(args.out)
    pipe = out / "sd_pipe"
    if not (pipe / "model_index.json").is_file():
        genunlearn("train", "--task", "shapes", "--model", "sd", "--out", str(pipe))
    judge = load_judge("shapes", verbose=False)
    forget = f"concept={CONCEPT};anchor={ANCHOR}"
    rows = {"original": (json.loads((pipe / "genunlearn.json").read_text())["info"]["train_seconds"], pipe)}
    for method in methods:
        target = out / f"sd_{method}"
        if not (target / "genunlearn.json").is_file():
            sets = [a for kv in args.sd_set for a in ("--set", kv)]
            genunlearn("unlearn", str(pipe), "--method", method, "--concept", CONCEPT, "--anchor", ANCHOR, "--steps", str(args.sd_steps), *sets, "--out", str(target))
        rows[method] = (json.loads((target / "genunlearn.json").read_text())["info"]["unlearn"]["seconds"], target)
    print(f"\nStable-Diffusion-format shapes pipeline (CLIP text encoder, AutoencoderKL, UNet2DConditionModel), erase '{CONCEPT}' → '{ANCHOR}', {args.sd_steps} steps each" + (f", {' '.join(args.sd_set)}" if args.sd_set else ", method defaults"))
    print(f"{'model':<17} {'erased rate':>12} {'attrs kept':>11} {'FD vs base':>11} {'circles (diffusers)':>20} {'seconds':>8}")
    for name, (seconds, folder) in rows.items():
        genunlearn("evaluate", str(folder), "--forget", forget, "--reference", str(pipe), "--n-per-prompt", str(args.n), "--out", str(out / f"sd_{name}_metrics.json"), quiet=True)
        m = json.loads((out / f"sd_{name}_metrics.json").read_text())
        circles = pipeline_circle_rate(folder, args.n // 5 or 1, judge)
        label = "train" if name == "original" else "unlearn"
        print(f"{name:<17} {m['erased_rate']:>12.1%} {m['attribute_preservation']:>11.1%} {m['fd_vs_base']:>11.2f} {circles:>20.1%} {seconds:>7.0f}s ({label})")


if __name__ == "__main__":
    main()
