"""The lifecycle every fine-tuning method shares, written once: check the request, copy the network,
let the method say what to train (``TrainedMethod.plan``, its one hook), run the loop, record the run.
A method file then holds its loss and its options, not plumbing (open-unlearning's shape)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from genunlearn.methods.base import Method
from genunlearn.methods.common import copy_net
from genunlearn.training.loop import Objective, Optim, TrainResult, every_step, train_objectives


@dataclass(frozen=True)
class Snapshots:
    """A callback for ``unlearn(callbacks=...)``: ``fn(step, model)`` sees the model being unlearned
    after every ``every``-th step and the last, or after each of ``steps`` (convergence curves)."""

    fn: Callable
    every: int = 0
    steps: tuple[int, ...] = ()

    def due(self, done: int, total: int) -> bool:
        return done in self.steps or (self.every > 0 and (done % self.every == 0 or done == total))


def split_snapshots(callbacks) -> tuple[tuple, tuple[Snapshots, ...]]:
    """(the loop's own callbacks, the ``Snapshots`` among ``callbacks``)."""
    snaps = tuple(c for c in callbacks if isinstance(c, Snapshots))
    return tuple(c for c in callbacks if not isinstance(c, Snapshots)), snaps


def snapshot_callback(snaps: tuple[Snapshots, ...], model, net, steps: int) -> tuple[Callable, ...]:
    """A loop callback that hands ``model`` with the trained ``net`` to every due ``Snapshots``."""
    if not snaps:
        return ()

    @every_step
    def snapshot(done, _record):
        due = [s for s in snaps if s.due(done, steps)]
        for s in due:
            s.fn(done, model.with_net(net))
        if due:
            net.train()

    return (snapshot,)


@dataclass
class Plan:
    """What one fine-tuning run trains: the network's objective (its ``net`` is the trainable copy the
    lifecycle made), objectives updated before it each step (f-DMU's critic), how often the loop
    logs (None: ten lines), and what the run record adds (a dict, or a function of the loop's result)."""

    model: Objective
    before: tuple[Objective, ...] = ()
    log_every: int | None = None
    record: dict | Callable[[TrainResult], dict] = field(default_factory=dict)
    progress: bool = True
    callbacks: tuple[Callable, ...] = ()


class TrainedMethod(Method):
    """A method that fine-tunes a copy of the model's network; subclasses override ``plan``. Its config
    has ``steps`` and ``seed``; ``budget`` (the CLI's --steps) overrides the steps; ``callbacks`` are
    the loop's (``(step, record)`` at log steps) or ``Snapshots``."""

    def plan(self, model, request, data, net, steps: int, **options) -> Plan:
        """The objectives that train ``net`` (a trainable copy of ``model.net``) for ``steps`` steps;
        ``options``: what a caller passed to ``unlearn`` beyond its own arguments (f-DMU's anchor pool)."""
        raise NotImplementedError

    def adam(self, **overrides) -> Optim:
        """Adam without weight decay at the config's ``lr`` and ``grad_clip`` (ESD's and SalUn's optimiser)."""
        settings = {"lr": self.config.lr, "optimizer": "adam", "weight_decay": 0.0, "grad_clip": self.config.grad_clip}
        return Optim(**{**settings, **overrides})

    def unlearn(self, model, request, data=None, *, budget=None, callbacks=(), **options):
        self.check(model, request)
        t0 = time.perf_counter()
        net = copy_net(model.net, trainable=True)
        steps = budget or self.config.steps
        plan = self.plan(model, request, data, net, steps, **options)
        callbacks, snaps = split_snapshots(callbacks)
        result = train_objectives(
            [*plan.before, plan.model],
            steps=steps,
            seed=self.config.seed,
            log_every=plan.log_every or max(1, steps // 10),
            desc=self.name,
            progress=plan.progress,
            callbacks=(*callbacks, *plan.callbacks, *snapshot_callback(snaps, model, net, steps)),
        )
        net.requires_grad_(True)
        record = plan.record(result) if callable(plan.record) else plan.record
        info = self.unlearned_info(model.info, steps=steps, seconds=time.perf_counter() - t0, **record)
        return model.with_net(net, info=info)
