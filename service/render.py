"""Printing results: tables for people, csv/json/parquet for pipes. Data goes to stdout;
progress and messages go to stderr."""

from __future__ import annotations

import io
import json
import math
import os
import sys
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table
from rich.text import Text

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
        view.add_row(*(Text(format_cell(v)) for v in row.values()))  # a value is never markup: [x] stays
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
    write_batches(table.to_reader(), fmt, output)


def write_batches(
    batches: pa.RecordBatchReader, fmt: OutputFormat, output: str | Path | None = None, between=None
) -> int:
    """Write csv, json or parquet batch by batch as the reader yields them, so a result of
    millions of rows never sits whole in memory; `between()` runs after each batch (a
    deadline check). A file is written beside `output` and renamed when complete, so a
    failed or stopped query leaves no half file. Returns the rows written."""
    if fmt is OutputFormat.table:
        raise ValueError("a table is rendered whole: write_table")
    if fmt is OutputFormat.parquet and output is None and sys.stdout.isatty():
        raise UserError("parquet is binary: pass --output FILE.parquet or pipe stdout to a file")
    if output is None:
        try:
            return _write(batches, fmt, sys.stdout.buffer, between)
        except BrokenPipeError:  # `| head`: the reader has what it wanted
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- so the exit flush does not fail again
            return 0
    target = Path(output)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("wb") as sink:
            rows = _write(batches, fmt, sink, between)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return rows


def _write(batches: pa.RecordBatchReader, fmt: OutputFormat, sink: BinaryIO, between) -> int:
    rows = 0
    if fmt is OutputFormat.parquet:
        buffer = pa.BufferOutputStream()  # parquet's footer comes last: stdout may not seek
        with pq.ParquetWriter(buffer, batches.schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
                if between:
                    between()
        sink.write(buffer.getvalue().to_pybytes())
        sink.flush()
        return rows
    first = True
    if fmt is OutputFormat.json:
        sink.write(b"[")
    for batch in batches:
        table = pa.Table.from_batches([batch], batches.schema)
        if fmt is OutputFormat.csv:
            buffer = io.BytesIO()
            pacsv.write_csv(_flat(table), buffer, pacsv.WriteOptions(include_header=first))
            sink.write(buffer.getvalue())
        elif table.num_rows:
            text = ", ".join(
                json.dumps({k: _json_safe(v) for k, v in row.items()}, default=str) for row in table.to_pylist()
            )
            sink.write(((", " if rows else "") + text).encode())
        first = False
        rows += batch.num_rows
        sink.flush()
        if between:
            between()
    if fmt is OutputFormat.csv and first:  # no batch at all: the header alone
        pacsv.write_csv(_flat(batches.schema.empty_table()), sink)
    if fmt is OutputFormat.json:
        sink.write(b"]\n")
    sink.flush()
    return rows
