"""Read-only, sandboxed access to the warehouse for `rnnsweep query`, `status` and reports.

A read-only DuckDB connection alone still reads arbitrary files, writes with COPY, ATTACHes
other databases and installs extensions (DuckDB: "treat SQL like code"). This one turns
external access and extension loading off, caps memory and threads, locks the
configuration, and interrupts a query that runs past its time limit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from rnnsweep.service.errors import UserError
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
    with read_only(path) as con:
        if thresholds:
            con.execute(SET_THRESHOLDS, {"names": list(thresholds), "values": [float(v) for v in thresholds.values()]})
        timer = threading.Timer(timeout, con.interrupt)
        timer.start()
        try:
            relation = con.sql(sql, params=params or {})
            return relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.InterruptException:
            raise UserError(f"query stopped after {timeout:g} s (--timeout to allow longer)") from None
        except duckdb.Error as e:
            first_line = str(e).strip().splitlines()[0]
            raise UserError(f"query failed: {first_line}") from None
        finally:
            timer.cancel()
