"""Compare two suite run folders cell by cell: every judged number in ``metrics.json`` (costs,
keys and bookkeeping excluded), bit for bit; files written under old metric names are compared
under the current ones.

    python benchmarks/compare_suites.py RUNS_BEFORE RUNS_AFTER
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

SKIP = {"key", "seconds", "wall_seconds", "suite", "task", "cell", "forget", "family", "time_ratio"}


def numbers(obj, prefix=""):
    """Flat {path: number} of a metrics dict (lists and nested dicts included)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not prefix and k in SKIP:
                continue
            yield from numbers(v, f"{prefix}{k}.")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from numbers(v, f"{prefix}{i}.")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield prefix.rstrip("."), float(obj)


def main(before: str, after: str) -> int:
    from genunlearn.eval.renamed import current_names

    a_root, b_root = Path(before), Path(after)
    rows, changed = [], 0
    for m in sorted(a_root.glob("*/*/metrics.json")):
        cell = m.parent.relative_to(a_root)
        other = b_root / cell / "metrics.json"
        if not other.is_file():
            rows.append((str(cell), "missing after", "", ""))
            changed += 1
            continue
        a, b = (dict(numbers(current_names(json.loads(p.read_text())))) for p in (m, other))
        diffs = {
            k: (a.get(k), b.get(k))
            for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)
            and not (a.get(k) is not None and b.get(k) is not None and math.isnan(a[k]) and math.isnan(b[k]))
        }
        if diffs:
            changed += 1
            worst = max(diffs, key=lambda k: abs((diffs[k][0] or 0) - (diffs[k][1] or 0)))
            rows.append(
                (str(cell), f"{len(diffs)} of {len(a)} numbers differ", worst, f"{diffs[worst][0]} → {diffs[worst][1]}")
            )
        else:
            rows.append((str(cell), f"identical ({len(a)} numbers)", "", ""))
    width = max(len(r[0]) for r in rows)
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1]}" + (f"; largest: {r[2]} {r[3]}" if r[2] else ""))
    print(f"\n{len(rows) - changed} of {len(rows)} cells bit-identical")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
