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
