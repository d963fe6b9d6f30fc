"""What the commands print: the expanded grid, sweep summaries, runs by state.

Everything is read through the sandboxed read-only connection and returned as Arrow, so
the CLI renders it as a table, csv, json or parquet alike.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rnnsweep.jobs.config import TrialConfig
from rnnsweep.service.errors import UserError
from rnnsweep.service.query import run_query
from rnnsweep.service.spec import Grid, axis_value

# Grid key -> its column in the run_params view (the key's own name unless listed).
RENAMED_COLUMNS = {
    "sweep.seeds": "seed",
    "data.seed": "data_seed",
    "data.path": "data_path",
    "optimizer.name": "optimizer",
}
RESULT_COLUMNS = (
    "status",
    "label",
    "final_val_loss",
    "best_val_loss",
    "best_val_acc",
    "best_val_r2",
    "final_sigma_max_hh",
    "final_pred_std",
)

SWEEPS = "select * from sweep_status order by updated_at desc"
SWEEP_EXISTS = "select count(*) as n from sweeps where name = $sweep"
SWEEP_AXES = "select axes from sweeps where name = $sweep"
SWEEP_RUNS = """
select p.*, r.attempts, r.node, r.steps, coalesce(r.stop_reason, r.error) as note, r.config
from run_params p join runs r using (run_id)
where p.sweep = $sweep
order by p.trial_index
"""
SWEEP_RESULTS = """
select run_results.*, diagnosis.label, runs.config
from run_results left join diagnosis using (run_id) join runs using (run_id)
where run_results.sweep = $sweep
order by best_val_loss nulls last, trial_index
"""


def column_of(axis: str) -> str:
    return RENAMED_COLUMNS.get(axis, axis.partition(".")[2])


def grid_table(grid: Grid) -> pa.Table:
    """One row per trial: its index, run_id and the value it takes on every axis."""
    columns = {"trial": list(range(len(grid.trials))), "run_id": [t.run_id for t in grid.trials]}
    for axis in grid.axes:
        values = [axis_value(t, axis) for t in grid.trials]
        columns[column_of(axis)] = [list(v) if isinstance(v, tuple) else v for v in values]
    return pa.table(columns)


def summary_line(report) -> str:
    counts = " · ".join(f"{status} {n}" for status, n in sorted(report.counts.items()))
    minutes, seconds = divmod(report.seconds, 60)
    reused = f" ({report.skipped} reused from earlier)" if report.skipped else ""
    return f"sweep {report.sweep}: {report.trials} runs{reused}: {counts or 'nothing ran'} in {int(minutes)}m{seconds:04.1f}s"


def label_summary(results: pa.Table) -> str:
    """ "healthy 11 · l2_collapsed 6 · diverged 1", most common first."""
    if "label" not in results.column_names:  # no run was diagnosed (none logged a metric)
        return ""
    counts = Counter(label for label in results.column("label").to_pylist() if label)
    return " · ".join(f"{label} {n}" for label, n in counts.most_common())


def stored_storage(warehouse: Path, sweep: str) -> str | None:
    """The storage URI a sweep was last seen with in this warehouse, if any."""
    if not warehouse.exists():
        return None
    rows = run_query(warehouse, "select storage_uri from sweeps where name = $sweep", {"sweep": sweep}).to_pylist()
    return rows[0]["storage_uri"] or None if rows else None


def sweeps(warehouse: Path) -> pa.Table:
    return run_query(warehouse, SWEEPS)


def _axes_of(warehouse: Path, sweep: str) -> list[str]:
    if run_query(warehouse, SWEEP_EXISTS, {"sweep": sweep}).column("n")[0].as_py() == 0:
        raise UserError(f"no sweep named {sweep!r} in {warehouse}; `rnnsweep status` lists them")
    return run_query(warehouse, SWEEP_AXES, {"sweep": sweep}).column("axes")[0].as_py()


def with_axis_columns(table: pa.Table, axes: list[str]) -> tuple[pa.Table, list[str]]:
    """The table with a column per axis, and their names. run_params has a column for every
    built-in grid key; a free-form one ([model.args], [params]) is read from the run's config."""
    names = []
    for axis in axes:
        name = column_of(axis)
        if name not in table.column_names:
            trials = [TrialConfig.model_validate_json(c) for c in table.column("config").to_pylist()]
            values = [axis_value(t, axis) for t in trials]
            try:
                column = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # one axis may mix numbers and strings
                column = pa.array([str(v) for v in values])
            table = table.append_column(name, column)
        names.append(name)
    return table, names


def sweep_runs(warehouse: Path, sweep: str) -> pa.Table:
    """A sweep's runs: state, the axes' values, attempts, node and why it stopped or failed."""
    table, axes = with_axis_columns(run_query(warehouse, SWEEP_RUNS, {"sweep": sweep}), _axes_of(warehouse, sweep))
    return table.select(["run_id", "status", *axes, "attempts", "node", "steps", "note"])


def sweep_results(warehouse: Path, grid: Grid) -> pa.Table:
    """The grid's runs, best validation loss first, with the columns that tell them apart."""
    table = run_query(warehouse, SWEEP_RESULTS, {"sweep": grid.name})
    run_ids = pa.array([t.run_id for t in grid.trials])
    table = table.filter(pc.is_in(table.column("run_id"), value_set=run_ids))
    shown = [c for c in RESULT_COLUMNS if table.column(c).null_count < table.num_rows]
    table, axes = with_axis_columns(table, list(grid.axes))
    return table.select(["run_id", *axes, *shown])
