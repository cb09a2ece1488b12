"""I2I encoder unlearning and its baselines: one loop, the methods differ only in their loss.

Every method draws the same balanced batches (spec §3): B/2 forget images and B/2 retain (or proxy)
images, sampled with replacement so the smaller set is oversampled, one training-mix mask per
image, and noise images n = clamp(randn·s + m) from the batch's scalar mean/std, each under its
forget sample's mask. A method is a loss over such a batch, given the trainable student and the
frozen original (teacher, eval mode, no grad). Each term is averaged over its own samples.

* ``i2i`` (ours):      E(T(x_r)) → E0(T(x_r)),  α · E(T(x_f)) → E0(T(n))            encoder only
* ``random_encoder``:  E(T(x_r)) → E0(T(x_r)),  α · E(T(x_f)) → r ~ N(mean, std of E0(T(x_f)))  encoder only
* ``max_loss``:        L_rec(x_r) − α L_rec(x_f)                                      full model
* ``noisy_label``:     L_rec(x_r) + α · masked MSE(M(T(x_f)), n)                      full model
* ``retain_label``:    M(T(x_r)) → M0(T(x_r)),  α · M(T(x_f)) → M0(T_f(x_r))          full model

Encodings are compared on the visible tokens only (the encoder's input is T(x)); outputs on the
hidden pixels only (what a completion uses). The proxy retain set (``retain="proxy"``) replaces the
real retain split without ever reading it; ``retain="mix"`` draws a ``real_share`` of each retain
half-batch from the real retain split and the rest from the proxy (the retain-replacement sweep).
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Callable, Literal

import torch

from genunlearn import device
from genunlearn.config import check_bounds
from genunlearn.errors import GenUnlearnError
from genunlearn.i2i.masks import noise_images, training_mask
from genunlearn.i2i.model import I2IModel, masked_mse


@dataclass
class I2IConfig:
    """Shared by I2I and its baselines (spec §5, CPU scale)."""

    alpha: float = 1.0  # forget-term weight (> 0; the reference's default 0 disables forgetting; MAGE used 0.2)
    retain_weight: float = 1.0
    steps: int = 200
    batch_size: int = 64  # half forget, half retain
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.05
    warmup: float = 0.05  # fraction of the steps, then cosine to 0
    grad_clip: float = 3.0
    distance: Literal["mse", "l2"] = "mse"  # per-sample mean squared error, or the plain L2 norm
    # noise images: batch mean/std Gaussian, uniform over [-1, 1], or constant (batch mean)
    noise: Literal["gaussian", "uniform", "constant"] = "gaussian"
    # the real retain split, a proxy (never reads the real retain split), or a mix
    retain: Literal["real", "proxy", "mix"] = "real"
    real_share: float = 0.5  # retain="mix": the share of each retain half-batch drawn from the real split
    proxy: str = "shapes"  # proxy source: "shapes" (grayscale shapes at the data's size) or "classes=8,9"
    seed: int = 0

    def __post_init__(self):
        if self.alpha <= 0:
            raise GenUnlearnError(f"alpha must be > 0 (alpha = 0 disables forgetting), got {self.alpha}")
        check_bounds(
            "i2i", steps=(self.steps, 1, None), batch_size=(self.batch_size, 2, None), lr=(self.lr, 0, None, "()")
        )
        if not 0 <= self.real_share <= 1:
            raise GenUnlearnError(f"real_share is a fraction in [0, 1], got {self.real_share}")
        if not 0 <= self.warmup <= 0.1:
            raise GenUnlearnError(f"warmup is a fraction of the steps in [0, 0.1] (keep it short), got {self.warmup}")


@dataclass
class Batch:
    xf: torch.Tensor  # forget images
    xr: torch.Tensor  # retain (or proxy) images
    vf: torch.Tensor  # visible patches of each forget image (also its noise image's)
    vr: torch.Tensor
    hf: torch.Tensor  # hidden pixels (1 = generated) of vf and vr
    hr: torch.Tensor
    noise: torch.Tensor  # noise images paired with xf


# --- distances ------------------------------------------------------------------------------------
def encoding_distance(z: torch.Tensor, t: torch.Tensor, visible: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Per-sample distance between encodings over the visible tokens: mean of squares, or L2 norm."""
    sq = ((z - t) ** 2 * visible[..., None]).flatten(1).sum(1)
    if kind == "l2":
        return sq.clamp_min(1e-12).sqrt()
    return sq / (visible.sum(1) * z.shape[-1])


# --- the losses -----------------------------------------------------------------------------------
def _split(forget_term: torch.Tensor, retain_term: torch.Tensor, cfg: I2IConfig, sign: float = 1.0):
    loss = cfg.retain_weight * retain_term.mean() + sign * cfg.alpha * forget_term.mean()
    return loss, {"forget": forget_term.detach().mean().item(), "retain": retain_term.detach().mean().item()}


def loss_i2i(student, teacher, b: Batch, cfg: I2IConfig, g: torch.Generator):
    """Ours (spec §2): forget encodings → the frozen encoder's encodings of noise under the same mask."""
    with torch.no_grad():
        tf, tr = teacher.encode(b.noise, b.vf), teacher.encode(b.xr, b.vr)
    zf, zr = student(b.xf, b.vf, encode=True), student(b.xr, b.vr, encode=True)
    return _split(encoding_distance(zf, tf, b.vf, cfg.distance), encoding_distance(zr, tr, b.vr, cfg.distance), cfg)


def loss_random_encoder(student, teacher, b: Batch, cfg: I2IConfig, g: torch.Generator):
    """RANDOM ENCODER: forget encodings → a random tensor with the teacher's forget-encoding mean/std."""
    with torch.no_grad():
        t0, tr = teacher.encode(b.xf, b.vf), teacher.encode(b.xr, b.vr)
        vis = t0[b.vf]
        r = device.randn(t0.shape, g, device=t0.device) * vis.std() + vis.mean()
    zf, zr = student(b.xf, b.vf, encode=True), student(b.xr, b.vr, encode=True)
    return _split(encoding_distance(zf, r, b.vf, cfg.distance), encoding_distance(zr, tr, b.vr, cfg.distance), cfg)


def _rec(student, x, visible, hidden, target=None):
    """Masked-region MSE of the model's output against ``target`` (default: the image itself)."""
    return masked_mse(student(x, visible), x if target is None else target, hidden)


def loss_max_loss(student, teacher, b: Batch, cfg: I2IConfig, g: torch.Generator):
    """MAX LOSS: reconstruct retain, gradient ascent on the forget reconstruction loss."""
    return _split(_rec(student, b.xf, b.vf, b.hf), _rec(student, b.xr, b.vr, b.hr), cfg, sign=-1.0)


def loss_noisy_label(student, teacher, b: Batch, cfg: I2IConfig, g: torch.Generator):
    """NOISY LABEL: forget completions are trained toward a noise image (batch mean/std, clamped)."""
    return _split(_rec(student, b.xf, b.vf, b.hf, b.noise), _rec(student, b.xr, b.vr, b.hr), cfg)


def loss_retain_label(student, teacher, b: Batch, cfg: I2IConfig, g: torch.Generator):
    """RETAIN LABEL: retain outputs stay the original's; forget inputs produce the original's output
    for the retain image of the same batch index, seen through the forget sample's mask."""
    with torch.no_grad():
        tr, tf = teacher(b.xr, b.vr), teacher(b.xr, b.vf)
    return _split(_rec(student, b.xf, b.vf, b.hf, tf), _rec(student, b.xr, b.vr, b.hr, tr), cfg)


@dataclass(frozen=True)
class Loss:
    fn: Callable  # (student, teacher, batch, cfg, generator) -> (loss, logs)
    encoder_only: bool


LOSSES = {
    "i2i": Loss(loss_i2i, encoder_only=True),
    "random_encoder": Loss(loss_random_encoder, encoder_only=True),
    "max_loss": Loss(loss_max_loss, encoder_only=False),
    "noisy_label": Loss(loss_noisy_label, encoder_only=False),
    "retain_label": Loss(loss_retain_label, encoder_only=False),
}


# --- data -----------------------------------------------------------------------------------------
def grayscale_shapes(shape: tuple[int, ...], split: str = "train") -> torch.Tensor:
    """Shapes rendered at the data's size, as luminance rescaled per image to [-1, 1] (dark ground,
    bright shape, like digits' strokes); replicated to the data's channel count."""
    from genunlearn.data.shapes import load_shapes

    c, h, _ = shape
    rgb = (load_shapes(split, size=h).x + 1) / 2
    lum = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2])[:, None]
    lo, hi = lum.amin((1, 2, 3), keepdim=True), lum.amax((1, 2, 3), keepdim=True)
    return ((lum - lo) / (hi - lo).clamp_min(1e-6) * 2 - 1).repeat(1, c, 1, 1)


def proxy_images(data, request, forget_mask: torch.Tensor, spec: str) -> torch.Tensor:
    """The proxy retain set: grayscale shapes, or named classes of ``data`` outside the forget set.
    Reads only the proxy items of ``data`` (never the rest of its retain split)."""
    if spec == "shapes":
        if data.name == "shapes":
            raise GenUnlearnError(
                "proxy=shapes would feed forget content back for the shapes task; use proxy=classes=..."
            )
        return grayscale_shapes(data.sample_shape)
    if not spec.startswith("classes="):
        raise GenUnlearnError(f"proxy must be 'shapes' or 'classes=ID,...', got {spec!r}")
    ids = torch.tensor([data.class_id(t.strip()) for t in spec.removeprefix("classes=").split(",") if t.strip()])
    if not len(ids):
        raise GenUnlearnError("proxy=classes= names no classes")
    overlap = sorted(set(ids.tolist()) & set(data.labels[forget_mask].tolist()))
    if overlap:
        raise GenUnlearnError(f"proxy classes {','.join(map(str, overlap))} overlap the forget set ({request.spec()})")
    rows = (torch.isin(data.labels, ids) & ~forget_mask).nonzero().squeeze(1)
    if not len(rows):
        raise GenUnlearnError(f"proxy {spec} selects no images in {data.name}")
    return data.x[rows]


def proxy_classes(run: dict) -> tuple[str, ...]:
    """A three-way split's proxy classes from a run's options (``retain=proxy, proxy=classes=...``):
    evaluation keeps them out of the retain side."""
    proxy = run.get("proxy", "") if run.get("retain") == "proxy" else ""
    return tuple(c for c in proxy.removeprefix("classes=").split(",") if c) if proxy.startswith("classes=") else ()


def unlearning_sets(data, request, cfg: I2IConfig) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """(forget images, retain sources): the real retain images, the proxy images, or for "mix" both
    (real first). Bad requests fail with one line before any work."""
    if request.kind not in ("classes", "samples"):
        raise GenUnlearnError(f"I2I unlearning accepts 'classes' or 'samples' requests, not {request.kind!r}")
    if request.kind == "classes" and len(set(map(str, request.classes))) != len(request.classes):
        raise GenUnlearnError(f"forget request {request.spec()} names a class twice")
    if cfg.retain == "real":
        forget, retain = data.split(request)  # empty, unknown or all-covering requests fail here
        return forget.x, (retain.x,)
    mask = data.forget_mask(request)
    if not mask.any():
        raise GenUnlearnError(f"forget split is empty: {request.spec()} matches nothing in {data.name}")
    proxy = proxy_images(data, request, mask, cfg.proxy)
    if cfg.retain == "proxy":
        return data.x[mask.nonzero().squeeze(1)], (proxy,)
    forget, retain = data.split(request)
    return forget.x, (retain.x, proxy)


def retain_counts(cfg: I2IConfig, half: int) -> tuple[int, ...]:
    """How many of the B/2 retain images each retain source gives (fixed per batch)."""
    if cfg.retain != "mix":
        return (half,)
    real = round(cfg.real_share * half)
    return (real, half - real)


def draw_batch(xf: torch.Tensor, xr: tuple[torch.Tensor, ...], cfg: I2IConfig, net, g: torch.Generator) -> Batch:
    """B/2 forget and B/2 retain images (with replacement; a mix takes fixed shares of its sources),
    their masks, and the forget noise images."""
    half = cfg.batch_size // 2
    bf = xf[torch.randint(len(xf), (half,), generator=g)]
    br = torch.cat([x[torch.randint(len(x), (k,), generator=g)] for x, k in zip(xr, retain_counts(cfg, half))])
    vf, vr = training_mask(half, net.grid, g), training_mask(half, net.grid, g)
    return Batch(
        *device.place(
            net,
            bf,
            br,
            vf,
            vr,
            net.hidden_pixels(vf),
            net.hidden_pixels(vr),
            noise_images(torch.cat([bf, br]), half, cfg.noise, g),
        )
    )


# --- the loop -------------------------------------------------------------------------------------
def trainable_parameters(net, encoder_only: bool) -> list:
    """Encoder parameters only (decoder frozen: requires_grad off), or the whole network."""
    net.requires_grad_(not encoder_only)
    net.encoder.requires_grad_(True)
    return list(net.encoder.parameters() if encoder_only else net.parameters())


def unlearn_i2i(
    model: I2IModel,
    request,
    data,
    cfg: I2IConfig,
    method: str,
    *,
    budget: int | None = None,
    callbacks=(),
    progress: bool = False,
) -> I2IModel:
    """Run ``method``'s loss through the shared training loop on a copy of ``model``; the original is
    the frozen teacher and is left untouched."""
    from genunlearn.training import TrainConfig, train

    if method not in LOSSES:
        raise GenUnlearnError(f"unknown I2I loss {method!r}; expected one of {', '.join(LOSSES)}")
    loss = LOSSES[method]
    xf, xr = unlearning_sets(data, request, cfg)
    if xf.shape[1:] != model.sample_shape:
        raise GenUnlearnError(f"data images {tuple(xf.shape[1:])} do not fit the model's {model.sample_shape}")
    steps = budget or cfg.steps
    t0 = time.perf_counter()
    teacher = copy.deepcopy(model.net).eval().requires_grad_(False)
    student = copy.deepcopy(model.net)
    params = trainable_parameters(student, loss.encoder_only)

    def step_loss(net, g):
        return loss.fn(net, teacher, draw_batch(xf, xr, cfg, teacher, g), cfg, g)

    tc = TrainConfig(
        steps=steps,
        lr=cfg.lr,
        optimizer="adamw",
        betas=cfg.betas,
        weight_decay=cfg.weight_decay,
        grad_clip=cfg.grad_clip,
        lr_schedule="cosine",
        warmup=int(cfg.warmup * steps),
        seed=cfg.seed,
        log_every=max(1, steps // 10),
    )
    result = train(
        student, step_loss, tc, params=params, desc=f"unlearn {method}", progress=progress, callbacks=callbacks
    )
    student.requires_grad_(True)
    info = {
        **model.info,
        "role": "unlearned",
        "method": method,
        "forget": request.spec(),
        "unlearn": {
            **asdict(cfg),
            "steps": steps,
            "encoder_only": loss.encoder_only,
            "seconds": round(time.perf_counter() - t0, 3),
            "losses": result.losses,
        },
    }
    return I2IModel(student.eval(), model.data, info)
