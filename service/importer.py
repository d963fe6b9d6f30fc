"""`rnnsweep import`: runs logged elsewhere, loaded so they can be diagnosed and queried.

METRICS is a long table (CSV or Parquet) with columns `run_id, step, epoch, metric, value`;
canonical metric names are train_loss, val_loss, train_acc, val_acc, grad_norm,
weight_norm, pred_std, lr (others are kept too). NaN and Inf are values. PARAMS (optional)
has `run_id` and hyper-parameter columns (lr, weight_decay, optimizer, beta1, beta2,
batch_size, clip_grad_norm, cell, hidden, epochs, n_train, task = classification |
regression, n_classes, or any other).

Everything is checked before anything is written; then one transaction replaces the
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
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from rnnsweep.service.errors import UserError
from rnnsweep.service.warehouse import Warehouse

METRIC_COLUMNS = {
    "run_id": pa.string(),
    "step": pa.int64(),
    "epoch": pa.int64(),
    "metric": pa.string(),
    "value": pa.float64(),
}
CANONICAL_METRICS = ("train_loss", "val_loss", "train_acc", "val_acc", "grad_norm", "weight_norm", "pred_std", "lr")
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
)
TASKS = ("classification", "regression")


@dataclass(frozen=True)
class ImportReport:
    sweep: str
    runs: int
    rows: int


def _read_table(path: Path, types: dict[str, pa.DataType] | None = None) -> pa.Table:
    label = str(path)
    if not path.is_file():
        raise UserError(f"{label}: no such file")
    try:
        if path.suffix == ".csv":
            # Only empty cells and NULL are missing: "NaN" and "inf" are values.
            options = pacsv.ConvertOptions(null_values=["", "NULL", "null"], column_types=types or {})
            return pacsv.read_csv(path, convert_options=options)
        if path.suffix in (".parquet", ".pq"):
            return pq.read_table(path)
    except pa.ArrowInvalid as e:
        raise UserError(f"{label}: {_arrow_message(e, types)}") from None
    raise UserError(f"{label}: must be a .csv or .parquet file")


def _arrow_message(error: Exception, types: dict | None) -> str:
    text = str(error).splitlines()[0]
    if "CSV column #" in text and types:
        index = int(text.split("#")[1].split(":")[0])
        return f"column {list(types)[index] if index < len(types) else index}: {text.split(': ', 1)[1]}"
    return f"cannot read it ({text})"


def read_metrics(path: Path) -> pa.Table:
    """The long metrics table, typed and checked; UserError names the file, column and problem."""
    label = str(path)
    table = _read_table(path, METRIC_COLUMNS)
    missing = [c for c in METRIC_COLUMNS if c not in table.column_names]
    if missing:
        raise UserError(
            f"{label}: missing column {missing[0]!r} (a metrics file has columns {', '.join(METRIC_COLUMNS)})"
        )
    columns = {}
    for name, kind in METRIC_COLUMNS.items():
        column = table.column(name)
        try:
            columns[name] = column.cast(kind) if name != "run_id" else pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise UserError(f"{label}: column {name!r}: must be {_kind_name(kind)} (found {column.type})") from None
        if columns[name].null_count:
            row = pc.index(pc.is_null(columns[name]), True).as_py()
            raise UserError(
                f"{label}: column {name!r}: empty at row {row + 1}"
                + (" (write NaN for a missing value)" if name == "value" else "")
            )
    table = pa.table(columns)
    if table.num_rows == 0:
        raise UserError(f"{label}: no rows")
    keys = table.group_by(["run_id", "step", "metric"]).aggregate([("value", "count")])
    dupes = keys.filter(pc.greater(keys.column("value_count"), 1))
    if dupes.num_rows:
        first = dupes.slice(0, 1).to_pylist()[0]
        raise UserError(
            f"{label}: {dupes.num_rows} duplicate (run_id, step, metric) rows, e.g. run {first['run_id']!r} step {first['step']} metric {first['metric']!r}"
        )
    if not set(CANONICAL_METRICS) & set(table.column("metric").unique().to_pylist()):
        raise UserError(f"{label}: column 'metric': none of the canonical names ({', '.join(CANONICAL_METRICS)})")
    return table


def _kind_name(kind: pa.DataType) -> str:
    return "integers" if pa.types.is_integer(kind) else "numbers" if pa.types.is_floating(kind) else "text"


def read_params(path: Path, run_ids: set[str]) -> dict[str, dict]:
    """run_id -> {param: value}; every run must be in the metrics file."""
    label = str(path)
    table = _read_table(path, {"run_id": pa.string()})
    if "run_id" not in table.column_names:
        raise UserError(f"{label}: missing column 'run_id'")
    params: dict[str, dict] = {}
    for row in table.to_pylist():
        run_id = str(row.pop("run_id"))
        if run_id in params:
            raise UserError(f"{label}: run {run_id!r} appears twice")
        if run_id not in run_ids:
            raise UserError(f"{label}: run {run_id!r} has no rows in the metrics file")
        clean = {k: v for k, v in row.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}
        if "task" in clean and clean["task"] not in TASKS:
            raise UserError(
                f"{label}: column 'task': run {run_id!r} has {clean['task']!r}; expected one of {', '.join(TASKS)}"
            )
        if "n_classes" in clean and (not float(clean["n_classes"]).is_integer() or clean["n_classes"] < 2):
            raise UserError(
                f"{label}: column 'n_classes': run {run_id!r} has {clean['n_classes']!r}; expected a whole number >= 2"
            )
        params[run_id] = clean
    return params


def import_runs(warehouse: Path, metrics_path: Path, params_path: Path | None, sweep: str) -> ImportReport:
    from rnnsweep.service.spec import SweepSection

    try:
        SweepSection(name=sweep)
    except Exception:
        raise UserError(f"--sweep {sweep!r}: may hold only letters, digits, '_', '-' and '.'") from None
    metrics = read_metrics(metrics_path)
    run_ids = sorted(set(metrics.column("run_id").to_pylist()))
    params = read_params(params_path, set(run_ids)) if params_path else {}
    axes = [f"import.{name}" for name in KNOWN_PARAMS if len({repr(p.get(name)) for p in params.values()}) > 1]

    prefixed = pc.binary_join_element_wise(pa.scalar(f"{sweep}:"), metrics.column("run_id"), "")
    imported_metrics = metrics.set_column(0, "run_id", prefixed)
    last_step = {
        r["run_id"]: r["step_max"] for r in metrics.group_by("run_id").aggregate([("step", "max")]).to_pylist()
    }
    imported_runs = pa.table(
        {
            "run_id": [f"{sweep}:{r}" for r in run_ids],
            "trial_index": pa.array(range(len(run_ids)), pa.int32()),
            "config": [json.dumps({"source_run_id": r, **params.get(r, {})}) for r in run_ids],
            "steps": pa.array([last_step[r] for r in run_ids], pa.int64()),
        }
    )
    with Warehouse.open(warehouse, build_views=True) as wh:
        if wh.sweep_sources(sweep) - {"import"}:
            raise UserError(f"sweep {sweep!r} holds runs trained by rnnsweep; import into another --sweep name")
        wh.import_runs(sweep, str(metrics_path), axes, imported_runs, imported_metrics)
    return ImportReport(sweep, len(run_ids), metrics.num_rows)
