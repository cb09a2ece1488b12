"""Metric keys renamed to say what they hold, and old records read under the current names.

``metrics.json`` files, run records and benchmark row caches written before the renaming still
hold the old keys; everything that reads them passes them through ``current_names`` first, so a
report, a resumed suite or a comparison of old and new runs sees one vocabulary.
"""

from __future__ import annotations

# old key -> current key, at any depth of a record
RENAMED = {
    "forget_rate": "forgotten_class_still_drawn",
    "erased_rate": "concept_still_shown",
    "erased_rate_by_concept": "concept_still_shown_by_concept",
    "base_erased_rate": "base_concept_still_shown",
    "erased_rate_change_points": "concept_still_shown_change_points",
    # benchmarks/continualflow_2d.py rows: the share of points in the forget region, by two judges
    "forget_rate_energy": "in_forget_region_energy",
    "forget_rate_nn": "in_forget_region_nn",
}
# inside a relearning curve (a dict with "steps" and "auc"), where the judged share is of whatever
# was forgotten (class, concept or region), not of a class only
RENAMED_IN_CURVE = {"forget_rate": "forgotten_content_drawn"}


def current_names(record):
    """``record`` (a metrics dict, a run record, a list of them) with every old key renamed."""
    if isinstance(record, list):
        return [current_names(v) for v in record]
    if not isinstance(record, dict):
        return record
    table = RENAMED_IN_CURVE if {"steps", "auc"} <= record.keys() else RENAMED
    return {table.get(k, k): current_names(v) for k, v in record.items()}
