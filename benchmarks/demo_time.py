"""How long `genunlearn demo` takes from a fresh install: a cold cache (GENUNLEARN_CACHE set to an
empty temporary folder), a new output folder, the command run as a user runs it.

    python benchmarks/demo_time.py            # prints the wall time, the leaderboard and base FD / floor

The target (issue #17) is ≤ 90 s on 2 cores with the base model's FD within 2× the real-data floor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 90.0


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="genunlearn-demo-") as tmp:
        env = {**os.environ, "GENUNLEARN_CACHE": str(Path(tmp) / "cache")}
        out = Path(tmp) / "demo"
        t0 = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "genunlearn", "demo", "--out", str(out)], env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - t0
        print(run.stdout)
        if run.returncode != 0:
            sys.exit(f"demo failed ({run.returncode}): {run.stderr.strip().splitlines()[-1:]}")
        print(run.stderr, file=sys.stderr)
        base = json.loads(next(out.glob("*/base/metrics.json")).read_text())
        ratio = base["fd_retain"] / base["fd_floor"]
        print(
            f"demo wall time, cold cache: {wall:.1f}s (target {TARGET_S:.0f}s: {'met' if wall <= TARGET_S else 'MISSED'})"
        )
        print(
            f"base model FD {base['fd_retain']:.2f} vs real-data floor {base['fd_floor']:.2f}: {ratio:.2f}x (target 2x: {'met' if ratio <= 2 else 'MISSED'})"
        )


if __name__ == "__main__":
    main()
