"""Progress of long steps: one line per stage saying what runs and why (on a terminal and when
piped), and a step bar on a terminal only. The main process alone speaks."""

from __future__ import annotations

import sys

from genunlearn.distributed import is_main_process


def stage(what: str, why: str | None = None) -> None:
    """One line on stderr: ``what`` is being done (``why``)."""
    if is_main_process():
        print(f"{what}{f' ({why})' if why else ''}", file=sys.stderr, flush=True)


class StepBar:
    """A training-loop callback ``(step, record)`` drawing a bar of ``total`` steps (terminal only)."""

    def __init__(self, total: int | None, desc: str):
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total, desc=desc, disable=None if is_main_process() else True, dynamic_ncols=True, leave=False
        )

    def __call__(self, step: int, record: dict) -> None:
        self.bar.update(step - self.bar.n)
        if "loss" in record:
            self.bar.set_postfix(loss=f"{record['loss']:.4f}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()
