"""Wide tables: one row per logged step, one column per metric (Keras and Lightning `CSVLogger`).

A `step` or `epoch` column says where each row is (with only `epoch`, the epoch is the step);
a `run_id` column, if there is one, says whose it is, else the whole file is one run. Every
other numeric column is a metric; an empty cell is "not logged in this row" (Lightning writes
train and validation metrics on separate rows), while `nan` is a value.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rnnsweep.service.errors import UserError
from rnnsweep.service.importers.files import read_table
from rnnsweep.service.importers.source import LONG_SCHEMA, Source

SHAPES = (
    "expected a long table (run_id, step, epoch, metric, value) or a wide one "
    "(a step or epoch column, then one column per metric, optionally run_id)"
)


def read(path: Path, run_id: str) -> Source:
    return from_table(read_table(path, all_text=True), str(path), run_id)


def from_table(table: pa.Table, label: str, run_id: str) -> Source:
    names = [n for n in table.column_names if n and not n.startswith("__index_level_")]  # pandas' index
    if "step" not in names and "epoch" not in names:
        raise UserError(f"{label}: no 'step' or 'epoch' column; {SHAPES}")
    numbers = {name: _numbers(table.column(name)) for name in names if name != "run_id"}
    for name in ("step", "epoch"):
        if name in names and numbers[name] is None:
            raise UserError(f"{label}: column {name!r}: must be whole numbers")
    where = "step" if "step" in names else "epoch"
    step = _whole(numbers[where], where, label, allow_empty=False)
    epoch = _whole(numbers["epoch"], "epoch", label, allow_empty=where == "step") if "epoch" in names else None
    if "run_id" in names:
        runs = pc.cast(table.column("run_id"), pa.string())
        if runs.null_count:
            raise UserError(f"{label}: column 'run_id': empty at row {pc.index(pc.is_null(runs), True).as_py() + 1}")
    else:
        runs = pa.chunked_array([pa.array([run_id] * table.num_rows, pa.string())])
    parts = []
    for name, values in numbers.items():
        if name in ("step", "epoch") or values is None:
            continue
        logged = pc.is_valid(values)
        rows = pc.sum(logged).as_py() or 0
        parts.append(
            pa.table(
                [
                    runs.filter(logged),
                    step.filter(logged),
                    epoch.filter(logged) if epoch is not None else pa.nulls(rows, pa.int64()),
                    pa.array([name] * rows, pa.string()),
                    values.filter(logged),
                ],
                schema=LONG_SCHEMA,
            )
        )
    if not parts:
        raise UserError(f"{label}: no numeric metric columns; {SHAPES}")
    return Source(pa.concat_tables(parts))


def _numbers(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """The column as float64, or None when it is not numbers (a text column is not a metric)."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.utf8_trim_whitespace(column)
    elif not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_null(column.type)):
        return None
    try:
        return pc.cast(column, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _whole(values: pa.ChunkedArray, name: str, label: str, allow_empty: bool) -> pa.ChunkedArray:
    if values.null_count and not allow_empty:
        raise UserError(f"{label}: column {name!r}: empty at row {pc.index(pc.is_null(values), True).as_py() + 1}")
    try:
        return pc.cast(values, pa.int64())  # a safe cast: 1.5 is refused, 2.0 is 2
    except pa.ArrowInvalid:
        raise UserError(f"{label}: column {name!r}: must be whole numbers") from None
