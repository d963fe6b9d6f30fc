"""Reading one CSV or Parquet table, with errors that name the file and the column."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from rnnsweep.service.errors import UserError

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
# Only empty cells and NULL are missing: "NaN" and "inf" are values.
NULLS = ["", "NULL", "null"]


def read_table(path: Path, types: dict[str, pa.DataType] | None = None, all_text: bool = False) -> pa.Table:
    """The file as Arrow; `types` fixes some CSV columns' types, `all_text` reads every CSV column as text."""
    label = str(path)
    names = column_names(path)
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UserError(f"{label}: column {twice[0]!r} appears twice; keep one")
    try:
        if path.suffix == ".csv":
            if all_text:
                names = pacsv.open_csv(path).schema.names
                types = {name: pa.string() for name in names}
            options = pacsv.ConvertOptions(null_values=NULLS, column_types=types or {}, strings_can_be_null=all_text)
            return pacsv.read_csv(path, convert_options=options)
        if path.suffix in (".parquet", ".pq"):
            return pq.read_table(path)
    except pa.ArrowInvalid as e:
        raise UserError(f"{label}: {_arrow_message(e, path)}") from None
    raise UserError(f"{label}: must be a .csv or .parquet file")


def _arrow_message(error: Exception, path: Path) -> str:
    text = str(error).splitlines()[0]
    if "CSV column #" in text:  # Arrow counts columns; people read names
        index = int(text.split("#")[1].split(":")[0])
        with path.open(newline="") as file:
            header = next(csv.reader(file), [])
        return f"column {header[index] if index < len(header) else index}: {text.split(': ', 1)[1]}"
    return f"cannot read it ({text})"


def column_names(path: Path) -> list[str]:
    """The header alone, so a file's shape is known before its columns are typed."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if path.suffix == ".csv":
        with path.open(newline="") as file:
            return next(csv.reader(file), [])
    if path.suffix in (".parquet", ".pq"):
        try:
            return pq.read_schema(path).names
        except pa.ArrowInvalid as e:
            raise UserError(f"{path}: {_arrow_message(e, path)}") from None
    raise UserError(f"{path}: must be a .csv or .parquet file")


def table_files(folder: Path) -> list[Path]:
    """Every .csv / .parquet under the folder, in path order; hidden files and folders skipped."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix in TABLE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
