"""The one training loop every recipe and method runs: a list of objectives, seeded, resumable, logged.

An ``Objective`` is a network, its loss ``loss(model, generator) -> loss`` (a scalar, or
``(loss, logs)``), its optimiser settings (``Optim``), optional trainable ``params``, an optional
gradient mask (masked weights never move, not through weight decay, momentum or Adam state either),
optional EMA, and an update schedule: ``every`` updates per loop step (k critic updates per
generator update) and ``warmup_updates`` extra updates before step 0 (a critic warm-up). Each loop
step runs the objectives in list order. While one objective updates, the trainable weights of the
others are frozen (``requires_grad`` off), so a loss may differentiate through another objective's
network (SFD's fake score, an f-GAN critic) without giving it gradients. The last objective is the
one the caller trains: its loss is ``TrainResult.losses`` and the log's plain ``loss``/``lr`` (and
its logs); the others' are prefixed ``<name>/``. ``train(net, step_loss, cfg)`` is the one-objective
call.

Scale-out: the loop prepares every objective's network and optimiser with accelerate, so the same
code runs in one CPU process, under ``accelerate launch --multi_gpu --num_processes N`` (gloo on
CPU) or on GPUs. Data is drawn per rank from a rank-seeded generator (``seed * 1009 + rank``);
gradients are averaged across ranks, so N processes see N× the batch. Every rank runs the same
steps; logged losses are means over ranks; only the main process writes the log and checkpoints,
shows progress and runs callbacks. A loss receives its own network as prepared (possibly a
``DistributedDataParallel`` wrapper); any other network it calls, it calls as the plain module.
Checkpoints hold every objective's weights, EMA and optimiser state, each rank's RNG states and the
step, so a resumed run continues bit-identically.

On CPU the loop flushes subnormal floats to zero while it trains (and turns it off again): tiny Adam
moments and activations otherwise fall into slow subnormal arithmetic, which made the 2D fine-tunes
of ContinualFlow 2–4× slower (measured). Results stay deterministic.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from genunlearn.checkpoint import atomic_dir, load_tensors, save_tensors
from genunlearn.errors import GenUnlearnError

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine")


def check_schedule(lr_schedule: str, ema_decay: float | None) -> None:
    """Fail early (before any costly setup) on a schedule or EMA decay the loop cannot run."""
    if lr_schedule not in LR_SCHEDULES:
        raise GenUnlearnError(f"unknown lr_schedule {lr_schedule!r}; expected one of {', '.join(LR_SCHEDULES)}")
    if ema_decay is not None and not 0 < ema_decay < 1:
        raise GenUnlearnError(f"ema_decay must lie in (0, 1), got {ema_decay}")


@dataclass
class Optim:
    """How one objective's weights are updated."""

    lr: float = 1e-3
    optimizer: str = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    clip_mode: str = "norm"  # "norm" or "value"
    lr_schedule: str = "constant"  # "constant" or "cosine" (over the loop's steps)
    warmup: int = 0  # linear learning-rate warm-up, in loop steps
    fused: bool = False  # fused Adam/AdamW kernel: far fewer passes over memory on CPU; not bit-identical to the default

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise GenUnlearnError(f"unknown optimizer {self.optimizer!r}; expected one of {', '.join(OPTIMIZERS)}")
        if self.lr <= 0:
            raise GenUnlearnError("training needs lr > 0")
        if self.clip_mode not in ("norm", "value"):
            raise GenUnlearnError(f"clip_mode must be norm or value, got {self.clip_mode!r}")
        check_schedule(self.lr_schedule, None)


@dataclass
class TrainConfig(Optim):
    """One network's training: its optimiser settings plus the loop's length, seed, EMA and cadence."""

    steps: int = 1000
    ema_decay: float | None = None
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 0

    def __post_init__(self):
        if self.steps < 1:
            raise GenUnlearnError("training needs steps >= 1 and lr > 0")
        super().__post_init__()
        check_schedule(self.lr_schedule, self.ema_decay)


@dataclass
class Objective:
    """One network trained by the loop: what it minimises, how, and how often."""

    name: str
    net: torch.nn.Module
    loss: Callable  # (model, generator) -> loss | (loss, logs)
    optim: Optim = field(default_factory=Optim)
    params: list | None = None  # trainable subset (default: every parameter with requires_grad)
    grad_mask: dict[str, torch.Tensor] | None = None
    ema_decay: float | None = None
    every: int = 1  # updates per loop step
    warmup_updates: int = 0  # extra updates before step 0 (fresh runs only)

    def __post_init__(self):
        if not self.name or "/" in self.name:
            raise GenUnlearnError(f"objective name must be non-empty without '/', got {self.name!r}")
        if self.every < 1 or self.warmup_updates < 0:
            raise GenUnlearnError(f"objective {self.name!r}: every must be >= 1 and warmup_updates >= 0")
        check_schedule(self.optim.lr_schedule, self.ema_decay)


@dataclass
class TrainResult:
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)  # the last objective's, one per logged step (mean since last log)


def make_optimizer(params, cfg: Optim) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay, **({"fused": True} if cfg.fused else {}))


def lr_factor(step: int, cfg: Optim, steps: int) -> float:
    if cfg.warmup and step < cfg.warmup:
        return (step + 1) / cfg.warmup
    if cfg.lr_schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * step / steps))
    return 1.0


class GradientMask:
    """Freezes every coordinate where ``mask == 0``: zero grad, zero optimiser state, restored value."""

    def __init__(self, net: torch.nn.Module, masks: dict[str, torch.Tensor]):
        params = dict(net.named_parameters())
        unknown = set(masks) - set(params)
        if unknown:
            raise GenUnlearnError(f"gradient mask names unknown parameters: {sorted(unknown)[:3]}")
        self.items = [(params[k], m.to(params[k].dtype).bool()) for k, m in masks.items()]
        # frozen coordinates as flat indices + original values: restoring by index is ~4x faster than torch.where
        self.frozen = []
        for p, m in self.items:
            idx = (~m).flatten().nonzero().squeeze(1)
            self.frozen.append((idx, p.detach().flatten()[idx].clone()))

    def mask_grads(self) -> None:
        for p, m in self.items:
            if p.grad is not None:
                p.grad.mul_(m)

    @torch.no_grad()
    def restore(self, optimizer: torch.optim.Optimizer) -> None:
        for (p, _), (idx, p0) in zip(self.items, self.frozen):
            p.view(-1).index_copy_(0, idx, p0)
            for v in optimizer.state.get(p, {}).values():
                if torch.is_tensor(v) and v.shape == p.shape:
                    v.view(-1).index_fill_(0, idx, 0)


def _flushing_subnormals(fn: Callable) -> Callable:
    """Run ``fn`` with subnormal floats flushed to zero on CPU, restored afterwards."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        torch.set_flush_denormal(not torch.cuda.is_available())
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_flush_denormal(False)  # numerical code outside training (e.g. quadratures) keeps subnormals

    return wrapper


class _Prepared:
    """An objective with its optimiser, mask and EMA, prepared by accelerate, and its running loss."""

    def __init__(self, obj: Objective, accelerator):
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.obj = obj
        self.trainable = [p for p in (obj.params if obj.params is not None else obj.net.parameters()) if p.requires_grad]
        optimizer = make_optimizer(self.trainable, obj.optim)
        self.masker = GradientMask(obj.net, obj.grad_mask) if obj.grad_mask is not None else None
        self.ema = AveragedModel(obj.net, multi_avg_fn=get_ema_multi_avg_fn(obj.ema_decay), use_buffers=True) if obj.ema_decay else None
        self.model, self.optimizer = accelerator.prepare(obj.net, optimizer)
        self.running, self.count, self.logs = 0.0, 0, {}

    def set_trainable(self, flag: bool) -> None:
        for p in self.trainable:
            p.requires_grad_(flag)


@_flushing_subnormals
def train_objectives(
    objectives: list[Objective],
    *,
    steps: int,
    seed: int = 0,
    log_every: int = 50,
    checkpoint_every: int = 0,
    out_dir: str | Path | None = None,
    resume: bool = False,
    desc: str = "train",
    progress: bool = True,
    callbacks: tuple[Callable[[int, dict], None], ...] = (),
) -> TrainResult:
    """Run ``steps`` loop steps over ``objectives`` (in list order, each ``every`` times a step); every
    network is trained in place and, with EMA, ends holding its EMA weights."""
    from accelerate import Accelerator
    from accelerate.utils import gather_object
    from tqdm.auto import tqdm

    if not objectives or len({o.name for o in objectives}) != len(objectives):
        raise GenUnlearnError("the loop needs at least one objective, with distinct names")
    if steps < 1:
        raise GenUnlearnError("training needs steps >= 1")
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    rank = accelerator.process_index
    generator = torch.Generator().manual_seed(seed * 1009 + rank)
    runs = [_Prepared(o, accelerator) for o in objectives]
    several = len(runs) > 1
    main = accelerator.is_main_process

    out_dir = Path(out_dir) if out_dir is not None else None
    if out_dir is not None and main:
        out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / "checkpoint" if out_dir is not None else None
    start, elapsed, losses = 0, 0.0, []
    if resume and ckpt is not None and (ckpt / "state.json").is_file():
        start, elapsed, losses = _load_checkpoint(ckpt, runs, generator, rank)
    log = _open_log(out_dir / "log.jsonl", start) if out_dir is not None and main else None

    def update(r: _Prepared, step: int) -> None:
        if several:  # the others' weights are frozen, not detached: losses may differentiate through them
            for other in runs:
                other.set_trainable(other is r)
        for group in r.optimizer.param_groups:
            group["lr"] = r.obj.optim.lr * lr_factor(step, r.obj.optim, steps)
        out = r.obj.loss(r.model, generator)
        loss, logs = out if isinstance(out, tuple) else (out, {})
        if not torch.isfinite(loss):
            what = f"{desc} ({r.obj.name})" if several else desc
            raise GenUnlearnError(f"{what}: loss became {loss.item()} at step {step}; lower the learning rate")
        r.optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if r.obj.optim.grad_clip:
            if r.obj.optim.clip_mode == "norm":
                accelerator.clip_grad_norm_(r.trainable, r.obj.optim.grad_clip)
            else:
                accelerator.clip_grad_value_(r.trainable, r.obj.optim.grad_clip)
        if r.masker is not None:
            r.masker.mask_grads()
        r.optimizer.step()
        if r.masker is not None:
            r.masker.restore(r.optimizer)
        if r.ema is not None:
            r.ema.update_parameters(r.obj.net)
        r.running += loss.item()
        r.count += 1
        r.logs = logs

    for r in runs:
        r.obj.net.train()
    bar = tqdm(total=steps, initial=start, desc=desc, disable=None if progress and main else True, dynamic_ncols=True, leave=False)
    t0 = time.perf_counter() - elapsed
    try:
        if start == 0:
            for r in runs:
                for _ in range(r.obj.warmup_updates):
                    update(r, 0)
                r.running, r.count = 0.0, 0  # warm-up updates are not logged
        for step in range(start, steps):
            for r in runs:
                for _ in range(r.obj.every):
                    update(r, step)
            done = step + 1
            if done % log_every == 0 or done == steps:
                means = accelerator.reduce(torch.tensor([r.running / r.count for r in runs], dtype=torch.float64), "mean").tolist()
                record = {"step": done}
                for r, mean in zip(runs, means):
                    prefix = "" if r is runs[-1] else f"{r.obj.name}/"
                    record.update({f"{prefix}loss": mean, f"{prefix}lr": r.optimizer.param_groups[0]["lr"], **{f"{prefix}{k}": float(v) for k, v in r.logs.items()}})
                    r.running, r.count = 0.0, 0
                record["seconds"] = time.perf_counter() - t0
                losses.append(means[-1])
                if main:
                    if log is not None:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                    bar.set_postfix(loss=f"{means[-1]:.4f}")
                    for cb in callbacks:
                        cb(done, record)
            bar.update(1)
            if ckpt is not None and checkpoint_every and done % checkpoint_every == 0 and done < steps:
                rng = gather_object([(generator.get_state(), torch.get_rng_state())])  # every rank's, in rank order
                if main:
                    _save_checkpoint(ckpt, runs, rng, done, time.perf_counter() - t0, losses, seed)
    finally:
        bar.close()
        if log is not None:
            log.close()
        if several:
            for r in runs:
                r.set_trainable(True)
    for r in runs:
        if r.ema is not None:
            r.obj.net.load_state_dict(r.ema.module.state_dict())
        r.obj.net.eval()
    if ckpt is not None and main and ckpt.exists():
        shutil.rmtree(ckpt, ignore_errors=True)
    return TrainResult(steps, time.perf_counter() - t0, losses)


def train(
    net: torch.nn.Module,
    step_loss: Callable,
    cfg: TrainConfig,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    params: list | None = None,
    grad_mask: dict[str, torch.Tensor] | None = None,
    desc: str = "train",
    progress: bool = True,
    callbacks: tuple[Callable[[int, dict], None], ...] = (),
) -> TrainResult:
    """Train ``net`` alone (one objective, "model") for ``cfg.steps``; with EMA, ``net`` ends holding the EMA weights."""
    objective = Objective("model", net, step_loss, cfg, params=params, grad_mask=grad_mask, ema_decay=cfg.ema_decay)
    return train_objectives(
        [objective], steps=cfg.steps, seed=cfg.seed, log_every=cfg.log_every, checkpoint_every=cfg.checkpoint_every,
        out_dir=out_dir, resume=resume, desc=desc, progress=progress, callbacks=callbacks,
    )


def _open_log(path: Path, start: int):
    """Open the JSONL log for appending, dropping records past the step we resume from."""
    kept = []
    if start and path.is_file():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= start]
    f = open(path, "w")
    f.writelines(line + "\n" for line in kept)
    return f


def _save_checkpoint(ckpt, runs, rng, step, elapsed, losses, seed) -> None:
    with atomic_dir(ckpt) as tmp:
        for r in runs:
            name = r.obj.name
            save_tensors(tmp / f"{name}.safetensors", r.obj.net.state_dict())
            if r.ema is not None:
                save_tensors(tmp / f"{name}.ema.safetensors", r.ema.state_dict())
            torch.save(r.optimizer.state_dict(), tmp / f"{name}.optimizer.pt")  # read back with weights_only=True
        save_tensors(tmp / "rng.safetensors", {f"{kind}.{i}": s for i, states in enumerate(rng) for kind, s in zip(("generator", "torch"), states)})
        objectives = {r.obj.name: {"optim": asdict(r.obj.optim), "ema_decay": r.obj.ema_decay, "every": r.obj.every, "warmup_updates": r.obj.warmup_updates} for r in runs}
        (tmp / "state.json").write_text(json.dumps({"step": step, "elapsed": elapsed, "losses": losses, "seed": seed, "processes": len(rng), "objectives": objectives}))


def _load_checkpoint(ckpt, runs, generator, rank: int):
    state = json.loads((ckpt / "state.json").read_text())
    names = sorted(state.get("objectives", {}))
    if names != sorted(r.obj.name for r in runs):
        raise GenUnlearnError(f"{ckpt}: cannot resume, the checkpoint holds objectives {names}, this run has {sorted(r.obj.name for r in runs)}")
    rng = load_tensors(ckpt / "rng.safetensors")
    if f"generator.{rank}" not in rng:
        raise GenUnlearnError(f"{ckpt}: cannot resume on rank {rank}, the checkpoint was written by {state['processes']} process(es)")
    for r in runs:
        name = r.obj.name
        r.obj.net.load_state_dict(load_tensors(ckpt / f"{name}.safetensors"))
        if r.ema is not None:
            r.ema.load_state_dict(load_tensors(ckpt / f"{name}.ema.safetensors"))
        try:
            r.optimizer.load_state_dict(torch.load(ckpt / f"{name}.optimizer.pt", weights_only=True))
        except Exception as e:  # any unreadable optimizer state means the checkpoint is unusable
            raise GenUnlearnError(f"{ckpt}: cannot resume, {name} optimizer state unreadable ({e.__class__.__name__})") from None
    generator.set_state(rng[f"generator.{rank}"])
    torch.set_rng_state(rng[f"torch.{rank}"])
    return state["step"], state["elapsed"], state["losses"]
