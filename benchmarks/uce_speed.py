"""How long UCE (and RECE) take to erase 1, 5 and 10 concepts from the Stable-Diffusion-format shapes
pipeline (``genunlearn train --task shapes --model sd``), through the Python API as a user calls it:
copy the network, encode the prompts with the pipeline's tokenizer and text encoder, one float64
solve, one low-rank update per cross-attention key/value projection. The target: 10 concepts in ≤ 2 s on 2
CPU cores. Times are the median of ``--repeats`` runs after one warm-up.

Second table (``--sd15``): the closed-form core alone at Stable Diffusion v1.5's sizes (16
cross-attention blocks, to_k / to_v of 320, 640 and 1280 outputs reading 768-dim CLIP states, random
weights and random embeddings; no text encoder), to show the solve does not grow with the UNet.

    python benchmarks/uce_speed.py [--model FOLDER | --train-steps 2] [--threads 2] [--repeats 5] [--sd15] 2>/dev/null

(stderr carries one progress line per run.)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

CONCEPTS = ["circle", "square", "triangle", "cross", "red", "green", "blue", "yellow", "a red circle", "a blue square"]
VARIANTS = {  # label → (method, options)
    "uce last": ("uce", {}),
    "uce all tokens": ("uce", {"tokens": "all"}),
    "uce nullspace": ("uce", {"preserve_mode": "nullspace"}),
    "rece 3 rounds": ("rece", {"rounds": 3}),
}


def median_time(repeats: int, fn, *args, **kwargs) -> tuple[float, object]:
    out = fn(*args, **kwargs)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def pipeline_table(model, repeats: int) -> None:
    import genunlearn as gu
    from genunlearn.forget.request import ForgetRequest

    print("| variant | concepts | erased vectors | seconds (median) | erase residual | preserve drift |")
    print("|---|---|---|---|---|---|")
    for label, (method, options) in VARIANTS.items():
        for n in (1, 5, 10):
            preserve = "a green cross; a yellow triangle" if options.get("preserve_mode") == "nullspace" else None
            request = ForgetRequest("concept", concept="; ".join(CONCEPTS[:n]), anchor="shape", preserve=preserve)
            seconds, out = median_time(repeats, gu.unlearn, model, method, request, **options)
            u = out.info["unlearn"]
            drift = "–" if u["preserve_drift"] is None else f"{u['preserve_drift']:.2e}"
            print(
                f"| {label} | {n} | {u['erase_vectors']} | {seconds:.3f} | {u['erase_residual']:.3f} | {drift} |",
                flush=True,
            )


def edit(unet, E, G, P) -> list[str]:
    from genunlearn.methods import closed_form

    return closed_form.apply_edit(unet, *closed_form.uce_factors(E, G, P, lam=0.5))


def sd15_table(repeats: int) -> None:
    """The closed-form core on SD v1.5-sized cross-attention projections."""
    from torch import nn

    widths = [320] * 4 + [640] * 4 + [1280] * 5 + [640] * 3  # down, mid, up blocks' attn2 (16 in SD v1.x)
    unet = nn.Module()
    for i, w in enumerate(widths):
        block = nn.Module()
        block.attn2 = nn.Module()
        block.attn2.to_k, block.attn2.to_v = nn.Linear(768, w, bias=False), nn.Linear(768, w, bias=False)
        unet.add_module(f"block{i}", block)
    g = torch.Generator().manual_seed(0)
    print("\n| SD v1.5 sizes | concepts | erased vectors | seconds (median) |")
    print("|---|---|---|---|")
    for tokens, per_prompt in (("last", 1), ("all", 76)):
        for n in (1, 10, 100):
            E, G = torch.randn(n * per_prompt, 768, generator=g), torch.randn(n * per_prompt, 768, generator=g)
            P = torch.randn(20 * per_prompt, 768, generator=g)
            seconds, _ = median_time(repeats, edit, unet, E, G, P)
            print(f"| tokens={tokens} | {n} | {len(E)} | {seconds:.3f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model",
        default=None,
        help="an SD-layout pipeline folder (default: the shapes sd recipe at --train-steps, cached)",
    )
    ap.add_argument(
        "--train-steps",
        type=int,
        default=2,
        help="steps of the base when no --model is given (speed does not depend on them)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sd15", action="store_true", help="also time the core at SD v1.5's sizes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import genunlearn as gu

    model = gu.load(args.model) if args.model else gu.pretrained("shapes", "sd", steps=args.train_steps)
    print(
        f"torch threads: {torch.get_num_threads()}; model: {args.model or f'shapes sd recipe, {args.train_steps} steps'}"
    )
    pipeline_table(model, args.repeats)
    if args.sd15:
        sd15_table(args.repeats)


if __name__ == "__main__":
    main()
