"""`rnnsweep diagnose` and `rnnsweep thresholds`: the diagnosis view, with overrides.

The rules are SQL (analysis/70_rule_hits.sql, one CTE per rule; 90_diagnosis.sql picks each
run's first); this module only chooses the runs, passes
threshold overrides (per query as a session variable, per warehouse as rows of
threshold_overrides) and counts the labels.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path

import pyarrow as pa

from rnnsweep.service.errors import UserError
from rnnsweep.service.query import run_query
from rnnsweep.service.warehouse import Warehouse

LABELS = ("healthy", "overfitting", "l2_collapsed", "diverged", "constant_output")
DIAGNOSIS = """
select run_id, sweep, label, confidence, onset_step, evidence, metric, value, threshold, fix
from diagnosis
where $sweep is null or sweep = $sweep
order by sweep, label, run_id
"""
THRESHOLDS = "select name, value, default_value, source, description from thresholds order by name"
THRESHOLD_NAMES = "select name from thresholds"
SWEEP_EXISTS = "select count(*) as n from sweeps where name = $sweep"


def parse_assignments(assignments: list[str]) -> dict[str, float]:
    """["overfit_val_rise=0.2", ...] -> {"overfit_val_rise": 0.2}; one clear line if malformed."""
    parsed = {}
    for item in assignments:
        name, sep, raw = item.partition("=")
        try:
            if not sep:
                raise ValueError
            parsed[name.strip()] = float(raw)
        except ValueError:
            raise UserError(f"--set {item!r}: expected NAME=NUMBER, e.g. --set overfit_val_rise=0.2") from None
        if not math.isfinite(parsed[name.strip()]):
            raise UserError(f"--set {item!r}: a threshold is a finite number; NaN and Inf would silence its rule")
    return parsed


def check_names(warehouse: Path, names) -> None:
    known = run_query(warehouse, THRESHOLD_NAMES).column("name").to_pylist()
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else "; `rnnsweep thresholds` lists them"
            raise UserError(f"unknown threshold '{name}'{hint}")


def diagnose(warehouse: Path, sweep: str | None = None, overrides: dict[str, float] | None = None) -> pa.Table:
    """One row per run: label, confidence, onset step, evidence and fix."""
    if overrides:
        check_names(warehouse, overrides)
    if sweep is not None and run_query(warehouse, SWEEP_EXISTS, {"sweep": sweep}).column("n")[0].as_py() == 0:
        raise UserError(f"no sweep named {sweep!r} in {warehouse}; `rnnsweep status` lists them")
    return run_query(warehouse, DIAGNOSIS, {"sweep": sweep}, thresholds=overrides)


def label_counts(diagnosis: pa.Table) -> pa.Table:
    labels = diagnosis.column("label").to_pylist()
    return pa.table({"label": list(LABELS), "runs": [labels.count(label) for label in LABELS]})


def thresholds(warehouse: Path) -> pa.Table:
    return run_query(warehouse, THRESHOLDS)


def set_thresholds(warehouse: Path, values: dict[str, float], reset: list[str]) -> None:
    """Per-warehouse overrides: every later diagnosis of this warehouse uses them."""
    check_names(warehouse, [*values, *reset])
    with Warehouse.open(warehouse, build_views=True) as wh:
        wh.set_threshold_overrides(values, reset)
