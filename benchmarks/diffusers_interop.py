"""diffusers interop, as a user would do it: a class-conditional DDPM trained with diffusers alone
(``diffusers_train_ddpm.py``: attention blocks, cosine betas, a null class), unlearned by the
``genunlearn unlearn`` command on its pipeline folder (salun, sfd), loaded back with diffusers and
sampled with plain diffusers code (a DDIM loop with guidance for SalUn; one UNet call at the
recorded t* for SFD's generator), then judged by the judge genunlearn trains on the user's own data
file (the 16×16 digits the DDPM was trained on, ``--task digits16.npz``), at their native resolution.

Second table (``--sd-methods``): the Stable-Diffusion-format shapes pipeline (``genunlearn train --task
shapes --model sd``: CLIP tokenizer and text encoder, AutoencoderKL, UNet2DConditionModel) with the
concept "circle" erased towards "shape" by esd, concept_ablation and fdiv through ``genunlearn unlearn
--concept --anchor``. Each method gets the same budget: ``--sd-steps`` steps at each learning rate of
``--sd-lrs``, judged on the val split (what ``genunlearn evaluate --split val`` reports); the rate the
rule in ``choose`` picks is rerun with ``--sd-seeds`` fresh seeds and judged on test: the concept
still shown (share of the circle prompts' samples judged circles), attribute preservation, FD to the base's samples and, as a user would check it, the share of
circles the unlearned folder draws through diffusers' own ``StableDiffusionPipeline`` ("a red
circle", …) by the shapes judge.

Columns of the first table: class still drawn (share of forget-class samples judged as the
forgotten class; target ≤ 1 %), retained accuracy (retained classes judged as their class; target within 3
points of the original), and the unlearning wall time. The judge's accuracy on the held-out split
of that data is printed first. Rows are cached in ``--out`` (a rerun resumes).

    python benchmarks/diffusers_interop.py [--train-steps 2000] [--salun-steps 300] [--sfd-steps 200] [--methods salun,sfd] [--seeds 3] [--n 100] [--out runs/interop]
        [--sd-methods esd,concept_ablation,fdiv] [--sd-steps 200] [--sd-lrs 1e-4,3e-4,1e-3] [--sd-seeds 3] [--sd-n 40] [--sd-set params=conditioning]
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

from common import Rows, fmt_mean_sd, pick_setting, record_pick  # noqa: E402
from diffusers_train_ddpm import ddim_sample  # noqa: E402  (the user's own diffusers code)

FORGET = 3


def genunlearn(*args: str, quiet: bool = False) -> float:
    """Run the CLI as a user would; returns its wall time (``quiet``: its printout is shown only if it fails)."""
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "genunlearn", *args], capture_output=quiet, text=True)
    if run.returncode:
        sys.exit(f"genunlearn {' '.join(args)} failed:\n{run.stdout or ''}{run.stderr or ''}")
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
    """(forgotten class still drawn, retained accuracy) of samples ``x`` drawn for ``labels``."""
    pred = judge.predict(x)[:, 0]
    f = labels == FORGET
    return float((pred[f] == FORGET).float().mean()), float((pred[~f] == labels[~f]).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-steps", type=int, default=2000)
    ap.add_argument("--n", type=int, default=100, help="samples per class (UNet2DModel table)")
    ap.add_argument("--seeds", type=int, default=3, help="unlearning seeds per method (UNet2DModel table)")
    ap.add_argument("--sd-n", type=int, default=40, help="samples per prompt (SD-format table)")
    ap.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance of the DDIM loop")
    ap.add_argument("--ddim-steps", type=int, default=25)
    ap.add_argument("--salun-steps", type=int, default=300, help="SalUn's default budget")
    ap.add_argument(
        "--sfd-steps",
        type=int,
        default=200,
        help="SFD iterations (its default 1000 is ~1 h for this UNet on 2 CPU cores)",
    )
    ap.add_argument("--methods", default="salun,sfd", help="which of salun, sfd to run")
    ap.add_argument(
        "--sd-methods",
        default="esd,concept_ablation,fdiv",
        help="methods for the Stable-Diffusion-format table ('' skips it)",
    )
    ap.add_argument("--sd-steps", type=int, default=200, help="step budget of each SD-format method")
    ap.add_argument(
        "--sd-lrs", default="1e-4,3e-4,1e-3", help="learning rates every SD-format method is tuned over (on val)"
    )
    ap.add_argument(
        "--sd-seeds", type=int, default=3, help="unlearning seeds reported on test at the chosen learning rate"
    )
    ap.add_argument(
        "--sd-set",
        action="append",
        default=[],
        help="method option key=value for every SD-format method (e.g. params=conditioning: cross-attention K/V only, ESD-x)",
    )
    ap.add_argument("--out", default="runs/interop")
    args = ap.parse_args()
    methods = [m for m in ("salun", "sfd") if m in args.methods.split(",")]
    if methods:
        unet_table(args, methods)
    sd_methods = [m for m in args.sd_methods.split(",") if m]
    if sd_methods:
        sd_table(args, sd_methods)


def unet_table(args, methods: list[str]) -> None:
    """SalUn and SFD at their budgets with unlearning seeds 0..``--seeds``−1 (each judged on the same
    seeded samples), against the original; mean ± sample std over seeds."""
    from diffusers import UNet2DModel

    from genunlearn.eval.judge import load_judge

    out = Path(args.out)
    pipe, data = out / "ddpm_pipe", out / "digits16.npz"
    if not (pipe / "model_index.json").is_file():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "diffusers_train_ddpm.py"),
                "--out",
                str(pipe),
                "--steps",
                str(args.train_steps),
                "--data-out",
                str(data),
            ],
            check=True,
        )

    def unlearned(method: str, seed: int) -> Path:
        target = out / f"{method}_seed{seed}"
        if not (target / "genunlearn.json").is_file():
            steps = {"salun": args.salun_steps, "sfd": args.sfd_steps}[method]
            genunlearn(
                "unlearn",
                str(pipe),
                "--method",
                method,
                "--forget",
                f"classes={FORGET}",
                "--task",
                str(data),
                "--steps",
                str(steps),
                "--set",
                f"seed={seed}",
                "--out",
                str(target),
            )
        return target

    folders = {m: [unlearned(m, s) for s in range(args.seeds)] for m in methods}
    judge = load_judge(str(data.resolve()), verbose=False)
    print(
        f"\njudge (trained on {data.name}, 16×16) accuracy on its held-out split: {next(iter(judge.test_accuracy.values())):.1%}"
    )
    labels = torch.arange(10).repeat_interleave(args.n)
    scheduler_config = json.loads((pipe / "scheduler" / "scheduler_config.json").read_text())

    def ddim(folder: Path) -> tuple[float, float]:
        unet = UNet2DModel.from_pretrained(folder / "unet").eval()
        return judged(
            judge, ddim_sample(unet, scheduler_config, labels, steps=args.ddim_steps, guidance=args.guidance), labels
        )

    base_forget, base_acc = ddim(pipe)
    print(
        f"\nclass-conditional DDPM (diffusers, UNet2DModel with attention, squaredcos_cap_v2), forget class {FORGET}; {args.n} samples per class, DDIM guidance {args.guidance}; unlearning seeds 0–{args.seeds - 1}, mean ± sample std"
    )
    print(
        f"{'model':<10} {'still drawn %':>14} {'retained acc %':>15} {'Δ retained (pts)':>17} {'NFE':>6} {'unlearn s':>13}"
    )
    print(
        f"{'original':<10} {100 * base_forget:>14.1f} {100 * base_acc:>15.1f} {0:>+17.1f} {f'{args.ddim_steps}×2':>6} {'–':>13}"
    )
    for method in methods:
        scores = [ddim(f) if method == "salun" else judged(judge, one_step(f, labels), labels) for f in folders[method]]
        seconds = [
            json.loads((f / "genunlearn.json").read_text())["info"]["unlearn"]["seconds"] for f in folders[method]
        ]
        forget, acc = (fmt_mean_sd([100 * s[i] for s in scores]) for i in (0, 1))
        delta = fmt_mean_sd([100 * (s[1] - base_acc) for s in scores])
        nfe = f"{args.ddim_steps}×2" if method == "salun" else "1"
        print(f"{method:<10} {forget:>14} {acc:>15} {delta:>17} {nfe:>6} {fmt_mean_sd(seconds):>13}")


CONCEPT, ANCHOR = "circle", "shape"
VAL_SEED = 1  # sampling seed of the validation judgement; the test judgement samples with seed 0
KEEP_ATTRIBUTES = 0.9  # selection rule: attribute preservation on val at least this,
KEPT_DROP_POINTS = 5.0  # each attribute's accuracy on the prompts without the concept down by at most this,
FD_FLOOR_RATIO = 2.0  # and FD to the base's samples at most this times the base's own (base vs base)


@torch.no_grad()
def pipeline_circle_rate(folder: Path, n: int, judge) -> float:
    """Share of circles among images diffusers' own StableDiffusionPipeline draws for the circle prompts."""
    from diffusers import DiffusionPipeline
    from diffusers.utils import logging

    from genunlearn.interop.diffusers.folders import quiet

    logging.disable_progress_bar()
    with quiet():
        pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    prompts = [f"a {c} {CONCEPT}" for c in ("red", "green", "blue", "yellow")] + [f"a {CONCEPT}"]
    images = pipe(
        [p for p in prompts for _ in range(n)],
        height=16,
        width=16,
        num_inference_steps=25,
        guidance_scale=3.0,
        output_type="pt",
        generator=torch.Generator().manual_seed(0),
    ).images
    pred = judge.predict(images * 2 - 1)[:, 0]
    return float((pred == 0).float().mean())  # shape id 0 = circle


def kept_drop(m: dict) -> float:
    """The largest drop, in points against the base, of any attribute's accuracy on the prompts without the concept."""
    return max(-v for k, v in m.items() if k.endswith("_accuracy_delta_points"))


def harmless(m: dict) -> bool:
    """Within the rule's limits on what else the erasure may change (judged on val)."""
    return (
        m["attribute_preservation"] >= KEEP_ATTRIBUTES
        and kept_drop(m) <= KEPT_DROP_POINTS
        and m["fd_vs_base"] <= FD_FLOOR_RATIO * m["fd_vs_base_floor"]
    )


GAP_TIMES = (100, 300, 500, 700, 900)


@torch.no_grad()
def eps_gaps(base, models: dict[str, object], n_per_prompt: int = 8) -> dict[str, list[float]]:
    """What the closed-form objectives minimise, measured per noise level: the mean squared gap
    between each model's noise prediction for the concept prompts and the base's for the paired
    anchor prompts, on noised anchor samples of the base, as a share of the base's own gap (1: nothing
    closed, 0: the concept prompts predict what the anchor prompts do)."""
    from genunlearn.methods.fdiv import make_anchor_pool, prompt_pairs

    pairs = prompt_pairs(base.attributes, CONCEPT, ANCHOR)
    pool = make_anchor_pool(base, pairs, n_per_prompt, steps=25, guidance=3.0, seed=VAL_SEED)
    process, out = base.process, {}
    for name, model in {"original": base, **models}.items():
        gaps = []
        for step in GAP_TIMES:
            xt, t, _, _ = process.corrupt(
                pool.x, torch.Generator().manual_seed(step), t=torch.full((len(pool.x),), step)
            )
            anchor = process.predict_eps(base.net.eval(), xt, t, pool.anchor)
            gaps.append(float(((process.predict_eps(model.net.eval(), xt, t, pool.target) - anchor) ** 2).mean()))
        out[name] = gaps
    return {name: [g / b for g, b in zip(gaps, out["original"])] for name, gaps in out.items()}


def choose(val: dict[str, dict]) -> str:
    """The selection rule, fixed before the runs: the lowest concept still shown on val among the
    ``harmless`` settings (ties: lower FD vs base); if none is, the one with the lowest FD vs base."""
    return pick_setting(
        val,
        lambda k: (val[k]["concept_still_shown"], val[k]["fd_vs_base"]),
        (lambda k: harmless(val[k]),),
        fallback=lambda k: val[k]["fd_vs_base"],
    )


def sd_table(args, methods: list[str]) -> None:
    """Every method gets the same budget: ``--sd-steps`` steps at each learning rate of ``--sd-lrs``
    (unlearning seed 0), judged on the val split with sampling seed VAL_SEED; the chosen rate is
    then rerun with unlearning seeds 1..``--sd-seeds`` and judged on test (sampling seed 0)."""
    import genunlearn as gu
    from genunlearn.eval.judge import load_judge
    from genunlearn.families import get_family

    out = Path(args.out)
    pipe = out / "sd_pipe"
    if not (pipe / "model_index.json").is_file():
        genunlearn("train", "--task", "shapes", "--model", "sd", "--out", str(pipe))
    judge = load_judge("shapes", verbose=False)
    request = gu.request(f"concept={CONCEPT};anchor={ANCHOR}")
    base = gu.load(pipe)
    family = get_family("generative")
    judges = {}

    def judged(folder: Path, split: str) -> dict:
        if split not in judges:  # base samples and real references, built once per split
            judges[split] = family.evaluator(
                "shapes",
                request,
                reference=base,
                n_per_prompt=args.sd_n,
                seed=VAL_SEED if split == "val" else 0,
                split=split,
                progress=False,
            )
        return judges[split](gu.load(folder))

    def unlearned(method: str, lr: str, seed: int) -> Path:
        target = out / f"sd_{method}_{args.sd_steps}steps{setting}_lr{lr}_seed{seed}"
        if not (target / "genunlearn.json").is_file():
            sets = [a for kv in (*args.sd_set, f"lr={lr}", f"seed={seed}") for a in ("--set", kv)]
            genunlearn(
                "unlearn",
                str(pipe),
                "--method",
                method,
                "--concept",
                CONCEPT,
                "--anchor",
                ANCHOR,
                "--steps",
                str(args.sd_steps),
                *sets,
                "--out",
                str(target),
                quiet=True,
            )
        return target

    def seconds(folder: Path) -> float:
        return json.loads((folder / "genunlearn.json").read_text())["info"]["unlearn"]["seconds"]

    setting = "".join("_" + kv for kv in args.sd_set)  # names the runs and their rows
    cache = Rows(out / f"sd_rows_{args.sd_steps}steps{setting}.json")
    lrs = args.sd_lrs.split(",")
    seeds = range(1, args.sd_seeds + 1)
    setup = f"erase '{CONCEPT}' → '{ANCHOR}', {args.sd_steps} steps" + (
        f", {' '.join(args.sd_set)}" if args.sd_set else ""
    )
    print(
        f"\nStable-Diffusion-format shapes pipeline (CLIP text encoder, AutoencoderKL, UNet2DConditionModel), {setup}"
    )
    print(
        f"tuning on val (unlearning seed 0, sampling seed {VAL_SEED}, {args.sd_n} samples per prompt); rule: lowest concept still shown with attributes kept ≥ {KEEP_ATTRIBUTES:.0%}, "
        f"kept prompts' attribute accuracy down ≤ {KEPT_DROP_POINTS:g} points, FD vs base ≤ {FD_FLOOR_RATIO:g}× base's own (else the lowest FD)"
    )
    print(
        f"{'method':<17} {'lr':>7} {'still shown':>12} {'attrs kept':>11} {'kept drop (pts)':>16} {'FD vs base':>11} {'floor':>6} {'seconds':>8}"
    )
    chosen = {}
    for method in methods:
        val = {
            lr: cache.get(
                f"val/{method}/{lr}",
                lambda: {**judged(unlearned(method, lr, 0), "val"), "seconds": seconds(unlearned(method, lr, 0))},
            )
            for lr in lrs
        }
        chosen[method] = choose(val)
        if not args.sd_set:  # the plain grid (no --sd-set): its pick is the method's default for SD-layout pipelines
            record_pick(
                "sd",
                method,
                {"lr": float(chosen[method]), "steps": args.sd_steps},
                "benchmarks/diffusers_interop.py (SD-format shapes, circle -> shape)",
            )
        for lr, m in val.items():
            mark = " ←" if lr == chosen[method] else ""
            print(
                f"{method:<17} {lr:>7} {m['concept_still_shown']:>12.1%} {m['attribute_preservation']:>11.1%} {kept_drop(m):>16.1f} {m['fd_vs_base']:>11.2f} {m['fd_vs_base_floor']:>6.2f} {m['seconds']:>7.0f}s{mark}"
            )

    def test_row(folder: Path) -> dict:
        m = judged(folder, "test")
        return {
            **m,
            "kept_drop_points": kept_drop(m),
            "circles_diffusers": pipeline_circle_rate(folder, max(1, args.sd_n // 5), judge),
        }

    print(
        f"\nreported on test (sampling seed 0, {args.sd_n} samples per prompt), unlearning seeds {seeds.start}–{seeds.stop - 1} at the chosen lr; mean ± sample std"
    )
    print(
        f"{'model':<17} {'lr':>7} {'still shown %':>15} {'attrs kept %':>15} {'kept drop (pts)':>16} {'FD vs base':>13} {'circles (diffusers) %':>22} {'seconds':>16}"
    )
    base_row = cache.get(
        "test/original",
        lambda: {
            **test_row(pipe),
            "seconds": json.loads((pipe / "genunlearn.json").read_text())["info"]["train_seconds"],
        },
    )
    print(
        f"{'original':<17} {'–':>7} {100 * base_row['concept_still_shown']:>15.1f} {100 * base_row['attribute_preservation']:>15.1f} {base_row['kept_drop_points']:>16.1f} {base_row['fd_vs_base']:>13.2f} {100 * base_row['circles_diffusers']:>22.1f} {base_row['seconds']:>9.0f} (train)"
    )
    percent = ("concept_still_shown", "attribute_preservation", "circles_diffusers")
    for method in methods:
        lr = chosen[method]
        rows = [
            cache.get(
                f"test/{method}/{lr}/{s}",
                lambda s=s: {**test_row(unlearned(method, lr, s)), "seconds": seconds(unlearned(method, lr, s))},
            )
            for s in seeds
        ]
        col = {
            k: fmt_mean_sd([(100 if k in percent else 1) * r[k] for r in rows])
            for k in (*percent, "kept_drop_points", "fd_vs_base", "seconds")
        }
        print(
            f"{method:<17} {lr:>7} {col['concept_still_shown']:>15} {col['attribute_preservation']:>15} {col['kept_drop_points']:>16} {col['fd_vs_base']:>13} {col['circles_diffusers']:>22} {col['seconds']:>16}"
        )
    print(f"(FD vs base of the base itself, a second draw: {base_row['fd_vs_base_floor']:.2f})")
    gaps = eps_gaps(base, {m: gu.load(unlearned(m, chosen[m], seeds.start)) for m in methods})
    print(
        f"\nnoise-prediction gap, concept prompt vs the base's anchor prompt, as a share of the base's gap (seed {seeds.start} of each method)"
    )
    print(f"{'model':<17} " + " ".join(f"{f't={t}':>7}" for t in GAP_TIMES))
    for name, row in gaps.items():
        print(f"{name:<17} " + " ".join(f"{g:>7.2f}" for g in row))


if __name__ == "__main__":
    main()
