"""Where networks run and in what precision: the one place ``--device``, ``--precision`` and
``--batch-size`` are resolved and checked.

A ``Placement`` (device, precision, sampling/evaluation batch size) is set for a command or an API
call with ``use(...)``; the training loop's Accelerator, model loading, sampling and judging read
it with ``current()``. ``auto`` picks CUDA, then MPS, then the CPU. Precision goes through
accelerate (``mixed_precision``) while training and through the same autocast while sampling;
accelerate has no fp16 on the CPU, so that is refused.

Tensors follow the network: code that calls a network places its inputs on ``of(net)``. Random
draws come from CPU generators and are then moved (``randn``/``rand``/``randint``), as diffusers'
``randn_tensor`` does for a CPU generator: a seed means the same numbers on every device, and the
CPU path is exactly what it was (seeded CPU runs stay bit-identical).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from itertools import chain

import torch

from genunlearn.errors import GenUnlearnError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "fp16")
MIXED_PRECISION = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}  # accelerate's names
DEFAULT_BATCH_SIZE = 1000
MAX_BATCH_SIZE = 2**31 - 1


@dataclass(frozen=True)
class Placement:
    """A resolved device, precision and sampling/evaluation batch size."""

    device: torch.device
    precision: str = "fp32"
    batch_size: int = DEFAULT_BATCH_SIZE

    @property
    def mixed_precision(self) -> str:
        return MIXED_PRECISION[self.precision]

    def autocast(self):
        """Autocast for inference in this precision (nothing to do in fp32)."""
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if self.precision == "bf16" else torch.float16)


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return torch.backends.mps.is_available()
    return True


def _local_device(kind: str) -> torch.device:
    """``cuda`` is this process's GPU under ``accelerate launch`` (LOCAL_RANK), else GPU 0."""
    import os

    if kind == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(kind)


def resolve(device: str | None = "auto", precision: str | None = "fp32", batch_size: int | None = None) -> Placement:
    """Check the three choices (one line naming the problem and what is allowed) and resolve ``auto``."""
    device, precision = device or "auto", precision or "fp32"
    if device not in DEVICES:
        raise GenUnlearnError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if precision not in PRECISIONS:
        raise GenUnlearnError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_SIZE
    ):
        raise GenUnlearnError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}, got {batch_size}")
    if device == "auto":
        device = next((k for k in ("cuda", "mps") if _available(k)), "cpu")
    elif not _available(device):
        raise GenUnlearnError(
            f"--device {device}: no {device.upper()} device is available on this machine; use --device cpu or auto"
        )
    if precision == "fp16" and device == "cpu":
        raise GenUnlearnError(
            "--precision fp16 needs a GPU (accelerate has no fp16 on the CPU); use bf16 or fp32 on the CPU"
        )
    if precision == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
        raise GenUnlearnError("--precision bf16: this GPU has no bfloat16; use fp16 or fp32")
    return Placement(_local_device(device), precision, batch_size or DEFAULT_BATCH_SIZE)


_CURRENT: list[Placement] = []


def current() -> Placement:
    """The placement set by the innermost ``use`` (default: ``auto``, fp32, batches of 1000)."""
    return _CURRENT[-1] if _CURRENT else resolve()


@contextmanager
def use(placement: Placement | None = None, **choices):
    """Run the block with ``placement`` (or ``resolve(**choices)``; choices left None keep the
    current ones)."""
    if placement is None:
        now = current()
        given = {k: v for k, v in choices.items() if v is not None}
        placement = (
            resolve(**{"device": now.device.type, "precision": now.precision, "batch_size": now.batch_size, **given})
            if given
            else now
        )
    _CURRENT.append(placement)
    try:
        yield placement
    finally:
        _CURRENT.pop()


def of(net) -> torch.device:
    """The device a network's weights live on (the CPU for one without any, or a plain function)."""
    if isinstance(net, torch.nn.Module):
        for tensor in chain(net.parameters(), net.buffers()):
            return tensor.device
    return torch.device("cpu")


def place(net, *tensors):
    """``tensors`` on ``net``'s device (None stays None): the inputs of a network call."""
    dev = of(net)
    return tuple(None if t is None else t.to(dev) for t in tensors)


def batched(net, fn, *tensors, batch_size: int | None = None) -> torch.Tensor:
    """``fn(*chunks)`` over the tensors' first dimension in batches (default: the placement's
    ``--batch-size``), each chunk placed on ``net``'s device and run in the placement's precision;
    the results are gathered on the CPU (floating point in float32)."""
    placement = current()
    size = batch_size or placement.batch_size
    out = []
    with placement.autocast():
        for i in range(0, tensors[0].shape[0], size):
            y = fn(*place(net, *(t[i : i + size] for t in tensors)))
            out.append((y.float() if y.is_floating_point() else y).cpu())
    return torch.cat(out)


def _source(generator) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def randn(shape, generator=None, *, device) -> torch.Tensor:
    """N(0, 1) draws from ``generator`` on its own device, placed on ``device``."""
    return torch.randn(shape, generator=generator, device=_source(generator)).to(device)


def rand(shape, generator=None, *, device) -> torch.Tensor:
    """U[0, 1) draws from ``generator`` on its own device, placed on ``device``."""
    return torch.rand(shape, generator=generator, device=_source(generator)).to(device)


def randint(low: int, high: int, shape, generator=None, *, device) -> torch.Tensor:
    """Integers in [low, high) from ``generator`` on its own device, placed on ``device``."""
    return torch.randint(low, high, shape, generator=generator, device=_source(generator)).to(device)
