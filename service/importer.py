"""`rnnsweep import`: runs logged elsewhere, loaded so they can be diagnosed and queried.

SOURCE is any shape service/importers reads: rnnsweep's long table (`run_id, step, epoch,
metric, value`, CSV or Parquet), a wide CSV / Parquet (Keras, Lightning `CSVLogger`), a folder
of those, a TensorBoard log dir or an MLflow `mlruns/`. Whatever the shape, the runs then take
one path: an `epoch` metric becomes the epoch column, an empty value is NaN, metric names are
read as the canonical ones (importers/names.py, plus `--map`), and the params come from the
source where it has them, overridden by PARAMS (`run_id` plus hyper-parameter columns: lr,
weight_decay, optimizer, beta1, beta2, batch_size, clip_grad_norm, cell, hidden, epochs,
n_train, task = classification | regression, n_classes, target_std (the regression targets'
standard deviation: it gives a loss-only regression log its chance level, and makes the run a
regression), or any other).

Every value is range-checked here, where it enters, so nothing accepted can break a view
later: steps are whole numbers from 0 to below 2**40 (about 1.1e12: more than any training
takes, far below where the views' step arithmetic could overflow; a nanosecond timestamp
logged as the step is refused), epochs from 0 to below 2**31 (the warehouse's epoch column),
run ids and metric names are never empty, and a parameter is a finite number, text or
true/false. Everything is checked before anything is written; then one transaction replaces the
imported runs' rows, so importing the same files twice changes nothing. Imported run_ids
are stored as `<sweep>:<run_id>`, so two imports can both have a run "1".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rnnsweep.service.errors import UserError
from rnnsweep.service.importers import SourceFormat, read_source
from rnnsweep.service.importers.files import read_table
from rnnsweep.service.importers.names import CANONICAL_METRICS, canonical_names, parse_name_map
from rnnsweep.service.importers.source import LONG_SCHEMA
from rnnsweep.service.warehouse import Warehouse

# Params the analysis views read (run_params); others are kept in runs.config only.
KNOWN_PARAMS = (
    "lr",
    "weight_decay",
    "optimizer",
    "beta1",
    "beta2",
    "batch_size",
    "clip_grad_norm",
    "cell",
    "hidden",
    "epochs",
    "n_train",
    "task",
    "n_classes",
    "target_std",
)
TASKS = ("classification", "regression")
MAX_STEP = 2**40
MAX_EPOCH = 2**31
MAX_CLASSES = 2**31  # n_classes is read as an integer
MIN_TARGET_STD, MAX_TARGET_STD = 1e-100, 1e100  # squared (the chance loss), still a normal double
PARAM_VALUE = "a parameter is a finite number, text or true/false"


@dataclass(frozen=True)
class ImportReport:
    sweep: str
    runs: int
    rows: int


def checked_metrics(metrics: pa.Table, label: str, name_map: dict[str, str]) -> pa.Table:
    """A reader's long table with epochs filled, NaN for null, canonical names; UserError names the file and problem."""
    _no_empty_names(metrics, label)
    metrics = _with_epochs(metrics, label)
    if metrics.num_rows == 0:
        raise UserError(f"{label}: no rows")
    _in_range(metrics, "step", MAX_STEP, label, "steps count from 0 and stay below 2**40; a timestamp is not a step")
    _in_range(metrics, "epoch", MAX_EPOCH, label, "epochs count from 0 and stay below 2**31")
    metrics = metrics.set_column(4, "value", pc.fill_null(metrics.column("value"), math.nan))
    keys = metrics.group_by(["run_id", "step", "metric"], use_threads=False).aggregate([("value", "count")])
    dupes = keys.filter(pc.greater(keys.column("value_count"), 1))
    if dupes.num_rows:
        first = dupes.slice(0, 1).to_pylist()[0]
        raise UserError(
            f"{label}: {dupes.num_rows} duplicate (run_id, step, metric) rows, e.g. run {first['run_id']!r} step {first['step']} metric {first['metric']!r}"
        )
    metrics = canonical_names(metrics, label, name_map)
    found = metrics.column("metric").unique().to_pylist()
    if not set(CANONICAL_METRICS) & set(found):
        shown = ", ".join(sorted(found)[:12]) + (", ..." if len(found) > 12 else "")
        raise UserError(
            f"{label}: none of its metrics ({shown}) is a canonical name ({', '.join(CANONICAL_METRICS)}) "
            "or a known alias; name one with --map NAME=CANONICAL"
        )
    return metrics


def _no_empty_names(metrics: pa.Table, label: str) -> None:
    """A run with no id, or a metric with no name, cannot be told from the others: refused
    (the README: an empty cell is an error, except in `value`)."""
    for column, what in (("run_id", "a run with no id"), ("metric", "a metric with no name")):
        names = metrics.column(column)
        empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(names), ""), True)
        if pc.any(empty).as_py():
            row = pc.index(empty, True).as_py()
            raise UserError(f"{label}: column {column!r}: empty at row {row + 1} ({what}); fill it or drop the row")


def _in_range(metrics: pa.Table, column: str, high: int, label: str, rule: str) -> None:
    values = metrics.column(column)
    outside = pc.or_(pc.less(values, 0), pc.greater_equal(values, high))
    if pc.any(outside).as_py():
        row = metrics.filter(outside).slice(0, 1).to_pylist()[0]
        raise UserError(f"{label}: column {column!r}: run {row['run_id']!r} has {row[column]}; {rule}")


def _with_epochs(metrics: pa.Table, label: str) -> pa.Table:
    """A metric named `epoch` (Lightning logs one beside every metric) fills the epoch column at
    its step, and is not kept as a metric; where a source says nothing of epochs, the epoch is 0."""
    metrics = metrics.cast(LONG_SCHEMA)
    is_epoch = pc.equal(metrics.column("metric"), "epoch")
    epochs = metrics.filter(pc.and_(is_epoch, pc.is_finite(metrics.column("value"))))
    _in_range(epochs, "value", MAX_EPOCH, label, "metric 'epoch' counts from 0 and stays below 2**31")
    metrics = metrics.filter(pc.invert(is_epoch))
    if metrics.column("epoch").null_count and epochs.num_rows:
        latest = epochs.group_by(["run_id", "step"], use_threads=False).aggregate([("value", "max")])
        at_step = pa.table(
            {
                "run_id": latest.column("run_id"),
                "step": latest.column("step"),
                "logged_epoch": pc.cast(pc.floor(latest.column("value_max")), pa.int64()),
            }
        )
        metrics = metrics.join(at_step, ["run_id", "step"], join_type="left outer", use_threads=False)
        metrics = metrics.set_column(2, "epoch", pc.coalesce(metrics.column("epoch"), metrics.column("logged_epoch")))
    epoch = pc.fill_null(metrics.column("epoch"), 0)
    return metrics.set_column(2, "epoch", epoch).select(LONG_SCHEMA.names).combine_chunks()


def read_params(path: Path, run_ids: set[str]) -> dict[str, dict]:
    """run_id -> {param: value}; every run must be in the metrics."""
    label = str(path)
    table = read_table(path, {"run_id": pa.string()})
    if "run_id" not in table.column_names:
        raise UserError(f"{label}: missing column 'run_id'")
    if path.suffix == ".csv":  # a CSV holds text: a date-like value stays the text it was
        dated = [f.name for f in table.schema if pa.types.is_temporal(f.type)]
        if dated:
            table = read_table(path, {"run_id": pa.string(), **dict.fromkeys(dated, pa.string())})
    table = _plain_params(table, label)
    params: dict[str, dict] = {}
    for row in table.to_pylist():
        if row["run_id"] is None or not row["run_id"].strip():
            raise UserError(f"{label}: column 'run_id': empty; every row names its run")
        run_id = str(row.pop("run_id"))
        if run_id in params:
            raise UserError(f"{label}: run {run_id!r} appears twice")
        if run_id not in run_ids:
            known = ", ".join(repr(r) for r in sorted(run_ids)[:3]) + (", ..." if len(run_ids) > 3 else "")
            raise UserError(f"{label}: run {run_id!r} has no rows in the metrics (its runs are {known})")
        params[run_id] = _present(row)
    return params


def _plain_params(table: pa.Table, label: str) -> pa.Table:
    """Parameter columns as numbers, text or booleans (decimals as numbers); a column of any
    other kind (dates in Parquet, bytes, lists) is refused by name."""
    for index, field in enumerate(table.schema):
        kind = field.type
        if pa.types.is_decimal(kind):
            table = table.set_column(index, field.name, pc.cast(table.column(index), pa.float64()))
        elif not (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
            or pa.types.is_null(kind)
        ):
            raise UserError(f"{label}: column {field.name!r}: holds {kind} values; {PARAM_VALUE}")
    return table


def _present(row: dict) -> dict:
    return {k: v for k, v in row.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}


def checked_params(run_id: str, params: dict, labels: dict[str, str], source_label: str) -> dict:
    """The run's params, `task` and `n_classes` checked; an error names the file the value came
    from: `labels[name]` (the params file) or else the source."""

    def origin(name: str) -> str:
        return labels.get(name, source_label)

    for name, value in params.items():
        plain = isinstance(value, bool | int | str) or isinstance(value, float) and math.isfinite(value)
        if not plain:
            raise UserError(f"{origin(name)}: column {name!r}: run {run_id!r} has {value!r}; {PARAM_VALUE}")
    task = params.get("task")
    if task is not None and task not in TASKS:
        raise UserError(
            f"{origin('task')}: column 'task': run {run_id!r} has {task!r}; expected one of {', '.join(TASKS)}"
        )
    target_std = params.get("target_std")  # a regression's chance loss is the targets' variance
    if target_std is not None:
        number = isinstance(target_std, int | float) and not isinstance(target_std, bool)
        if not (number and MIN_TARGET_STD <= target_std <= MAX_TARGET_STD):  # its square stays a normal double
            raise UserError(
                f"{origin('target_std')}: column 'target_std': run {run_id!r} has {target_std!r}; "
                f"expected the targets' standard deviation, a number from {MIN_TARGET_STD:g} to {MAX_TARGET_STD:g}"
            )
        if task == "classification":
            raise UserError(
                f"{origin('target_std')}: column 'target_std': run {run_id!r} is a classification run; "
                "target_std is a regression's targets' spread"
            )
        params = params | {"task": "regression"}  # the targets' spread says what the task is
    n_classes = params.get("n_classes")
    if n_classes is None:
        return params
    whole = isinstance(n_classes, int | float) and not isinstance(n_classes, bool) and float(n_classes).is_integer()
    if whole and n_classes <= 1 and task == "regression":  # a regression head has one output: nothing to count
        return {k: v for k, v in params.items() if k != "n_classes"}
    if whole and n_classes >= MAX_CLASSES:
        raise UserError(
            f"{origin('n_classes')}: column 'n_classes': run {run_id!r} has {n_classes!r}; expected fewer than 2**31 classes"
        )
    if not whole or n_classes < 2:
        raise UserError(
            f"{origin('n_classes')}: column 'n_classes': run {run_id!r} has {n_classes!r}; expected a whole number >= 2"
            + (" (or task = regression)" if whole and task is None else "")
        )
    return params


def import_runs(
    warehouse: Path,
    source: Path,
    params_path: Path | None,
    sweep: str,
    fmt: SourceFormat | None = None,
    names: list[str] | tuple[str, ...] = (),
) -> ImportReport:
    """Read, name, check, then load in one transaction; nothing is written unless every check passed."""
    from rnnsweep.service.grid_keys import SweepSection

    try:
        SweepSection(name=sweep)
    except Exception:
        raise UserError(f"--sweep {sweep!r}: may hold only letters, digits, '_', '-' and '.'") from None
    name_map = parse_name_map(list(names))
    found = read_source(source, fmt)
    metrics = checked_metrics(found.metrics, str(source), name_map)
    run_ids = sorted(set(metrics.column("run_id").to_pylist()))
    given = read_params(params_path, set(run_ids)) if params_path else {}
    params = {}
    for run in run_ids:
        from_file = given.get(run, {})
        merged = {**_present(found.params.get(run, {})), **from_file}
        params[run] = checked_params(run, merged, dict.fromkeys(from_file, str(params_path)), str(source))
    axes = [f"import.{name}" for name in KNOWN_PARAMS if len({repr(p.get(name)) for p in params.values()}) > 1]

    prefixed = pc.binary_join_element_wise(pa.scalar(f"{sweep}:"), metrics.column("run_id"), "")
    imported_metrics = metrics.set_column(0, "run_id", prefixed)
    last_step = {
        r["run_id"]: r["step_max"]
        for r in metrics.group_by("run_id", use_threads=False).aggregate([("step", "max")]).to_pylist()
    }
    imported_runs = pa.table(
        {
            "run_id": [f"{sweep}:{r}" for r in run_ids],
            "trial_index": pa.array(range(len(run_ids)), pa.int32()),
            "config": [json.dumps({"source_run_id": r, **params[r]}) for r in run_ids],
            "steps": pa.array([last_step[r] for r in run_ids], pa.int64()),
        }
    )
    with Warehouse.open(warehouse, build_views=True) as wh:
        if wh.sweep_sources(sweep) - {"import"}:
            raise UserError(f"sweep {sweep!r} holds runs trained by rnnsweep; import into another --sweep name")
        wh.import_runs(sweep, str(source), axes, imported_runs, imported_metrics)
    return ImportReport(sweep, len(run_ids), metrics.num_rows)
