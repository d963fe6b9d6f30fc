"""Read-only, sandboxed access to the warehouse for `rnnsweep query`, `status` and reports.

A read-only DuckDB connection alone still reads arbitrary files, writes with COPY, ATTACHes
other databases and installs extensions (DuckDB: "treat SQL like code"). This one turns
external access and extension loading off, caps memory and threads, locks the
configuration, and interrupts a query that runs past its time limit.

`stream_query` is what `rnnsweep query` prints through: one statement only, every column in a
type the output format can hold (else as text), written batch by batch as DuckDB produces it,
and the time limit covers fetching and writing alike. A table for people stops at
TABLE_ROWS rows; the whole result goes to a file with csv, json or parquet.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from rnnsweep.service.errors import UserError
from rnnsweep.service.render import OutputFormat, write_batches, write_table
from rnnsweep.service.warehouse import analysis_files, as_temp_view, connect_with_retry

SANDBOX = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "memory_limit": "2GB",
    "threads": 2,
    "lock_configuration": True,
}
DEFAULT_TIMEOUT_SECONDS = 60.0
TABLE_ROWS = 1_000  # a terminal table past this is unreadable, and rendering it takes minutes
BATCH_ROWS = 100_000
# DuckDB types an output format cannot hold as Arrow gives them (intervals in CSV or Parquet,
# 'infinity' timestamps in Python, bit strings, big integers, unions): such columns go out
# as DuckDB's own text for them. Nested types are matched by what they hold.
NOT_TEXT = re.compile(r"INTERVAL|UNION|\bBIT\b|BIGNUM|VARINT|BLOB|DATE|TIME|ENUM")
NOT_PARQUET = re.compile(r"INTERVAL|UNION|\bBIT\b|BIGNUM|VARINT")


@contextmanager
def read_only(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    if not path.exists():
        raise UserError(f"{path}: no warehouse here yet; run `rnnsweep submit GRID` first, or pass --warehouse")
    con = connect_with_retry(path, read_only=True, config=SANDBOX)
    try:
        for file in analysis_files():
            try:
                con.execute(as_temp_view(file.read_text()))
            except duckdb.Error as e:
                raise UserError(f"{file}: cannot build this view: {str(e).strip().splitlines()[0]}") from None
        yield con
    finally:
        con.close()


SET_THRESHOLDS = "set variable rnnsweep_thresholds = map($names, $values)"


def run_query(
    path: Path,
    sql: str,
    params: dict | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    thresholds: dict[str, float] | None = None,
) -> pa.Table:
    """Run one SQL statement against the warehouse; a user-facing error on bad SQL or timeout.

    `thresholds` override the diagnosis thresholds for this query only (the thresholds view
    reads them from the session variable rnnsweep_thresholds).
    """
    with read_only(path) as con, _time_limit(con, timeout):
        if thresholds:
            con.execute(SET_THRESHOLDS, {"names": list(thresholds), "values": [float(v) for v in thresholds.values()]})
        relation = _one_statement(con, sql, params)
        return relation.to_arrow_table() if relation is not None else pa.table({})


@dataclass(frozen=True)
class Printed:
    rows: int
    more: bool  # a table stopped at TABLE_ROWS and the result has more


def stream_query(
    path: Path,
    sql: str,
    fmt: OutputFormat,
    output: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Printed:
    """Run one statement and write its result as it comes; the time limit covers the writing."""
    if output is not None:
        if fmt is OutputFormat.table:
            raise UserError("--output needs --format csv, json or parquet")
        check_output(output, path)
    with read_only(path) as con, _time_limit(con, timeout) as check:
        relation = _one_statement(con, sql)
        if relation is None:
            relation = con.sql("select 'ok' as result where false")
        relation = printable(relation, fmt)
        if fmt is OutputFormat.table:
            shown = relation.limit(TABLE_ROWS + 1).to_arrow_table()
            write_table(shown.slice(0, TABLE_ROWS), fmt)
            return Printed(min(shown.num_rows, TABLE_ROWS), shown.num_rows > TABLE_ROWS)
        rows = write_batches(relation.to_arrow_reader(BATCH_ROWS), fmt, output, check)
        return Printed(rows, False)


def printable(relation: duckdb.DuckDBPyRelation, fmt: OutputFormat) -> duckdb.DuckDBPyRelation:
    """The relation with each column the format cannot hold cast to DuckDB's text for it."""
    unfit = NOT_PARQUET if fmt is OutputFormat.parquet else NOT_TEXT
    casts = [bool(unfit.search(str(kind))) for kind in relation.types]
    if not any(casts):
        return relation
    columns = [
        f"#{i}{'::varchar' if cast else ''} as {_quoted(name)}"
        for i, (name, cast) in enumerate(zip(relation.columns, casts, strict=True), start=1)
    ]
    return relation.project(", ".join(columns))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _one_statement(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None):
    try:
        count = len(duckdb.extract_statements(sql))
        if count != 1:
            raise UserError(
                "query: no SQL statement given"
                if count == 0
                else f"query: one statement at a time, found {count}; run each on its own"
            )
        return con.sql(sql, params=params or {})
    except duckdb.InterruptException:
        raise  # _time_limit says what happened
    except duckdb.Error as e:
        raise UserError(f"query failed: {str(e).strip().splitlines()[0]}") from None


@contextmanager
def _time_limit(con: duckdb.DuckDBPyConnection, timeout: float):
    """Interrupt the connection at the deadline; yields a check for the time spent writing,
    when DuckDB is not running and an interrupt would go unnoticed."""
    deadline = time.monotonic() + timeout
    stopped = UserError(f"query stopped after {timeout:g} s (--timeout to allow longer)")

    def check() -> None:
        if time.monotonic() > deadline:
            raise stopped

    timer = threading.Timer(timeout, con.interrupt)
    timer.start()
    try:
        yield check
    except duckdb.InterruptException:
        raise stopped from None
    except duckdb.Error as e:  # raised while fetching a streamed result
        raise UserError(f"query failed: {str(e).strip().splitlines()[0]}") from None
    finally:
        timer.cancel()


def check_output(output: Path, warehouse: Path) -> None:
    """An output file may not be the warehouse, its own files or a sweep's logs, and must
    have a folder to go into; one line says which."""
    target = Path(os.path.abspath(output))
    if target.is_dir():
        raise UserError(f"--output {output}: is a folder; name a file in it")
    if not target.parent.is_dir():
        raise UserError(f"--output {output}: no folder {target.parent}; create it first")
    base = Path(os.path.abspath(warehouse))
    own = {base, *(base.with_name(base.name + suffix) for suffix in (".wal", ".tmp", ".driver.lock"))}
    if target in own or target.resolve() in {p.resolve() for p in own}:
        raise UserError(f"--output {output}: is the warehouse's own file; writing it would destroy the warehouse")
    for storage in _storages(warehouse):
        if target.resolve().is_relative_to(storage):
            raise UserError(f"--output {output}: is inside the sweeps' metric logs ({storage}); write it elsewhere")


def _storages(warehouse: Path) -> list[Path]:
    """The local folders this warehouse's sweeps log into (imported sweeps have none)."""
    if not warehouse.is_file():
        return []
    uris = run_query(warehouse, "select distinct storage_uri from sweeps").column("storage_uri").to_pylist()
    local = [uri.removeprefix("file://") for uri in uris if uri and (uri.startswith("file://") or "://" not in uri)]
    return [Path(path).resolve() for path in local]
