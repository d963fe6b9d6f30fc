"""rnnsweep's own import format: one row per (run, step, metric), CSV or Parquet."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rnnsweep.service.errors import UserError
from rnnsweep.service.importers.files import read_table
from rnnsweep.service.importers.source import LONG_SCHEMA, Source

COLUMNS = {field.name: field.type for field in LONG_SCHEMA}


def is_long(column_names: list[str]) -> bool:
    return {"metric", "value"} <= set(column_names)


def read(path: Path) -> Source:
    return from_table(read_table(path, COLUMNS), str(path))


def from_table(table: pa.Table, label: str) -> Source:
    """Typed and checked; an empty `value` is NaN (pandas writes NaN as an empty cell or a null)."""
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise UserError(f"{label}: missing column {missing[0]!r} (a metrics file has columns {', '.join(COLUMNS)})")
    columns = {}
    for name, kind in COLUMNS.items():
        column = table.column(name)
        # Arrow would read true as 1.0 and a date as a day count: a number column holds numbers
        if kind != pa.string() and (pa.types.is_boolean(column.type) or pa.types.is_temporal(column.type)):
            raise UserError(f"{label}: column {name!r}: must be {_kind_name(kind)} (found {column.type})")
        try:
            columns[name] = column.cast(kind) if name != "run_id" else pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise UserError(f"{label}: column {name!r}: must be {_kind_name(kind)} (found {column.type})") from None
        if name != "value" and columns[name].null_count:
            row = pc.index(pc.is_null(columns[name]), True).as_py()
            raise UserError(f"{label}: column {name!r}: empty at row {row + 1}")
    return Source(pa.table(columns, schema=LONG_SCHEMA))


def _kind_name(kind: pa.DataType) -> str:
    return "integers" if pa.types.is_integer(kind) else "numbers" if pa.types.is_floating(kind) else "text"
