"""Printing results: tables for people, csv/json/parquet for pipes. Data goes to stdout;
progress and messages go to stderr."""

from __future__ import annotations

import io
import json
import math
import sys
from decimal import Decimal
from enum import Enum

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from rnnsweep.service.errors import UserError


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def stdout_console() -> Console:
    # Piped or captured output gets whole rows; a terminal gets its own width.
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 10_000)


def stderr_console() -> Console:
    return Console(stderr=True, soft_wrap=True)  # messages stay whole lines in logs


def format_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def rich_table(table: pa.Table, title: str | None = None) -> Table:
    view = Table(title=title, header_style="bold", title_justify="left")
    for name in table.column_names:
        numeric = pa.types.is_integer(table.schema.field(name).type) or pa.types.is_floating(
            table.schema.field(name).type
        )
        view.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in table.to_pylist():
        view.add_row(*(format_cell(v) for v in row.values()))
    return view


def _flat(table: pa.Table) -> pa.Table:
    """CSV has no lists or structs: such columns (betas = [0.9, 0.999]) become JSON text."""
    for index, field in enumerate(table.schema):
        if pa.types.is_nested(field.type):
            text = [None if v is None else json.dumps(v, default=str) for v in table.column(index).to_pylist()]
            table = table.set_column(index, field.name, pa.array(text, pa.string()))
    return table


def _json_safe(value):
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def write_table(table: pa.Table, fmt: OutputFormat, output: str | None = None) -> None:
    """Render an Arrow table to stdout (or `output`, required for parquet on a terminal)."""
    if fmt is OutputFormat.table:
        if output:
            raise UserError("--output needs --format csv, json or parquet")
        stdout_console().print(rich_table(table))
        return
    buffer = io.BytesIO()
    if fmt is OutputFormat.csv:
        pacsv.write_csv(_flat(table), buffer)
    elif fmt is OutputFormat.json:
        rows = [{k: _json_safe(v) for k, v in row.items()} for row in table.to_pylist()]
        buffer.write((json.dumps(rows, default=str, indent=None) + "\n").encode())
    else:
        if output is None and sys.stdout.isatty():
            raise UserError("parquet is binary: pass --output FILE.parquet or pipe stdout to a file")
        pq.write_table(table, buffer)
    if output:
        with open(output, "wb") as f:
            f.write(buffer.getvalue())
    else:
        sys.stdout.buffer.write(buffer.getvalue())
        sys.stdout.flush()
