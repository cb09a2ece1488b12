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
shows progress and runs callbacks (at log steps; ``every_step`` ones after every step). A loss receives its own network as prepared (possibly a
``DistributedDataParallel`` wrapper); any other network it calls, it calls as the plain module.
Checkpoints hold every objective's weights, EMA and optimiser state, each rank's RNG states and the
step, so a resumed run continues bit-identically.

Checkpoints by default: a run with an ``out_dir`` (cached base/retrain trainings run in the cache's
``work/<key>``) checkpoints every ``GENUNLEARN_CHECKPOINT_SECONDS`` (default 180) seconds of
work, besides any ``checkpoint_every`` steps; given a ``RunFolder`` among its callbacks (the CLI's
``unlearn`` makes one with ``resumable_run(...)`` and hands it to the method), every training call
gets its own folder under the cache's ``work/unlearn-<key>``, keyed by the input model's content,
method, options, request and budget. Rerunning the same command resumes from the
last checkpoint (one line says so); a checkpoint that cannot be used (corrupt, from other
objectives, steps or process count) is named in one line and the run starts fresh.

On CPU the loop flushes subnormal floats to zero while it trains (and turns it off again): tiny Adam
moments and activations otherwise fall into slow subnormal arithmetic, which made the 2D fine-tunes
of ContinualFlow 2–4× slower (measured). Results stay deterministic.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from genunlearn.io.weights import atomic_dir, load_tensors, save_tensors
from genunlearn.device import current
from genunlearn.errors import GenUnlearnError

OPTIMIZERS = ("adam", "adamw", "sgd")
DEFAULT_CHECKPOINT_SECONDS = 180.0


def checkpoint_seconds() -> float:
    """Seconds of work between default checkpoints (``GENUNLEARN_CHECKPOINT_SECONDS``; 0: none)."""
    raw = os.environ.get("GENUNLEARN_CHECKPOINT_SECONDS", "")
    try:
        value = float(raw) if raw else DEFAULT_CHECKPOINT_SECONDS
    except ValueError:
        raise GenUnlearnError(f"GENUNLEARN_CHECKPOINT_SECONDS must be a number of seconds, got {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise GenUnlearnError(f"GENUNLEARN_CHECKPOINT_SECONDS must be a finite number >= 0, got {raw!r}")
    return value


def _content_hash(folder) -> str:
    """SHA-256 of a saved model's config.json and weights (what an unlearning run starts from)."""
    from genunlearn.io.weights import resolve_out

    folder = resolve_out(folder)
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.name == "config.json" or p.suffix == ".safetensors":
            h.update(p.name.encode())
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:16]


@dataclass
class RunFolder:
    """Where one command's training calls checkpoint: passed among a training call's ``callbacks``,
    it gives each call, in order, its own folder under ``dir`` (resumed when the command is rerun)."""

    dir: Path
    calls: int = 0

    def next(self, desc: str) -> Path:
        slug = "".join(c if c.isalnum() else "-" for c in desc)[:40]
        self.calls += 1
        return self.dir / f"{self.calls - 1:02d}-{slug}"


@contextmanager
def resumable_run(kind: str, model_dir, *parts):
    """A ``RunFolder`` under the cache's ``work/<kind>-<key>`` (the key: the input model's content and
    ``parts``) for the training calls of one command; removed when the run ends well."""
    from genunlearn.io.cache import cache_root, config_hash
    from genunlearn.distributed import is_main_process, num_processes

    key = config_hash(
        {
            "kind": kind,
            "model": _content_hash(model_dir),
            "parts": [repr(p) for p in parts],
            "processes": num_processes(),
        }
    )
    work = cache_root() / "work" / f"{kind}-{key}"
    yield RunFolder(work)
    if is_main_process():
        shutil.rmtree(work, ignore_errors=True)


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
    fused: bool = (
        False  # fused Adam/AdamW kernel: far fewer passes over memory on CPU; not bit-identical to the default
    )

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
    takes_update: bool = False  # the loss is called ``loss(model, generator, update)``: the update's index (from 0, warm-up included; a resumed run continues it), for precomputed batch schedules
    # one batch per update, drawn by the loop as ``batch(generator)`` and handed to the loss as its last argument
    batch: Callable | None = None
    # the loss is handed the last batch drawn for the objective named here (f-DMU's model reuses its critic's)
    batch_of: str | None = None

    def __post_init__(self):
        if not self.name or "/" in self.name:
            raise GenUnlearnError(f"objective name must be non-empty without '/', got {self.name!r}")
        if self.every < 1 or self.warmup_updates < 0:
            raise GenUnlearnError(f"objective {self.name!r}: every must be >= 1 and warmup_updates >= 0")
        if self.batch is not None and self.batch_of is not None:
            raise GenUnlearnError(f"objective {self.name!r}: draw its own batch or reuse another's, not both")
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
    return cls(
        params,
        lr=cfg.lr,
        betas=tuple(cfg.betas),
        weight_decay=cfg.weight_decay,
        **({"fused": True} if cfg.fused else {}),
    )


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
        self.items = [(params[k], m.to(params[k].device, params[k].dtype).bool()) for k, m in masks.items()]
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
        torch.set_flush_denormal(current().device.type == "cpu")
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
        self.trainable = [
            p for p in (obj.params if obj.params is not None else obj.net.parameters()) if p.requires_grad
        ]
        optimizer = make_optimizer(self.trainable, obj.optim)
        self.model, self.optimizer = accelerator.prepare(obj.net, optimizer)  # moves obj.net to the device in place
        self.masker = GradientMask(obj.net, obj.grad_mask) if obj.grad_mask is not None else None
        self.ema = (
            AveragedModel(obj.net, multi_avg_fn=get_ema_multi_avg_fn(obj.ema_decay), use_buffers=True)
            if obj.ema_decay
            else None
        )
        self.running, self.count, self.logs = 0.0, 0, {}
        self.updates = 0  # updates done (warm-up included): what a ``takes_update`` loss is given
        self.last_batch = None  # the batch its last update drew (``Objective.batch``)

    def set_trainable(self, flag: bool) -> None:
        for p in self.trainable:
            p.requires_grad_(flag)


def _reduce(accelerator, values: list[float], op: str) -> list[float]:
    """``values`` reduced over the processes (on their device: NCCL reduces only GPU tensors)."""
    if accelerator.num_processes == 1:
        return values
    return accelerator.reduce(torch.tensor(values, dtype=torch.float64, device=accelerator.device), op).tolist()


def _accelerator(placement):
    """An Accelerator on ``placement``'s device and precision. accelerate keeps one state per process
    and refuses to change it, so in a one-process run a different placement resets it first."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from genunlearn.distributed import num_processes

    cpu = placement.device.type == "cpu"
    state = AcceleratorState._shared_state
    if (
        state
        and num_processes() == 1
        and (
            state.get("_mixed_precision") != placement.mixed_precision
            or (state.get("device") is not None and state["device"].type != placement.device.type)
        )
    ):
        AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(cpu=cpu, mixed_precision=placement.mixed_precision)


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
    network is trained in place and, with EMA, ends holding its EMA weights. ``callbacks(step,
    record)`` run at log steps; one marked ``every_step`` runs after every step (``record`` is None
    between log steps): snapshots, the kill tests."""
    if not objectives or len({o.name for o in objectives}) != len(objectives):
        raise GenUnlearnError("the loop needs at least one objective, with distinct names")
    for i, o in enumerate(objectives):
        if o.batch_of is not None and not any(p.name == o.batch_of and p.batch for p in objectives[:i]):
            raise GenUnlearnError(
                f"objective {o.name!r} reuses {o.batch_of!r}'s batch: that objective must come before it and draw one"
            )
    if steps < 1:
        raise GenUnlearnError("training needs steps >= 1")
    folders = [c for c in callbacks if isinstance(c, RunFolder)]
    callbacks = tuple(c for c in callbacks if not isinstance(c, RunFolder))
    if out_dir is None and folders:  # inside resumable_run: this call's own checkpoint folder
        out_dir, resume = folders[0].next(desc), True
    run = _Run(
        objectives,
        steps=steps,
        seed=seed,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        out_dir=out_dir,
        desc=desc,
    )
    start = run.resume() if resume else 0
    run.open(start, progress)
    try:
        if start == 0:
            run.warm_up()
        for step in range(start, steps):
            run.step(step, callbacks)
    finally:
        run.close()
    return run.finish()


def every_step(fn: Callable[[int, dict | None], None]) -> Callable[[int, dict | None], None]:
    """Mark a loop callback to run after every step, not only at log steps."""
    fn.every_step = True
    return fn


class _Run:
    """One call of ``train_objectives``: the objectives prepared by accelerate, the seeded generator,
    the log and the checkpoint folder. Each method is one named stage of the loop."""

    def __init__(self, objectives, *, steps, seed, log_every, checkpoint_every, out_dir, desc):
        self.steps, self.seed, self.log_every, self.checkpoint_every, self.desc = (
            steps,
            seed,
            log_every,
            checkpoint_every,
            desc,
        )
        self.every_seconds = checkpoint_seconds() if out_dir is not None else 0.0
        self.accelerator = _accelerator(current())
        self.rank = self.accelerator.process_index
        self.generator = torch.Generator().manual_seed(
            seed * 1009 + self.rank
        )  # on the CPU: draws move to the networks' device (genunlearn.device)
        self.runs = [_Prepared(o, self.accelerator) for o in objectives]
        self.by_name = {r.obj.name: r for r in self.runs}
        self.several = len(self.runs) > 1
        self.main = self.accelerator.is_main_process
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if self.out_dir is not None and self.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.ckpt = self.out_dir / "checkpoint" if self.out_dir is not None else None
        self.elapsed, self.losses = 0.0, []

    def resume(self) -> int:
        """The step a checkpoint in the run's folder restores (0: none, or one that cannot be used)."""
        if self.ckpt is None or not self.ckpt.exists():
            return 0
        try:
            start, self.elapsed, self.losses = _load_checkpoint(
                self.ckpt,
                self.runs,
                self.generator,
                self.rank,
                steps=self.steps,
                seed=self.seed,
                processes=self.accelerator.num_processes,
            )
        except GenUnlearnError as e:
            if self.main:
                print(f"note: {self.desc}: cannot resume from {self.ckpt} ({e}); starting fresh", file=sys.stderr)
                shutil.rmtree(self.ckpt, ignore_errors=True)
            return 0
        if self.main:
            print(
                f"resuming {self.desc} from its checkpoint at step {start}/{self.steps} ({self.ckpt}; delete it to start over)",
                file=sys.stderr,
            )
        return start

    def open(self, start: int, progress: bool) -> None:
        """The log (records past ``start`` dropped), the progress bar and the clocks."""
        from tqdm.auto import tqdm

        self.log = _open_log(self.out_dir / "log.jsonl", start) if self.out_dir is not None and self.main else None
        for r in self.runs:
            r.obj.net.train()
        self.bar = tqdm(
            total=self.steps,
            initial=start,
            desc=self.desc,
            disable=None if progress and self.main else True,
            dynamic_ncols=True,
            leave=False,
        )
        self.t0 = time.perf_counter() - self.elapsed
        self.last_save = time.perf_counter()

    def update(self, r: _Prepared, step: int) -> None:
        """One optimiser update of objective ``r`` (the others' weights frozen, not detached: a loss
        may differentiate through them)."""
        if self.several:
            for other in self.runs:
                other.set_trainable(other is r)
        for group in r.optimizer.param_groups:
            group["lr"] = r.obj.optim.lr * lr_factor(step, r.obj.optim, self.steps)
        args = [r.model, self.generator, *([r.updates] if r.obj.takes_update else [])]
        if r.obj.batch is not None:
            r.last_batch = r.obj.batch(self.generator)
            args.append(r.last_batch)
        elif r.obj.batch_of is not None:
            args.append(self.by_name[r.obj.batch_of].last_batch)
        out = r.obj.loss(*args)
        loss, logs = out if isinstance(out, tuple) else (out, {})
        if not torch.isfinite(loss):
            what = f"{self.desc} ({r.obj.name})" if self.several else self.desc
            raise GenUnlearnError(f"{what}: loss became {loss.item()} at step {step}; lower the learning rate")
        r.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        if r.obj.optim.grad_clip:
            if r.obj.optim.clip_mode == "norm":
                self.accelerator.clip_grad_norm_(r.trainable, r.obj.optim.grad_clip)
            else:
                self.accelerator.clip_grad_value_(r.trainable, r.obj.optim.grad_clip)
        if r.masker is not None:
            r.masker.mask_grads()
        r.optimizer.step()
        if r.masker is not None:
            r.masker.restore(r.optimizer)
        if r.ema is not None:
            r.ema.update_parameters(r.obj.net)
        r.running, r.count, r.updates, r.logs = r.running + loss.item(), r.count + 1, r.updates + 1, logs

    def warm_up(self) -> None:
        """Each objective's ``warmup_updates`` before step 0 (not logged)."""
        for r in self.runs:
            for _ in range(r.obj.warmup_updates):
                self.update(r, 0)
            r.running, r.count = 0.0, 0

    def step(self, step: int, callbacks) -> None:
        """Loop step ``step``: every objective's updates, the log record and the callbacks, then a
        checkpoint when due."""
        for r in self.runs:
            for _ in range(r.obj.every):
                self.update(r, step)
        done = step + 1
        record = self.record(done) if done % self.log_every == 0 or done == self.steps else None
        for cb in callbacks if self.main else ():
            if record is not None or getattr(cb, "every_step", False):
                cb(done, record)
        self.bar.update(1)
        if self.ckpt is not None and done < self.steps and self.checkpoint_due(done):
            self.save(done)
        return record

    def record(self, done: int) -> dict:
        """The log record (mean losses over the processes since the last one, learning rates, logs);
        written to the log on the main process."""
        means = _reduce(self.accelerator, [r.running / r.count for r in self.runs], "mean")
        record = {"step": done}
        for r, mean in zip(self.runs, means):
            prefix = "" if r is self.runs[-1] else f"{r.obj.name}/"
            record.update(
                {
                    f"{prefix}loss": mean,
                    f"{prefix}lr": r.optimizer.param_groups[0]["lr"],
                    **{f"{prefix}{k}": float(v) for k, v in r.logs.items()},
                }
            )
            r.running, r.count = 0.0, 0
        record["seconds"] = time.perf_counter() - self.t0
        self.losses.append(means[-1])
        if self.main:
            if self.log is not None:
                self.log.write(json.dumps(record) + "\n")
                self.log.flush()
            self.bar.set_postfix(loss=f"{means[-1]:.4f}")
        return record

    def checkpoint_due(self, done: int) -> bool:
        """Every ``checkpoint_every`` steps, or after ``checkpoint_seconds()`` of work (all processes
        agree, at log steps only)."""
        due = bool(self.checkpoint_every) and done % self.checkpoint_every == 0
        if self.every_seconds and not due:
            due = time.perf_counter() - self.last_save >= self.every_seconds
            if self.accelerator.num_processes > 1:  # every rank must take part
                due = (done % self.log_every == 0) and _reduce(self.accelerator, [float(due)], "sum")[0] > 0
        return due

    def save(self, done: int) -> None:
        from accelerate.utils import gather_object

        self.last_save = time.perf_counter()
        rng = gather_object([(self.generator.get_state(), torch.get_rng_state())])  # every rank's, in rank order
        if self.main:
            _save_checkpoint(
                self.ckpt, self.runs, rng, done, time.perf_counter() - self.t0, self.losses, self.seed, self.steps
            )

    def close(self) -> None:
        """Close the bar and the log; every objective trainable again."""
        self.bar.close()
        if self.log is not None:
            self.log.close()
        if self.several:
            for r in self.runs:
                r.set_trainable(True)

    def finish(self) -> TrainResult:
        """Networks out of accelerate (EMA weights loaded), in eval mode; the checkpoint removed."""
        for r in self.runs:
            self.accelerator.unwrap_model(
                r.model, keep_fp32_wrapper=False
            )  # a mixed-precision run's autocast wrapper leaves the network
            if r.ema is not None:
                r.obj.net.load_state_dict(r.ema.module.state_dict())
            r.obj.net.eval()
        if self.ckpt is not None and self.main and self.ckpt.exists():
            shutil.rmtree(self.ckpt, ignore_errors=True)
        return TrainResult(self.steps, time.perf_counter() - self.t0, self.losses)


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
    takes_update: bool = False,
) -> TrainResult:
    """Train ``net`` alone (one objective, "model") for ``cfg.steps``; with EMA, ``net`` ends holding the EMA weights."""
    objective = Objective(
        "model",
        net,
        step_loss,
        cfg,
        params=params,
        grad_mask=grad_mask,
        ema_decay=cfg.ema_decay,
        takes_update=takes_update,
    )
    return train_objectives(
        [objective],
        steps=cfg.steps,
        seed=cfg.seed,
        log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every,
        out_dir=out_dir,
        resume=resume,
        desc=desc,
        progress=progress,
        callbacks=callbacks,
    )


def _open_log(path: Path, start: int):
    """Open the JSONL log for appending, dropping records past the step we resume from (and a line
    cut short by a kill)."""
    kept = []
    if start and path.is_file():
        for line in path.read_text(errors="replace").splitlines():
            try:
                if line and json.loads(line)["step"] <= start:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue
    f = open(path, "w")
    f.writelines(line + "\n" for line in kept)
    return f


def _save_checkpoint(ckpt, runs, rng, step, elapsed, losses, seed, steps=None) -> None:
    with atomic_dir(ckpt, quiet=True) as tmp:
        for r in runs:
            name = r.obj.name
            save_tensors(tmp / f"{name}.safetensors", r.obj.net.state_dict())
            if r.ema is not None:
                save_tensors(tmp / f"{name}.ema.safetensors", r.ema.state_dict())
            torch.save(r.optimizer.state_dict(), tmp / f"{name}.optimizer.pt")  # read back with weights_only=True
        save_tensors(
            tmp / "rng.safetensors",
            {f"{kind}.{i}": s for i, states in enumerate(rng) for kind, s in zip(("generator", "torch"), states)},
        )
        objectives = {
            r.obj.name: {
                "optim": asdict(r.obj.optim),
                "ema_decay": r.obj.ema_decay,
                "every": r.obj.every,
                "warmup_updates": r.obj.warmup_updates,
                "updates": r.updates,
            }
            for r in runs
        }
        (tmp / "state.json").write_text(
            json.dumps(
                {
                    "step": step,
                    "steps": steps,
                    "elapsed": elapsed,
                    "losses": losses,
                    "seed": seed,
                    "processes": len(rng),
                    "objectives": objectives,
                }
            )
        )


def _checked_state(ckpt, runs, *, steps, seed, processes) -> dict:
    """``state.json`` of ``ckpt`` when it belongs to this run (objectives, steps, seed, process count
    and a step inside the run), else GenUnlearnError naming what differs."""
    try:
        state = json.loads((ckpt / "state.json").read_text())
        if not isinstance(state, dict):
            raise ValueError("state.json is not an object")
        start, _, _ = int(state["step"]), float(state["elapsed"]), list(state["losses"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GenUnlearnError(f"state.json unreadable ({e.__class__.__name__})") from None
    names = sorted(state.get("objectives") or {})
    if names != sorted(r.obj.name for r in runs):
        raise GenUnlearnError(f"it holds objectives {names}, this run has {sorted(r.obj.name for r in runs)}")
    if steps is not None and state.get("steps") not in (None, steps):
        raise GenUnlearnError(f"it was written for {state.get('steps')} steps, this run has {steps}")
    if seed is not None and state.get("seed") not in (None, seed):
        raise GenUnlearnError(f"it was written with seed {state.get('seed')}, this run has {seed}")
    if processes is not None and state.get("processes") != processes:
        raise GenUnlearnError(f"it was written by {state.get('processes')} process(es), this run has {processes}")
    if not 0 < start < (steps or float("inf")):
        raise GenUnlearnError(f"it records step {start}")
    return state


def _load_checkpoint(ckpt, runs, generator, rank: int, *, steps=None, seed=None, processes=None):
    """Restore every objective, EMA, optimiser and RNG from ``ckpt``; any problem (unreadable,
    other objectives, steps, seed or process count) raises GenUnlearnError with the state untouched."""
    import copy

    state = _checked_state(ckpt, runs, steps=steps, seed=seed, processes=processes)
    start, elapsed, losses = int(state["step"]), float(state["elapsed"]), list(state["losses"])
    rng = load_tensors(ckpt / "rng.safetensors")
    if f"generator.{rank}" not in rng or f"torch.{rank}" not in rng:
        raise GenUnlearnError(f"no RNG state for rank {rank}")
    loaded = []
    for r in runs:
        name = r.obj.name
        weights = load_tensors(ckpt / f"{name}.safetensors")
        ema = load_tensors(ckpt / f"{name}.ema.safetensors") if r.ema is not None else None
        try:
            # the optimizer moves it to its weights' device
            opt = torch.load(ckpt / f"{name}.optimizer.pt", weights_only=True, map_location="cpu")
        except Exception as e:  # any unreadable optimizer state means the checkpoint is unusable
            raise GenUnlearnError(f"{name} optimizer state unreadable ({e.__class__.__name__})") from None
        loaded.append((r, weights, ema, opt, state["objectives"][name].get("updates")))
    backup = [
        (
            r.obj.net.state_dict(keep_vars=False),
            r.ema.state_dict() if r.ema is not None else None,
            r.optimizer.state_dict(),
        )
        for r in runs
    ]
    backup = copy.deepcopy(backup)
    try:
        for r, weights, ema, opt, updates in loaded:
            r.obj.net.load_state_dict(weights)
            if ema is not None:
                r.ema.load_state_dict(ema)
            r.optimizer.load_state_dict(opt)
            r.updates = int(updates) if updates is not None else start * r.obj.every + r.obj.warmup_updates
        generator.set_state(rng[f"generator.{rank}"])
        torch.set_rng_state(rng[f"torch.{rank}"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
        for r, (w, e_state, o) in zip(runs, backup):
            r.obj.net.load_state_dict(w)
            if e_state is not None:
                r.ema.load_state_dict(e_state)
            r.optimizer.load_state_dict(o)
            r.updates = 0
        raise GenUnlearnError(
            f"it does not fit this run's networks ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    return start, elapsed, losses


def train_from_scratch(net, step_loss, recipe_train: dict, desc: str, *, out_dir, resume, progress) -> dict:
    """Train a recipe's model (``recipe_train``: ``TrainConfig`` fields) with ``train``; what the model
    records of it: steps and seconds."""
    result = train(
        net, step_loss, TrainConfig(**recipe_train), out_dir=out_dir, resume=resume, desc=desc, progress=progress
    )
    return {"steps": result.steps, "train_seconds": round(result.seconds, 3)}
