"""Which process this is under ``accelerate launch`` (read from the launcher's environment, so
asking costs no import): only the main process writes files, logs and evaluates."""

from __future__ import annotations

import os


def process_index() -> int:
    return int(os.environ.get("RANK", "0"))


def num_processes() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return process_index() == 0


def ranks_agree(net) -> bool:
    """Whether every process holds the same weights (a positional checksum, gathered); True in one
    process. Data-parallel training must leave the ranks identical; a result they disagree on
    is not saved."""
    if num_processes() == 1:
        return True
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        return True
    flat = torch.cat([p.detach().double().flatten() for p in net.state_dict().values() if torch.is_floating_point(p)])
    mine = torch.stack(
        [flat.sum(), (flat * torch.linspace(1, 2, flat.numel(), dtype=torch.float64, device=flat.device)).sum()]
    )
    everyone = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(everyone, mine)
    return all(torch.equal(everyone[0], other) for other in everyone[1:])
