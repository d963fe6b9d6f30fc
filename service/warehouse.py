"""The warehouse: one DuckDB file, written by exactly one process, loaded from Arrow.

Raw tables (`sweeps`, `runs`, `metrics`, and the load ledger `metric_chunks`) are created
here; the analysis views come from `analysis/*.sql`, built in file-name order whenever a
writer opens with `build_views=True`.

Writers open the file for as short a time as they can (one load, then close), so
`rnnsweep query` and `status` get in between while a sweep runs. Exactly-once loading rests
on the ledger: a chunk (run, attempt, chunk) goes in with its ledger row in one
transaction, and a chunk already in the ledger is never read again. A chunk written with
another metric schema version is refused, not guessed at.

Every write is a method of `Warehouse` and every SQL statement that writes lives in this
module: the CLI, submit, sync, import and diagnose call methods, never the connection.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs

from rnnsweep.jobs.metric_log import METRIC_SCHEMA, SCHEMA_VERSION, ChunkFile, chunk_schema_version, read_chunk
from rnnsweep.service.errors import UserError, WarehouseBusy

STATUSES = ("pending", "running", "finished", "failed", "stopped", "cancelled")
DONE_STATUSES = ("finished", "stopped")  # a stopped run (went NaN) is a result, not a gap
LOCK_WAIT_SECONDS = 10.0
DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file
# The writer's connection, once the warehouse's own files are open, is locked like a reader's
# (query.py): a crafted file's views cannot read other files through it, and a file of another
# kind cannot make DuckDB fetch an extension to read it.
WRITE_LOCK = (
    "set enable_external_access = false",
    "set autoinstall_known_extensions = false",
    "set autoload_known_extensions = false",
    "set allow_community_extensions = false",
    "set lock_configuration = true",
)
RAW_TABLES = ("sweeps", "runs", "metrics", "sweep_jobs", "threshold_overrides", "metric_chunks")

SCHEMA = """
create table if not exists sweeps (
    name        varchar primary key,
    grid_path   varchar not null,
    grid_text   varchar not null,   -- the grid file as submitted, verbatim
    storage_uri varchar not null,   -- where the sweep's metric logs live
    axes        varchar[] not null, -- grid keys with more than one value
    created_at  timestamp not null,
    updated_at  timestamp not null
);
create table if not exists runs (
    run_id       varchar primary key, -- hash of the resolved config (resources excluded)
    sweep        varchar not null,
    trial_index  integer not null,
    status       varchar not null,    -- pending|running|finished|failed|stopped|cancelled
    source       varchar not null default 'rnnsweep', -- or 'import' (rnnsweep import)
    attempts     integer not null,
    config       json not null,       -- the full resolved trial config
    node         varchar,
    submitted_at timestamp,
    started_at   timestamp,
    ended_at     timestamp,
    steps        bigint,              -- optimizer steps so far (the last logged step)
    stop_reason  varchar,
    error        varchar
);
create table if not exists metrics (
    run_id  varchar not null,
    attempt integer not null,
    chunk   integer not null,
    step    bigint not null,
    epoch   integer not null,
    metric  varchar not null,
    value   double                    -- NaN and Inf are values, not missing rows
);
create table if not exists sweep_jobs (
    job_id       varchar primary key, -- Ray Job submission id of a detached sweep
    sweep        varchar not null,
    address      varchar not null,    -- the Ray job server it went to
    storage_uri  varchar not null,
    submitted_at timestamp not null
);
create table if not exists threshold_overrides (
    name   varchar primary key,       -- a name from the thresholds view
    value  double not null,
    set_at timestamp not null
);
create table if not exists metric_chunks (
    run_id    varchar not null,
    attempt   integer not null,
    chunk     integer not null,
    rows      bigint not null,
    loaded_at timestamp not null,
    primary key (run_id, attempt, chunk)
);
"""

# One upsert for every sweep: submitted ones store their grid and storage; imported ones
# store '' for both (their rows come from a file, not a grid, and leave no logs to sync).
UPSERT_SWEEP = """
insert into sweeps values ($name, $grid_path, $grid_text, $storage_uri, $axes, now(), now())
on conflict (name) do update set
    grid_path = excluded.grid_path, grid_text = excluded.grid_text,
    storage_uri = excluded.storage_uri, axes = excluded.axes, updated_at = now()
"""
NOT_TABLES = """
select table_name from information_schema.tables
where table_schema = 'main' and table_type <> 'BASE TABLE' and list_contains($names, table_name)
"""
INSERT_NEW_RUNS = """
insert into runs (run_id, sweep, trial_index, status, attempts, config)
select run_id, sweep, trial_index, 'pending', 0, config from new_runs
on conflict (run_id) do nothing
"""
RUN_STATUSES = "select run_id, status from runs where sweep = $sweep"
MARK_RUNNING = """
update runs set status = 'running', submitted_at = now(), error = null, stop_reason = null
where list_contains($run_ids, run_id)
"""
MARK_CANCELLED = """
update runs set status = 'cancelled', ended_at = now()
where list_contains($run_ids, run_id) and status in ('pending', 'running')
"""
LEDGER_KEYS = """
select run_id, attempt, chunk from metric_chunks where list_contains($run_ids, run_id)
"""
INSERT_METRICS = "insert into metrics select * from incoming_metrics"
# Steps so far, kept current as chunks land: the analysis windows each run by it.
ADVANCE_STEPS = """
update runs set steps = greatest(coalesce(runs.steps, 0), latest.step)
from (select run_id, max(step) as step from incoming_metrics group by run_id) as latest
where runs.run_id = latest.run_id
"""
INSERT_LEDGER = "insert into metric_chunks select *, now() from incoming_ledger"
RECORD_OUTCOMES = """
update runs set
    status = o.status, attempts = o.attempt + 1, node = o.node,
    started_at = to_timestamp(o.started_at), ended_at = to_timestamp(o.ended_at),
    steps = coalesce(o.steps, runs.steps), stop_reason = o.stop_reason, error = o.error
from outcomes o
where runs.run_id = o.run_id
"""
# A retried run keeps one row per (step, metric): the latest attempt's rows replace
# whatever an earlier, dead attempt logged from the step the latest one started at.
DROP_SUPERSEDED_ROWS = """
delete from metrics m using outcomes o
where m.run_id = o.run_id and m.attempt < o.attempt
  and m.step >= (select min(f.step) from metrics f where f.run_id = o.run_id and f.attempt = o.attempt)
"""
RECORD_JOB = "insert or replace into sweep_jobs values ($job_id, $sweep, $address, $storage_uri, now())"
SET_OVERRIDES = """
insert into threshold_overrides select name, value, now() from incoming_overrides
on conflict (name) do update set value = excluded.value, set_at = now()
"""
RESET_OVERRIDES = "delete from threshold_overrides where list_contains($names, name)"
SWEEP_SOURCES = "select distinct source from runs where sweep = $sweep"
SET_SWEEP_STORAGE = "update sweeps set storage_uri = $storage_uri, updated_at = now() where name = $name"
# An import replaces its runs whole: a corrected file re-imported leaves no stale rows.
DELETE_IMPORTED_METRICS = "delete from metrics where run_id in (select run_id from imported_runs)"
UPSERT_IMPORTED_RUNS = """
insert or replace into runs (run_id, sweep, trial_index, status, source, attempts, config, steps, ended_at)
select run_id, $sweep, trial_index, 'finished', 'import', 1, config, steps, now() from imported_runs
"""
INSERT_IMPORTED_METRICS = "insert into metrics select run_id, 0, 0, step, epoch, metric, value from imported_metrics"

OVERRIDE_SCHEMA = pa.schema([("name", pa.string()), ("value", pa.float64())])

OUTCOME_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("status", pa.string()),
        ("attempt", pa.int32()),
        ("node", pa.string()),
        ("started_at", pa.float64()),
        ("ended_at", pa.float64()),
        ("steps", pa.int64()),
        ("stop_reason", pa.string()),
        ("error", pa.string()),
    ]
)


def analysis_dir() -> Path:
    """analysis/ sits beside service/, in a checkout and in an installed wheel alike."""
    return Path(__file__).resolve().parent.parent / "analysis"


def analysis_files() -> list[Path]:
    """The built-in views in folder order, then the user's own from $RNNSWEEP_ANALYSIS (a
    folder of .sql files, each one `create or replace view`), which may build on them."""
    files = sorted(analysis_dir().glob("*.sql"))
    extra = os.environ.get("RNNSWEEP_ANALYSIS")
    if extra:
        folder = Path(extra)
        if not folder.is_dir():
            raise UserError(f"RNNSWEEP_ANALYSIS={extra}: not a folder of .sql files")
        files += sorted(folder.glob("*.sql"))
    return files


def as_temp_view(statement: str) -> str:
    """An analysis file's `create or replace view` as a temp view, for read-only connections:
    they shadow the views stored in the file, so reads always use the installed rules, even
    on a warehouse last written by an older rnnsweep."""
    return statement.replace("create or replace view ", "create or replace temp view ", 1)


def _is_lock_error(error: Exception) -> bool:
    return "lock" in str(error).lower()


def connect_with_retry(path: Path, read_only: bool, config: dict | None = None, wait: float = LOCK_WAIT_SECONDS):
    """Open the DuckDB file, waiting out another process's short write; one clear line if it lasts."""
    check_is_duckdb(path)
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.IOException as e:
            if not _is_lock_error(e):
                raise UserError(f"{path}: cannot open warehouse: {e}") from None
            if time.monotonic() >= deadline:
                holder = str(e).partition("Conflicting lock is held in")[2].split(". See")[0].strip()
                raise WarehouseBusy(
                    f"{path}: warehouse is locked by another writer ({holder or 'another process'}); "
                    "wait for it to finish or point --warehouse at another file"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def check_is_duckdb(path: Path) -> None:
    """A file that is there must be a DuckDB database: DuckDB would otherwise try to read it
    with an extension (SQLite's, fetched from the network)."""
    try:
        with path.open("rb") as file:
            head = file.read(12)
    except FileNotFoundError:
        return
    except OSError as e:
        raise UserError(f"{path}: cannot read the warehouse: {e.strerror}") from None
    if head and head[8:12] != DUCKDB_MAGIC:
        raise UserError(f"{path}: not a DuckDB file, so not a warehouse; point --warehouse at another file")


@dataclass
class Warehouse:
    con: duckdb.DuckDBPyConnection
    path: Path

    @classmethod
    @contextmanager
    def open(cls, path: Path, build_views: bool = False) -> Iterator[Warehouse]:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            in_the_way = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
            reason = f"{in_the_way} is a file, not a folder" if in_the_way else e.strerror
            raise UserError(f"{path}: cannot make the warehouse's folder: {reason}") from None
        con = connect_with_retry(path, read_only=False)
        try:
            for statement in WRITE_LOCK:
                con.execute(statement)
            crafted = [name for (name,) in con.execute(NOT_TABLES, {"names": list(RAW_TABLES)}).fetchall()]
            if crafted:
                raise UserError(f"{path}: not an rnnsweep warehouse: {crafted[0]!r} is not a table")
            con.execute(SCHEMA)
            warehouse = cls(con, path)
            if build_views:
                warehouse.build_views()
            yield warehouse
        finally:
            con.close()

    def build_views(self) -> None:
        """(Re)create every analysis view, in folder order: each file is one statement."""
        for file in analysis_files():
            try:
                self.con.execute(file.read_text())
            except duckdb.Error as e:
                raise UserError(f"{file}: cannot build this view: {str(e).strip().splitlines()[0]}") from None

    # -- sweeps and runs -------------------------------------------------------------

    def register_sweep(
        self, name: str, grid_path: str, grid_text: str, storage_uri: str, axes: list[str], trials: list
    ) -> dict[str, str]:
        """Record the sweep and any runs not seen before; returns every run's current status."""
        new_runs = pa.table(
            {
                "run_id": [t.run_id for t in trials],
                "sweep": [name] * len(trials),
                "trial_index": pa.array(range(len(trials)), pa.int32()),
                "config": [t.model_dump_json() for t in trials],
            }
        )
        self.con.begin()
        self._upsert_sweep(name, grid_path, grid_text, storage_uri, axes)
        self.con.register("new_runs", new_runs)
        self.con.execute(INSERT_NEW_RUNS)
        self.con.unregister("new_runs")
        self.con.commit()
        return dict(self.con.execute(RUN_STATUSES, {"sweep": name}).fetchall())

    def _upsert_sweep(self, name: str, grid_path: str, grid_text: str, storage_uri: str, axes: list[str]) -> None:
        self.con.execute(
            UPSERT_SWEEP,
            {"name": name, "grid_path": grid_path, "grid_text": grid_text, "storage_uri": storage_uri, "axes": axes},
        )

    def set_sweep_storage(self, name: str, storage_uri: str) -> None:
        """Point a sweep at other storage (`resume --storage`, after it was checked)."""
        self.con.execute(SET_SWEEP_STORAGE, {"name": name, "storage_uri": storage_uri})

    def sweep_sources(self, sweep: str) -> set[str]:
        """Where the sweep's runs came from: 'rnnsweep', 'import', both, or none yet."""
        return {source for (source,) in self.con.execute(SWEEP_SOURCES, {"sweep": sweep}).fetchall()}

    def import_runs(self, sweep: str, grid_path: str, axes: list[str], runs: pa.Table, metrics: pa.Table) -> None:
        """Replace imported runs and their metrics in one transaction.

        `runs` has run_id, trial_index, config and steps; `metrics` has run_id, step, epoch,
        metric and value. Imported rows take attempt 0, chunk 0 and no ledger row: they come
        from one file, not from chunks.
        """
        self.con.begin()
        self.con.register("imported_runs", runs)
        self.con.register("imported_metrics", metrics)
        self._upsert_sweep(sweep, grid_path, "", "", axes)
        self.con.execute(DELETE_IMPORTED_METRICS)
        self.con.execute(UPSERT_IMPORTED_RUNS, {"sweep": sweep})
        self.con.execute(INSERT_IMPORTED_METRICS)
        self.con.unregister("imported_runs")
        self.con.unregister("imported_metrics")
        self.con.commit()

    def record_job(self, job_id: str, sweep: str, address: str, storage_uri: str) -> None:
        """A detached sweep's Ray Job, so `attach` can find it later."""
        self.con.execute(RECORD_JOB, {"job_id": job_id, "sweep": sweep, "address": address, "storage_uri": storage_uri})

    def set_threshold_overrides(self, values: dict[str, float], reset: list[str]) -> None:
        """Per-warehouse threshold overrides, set and reset in one transaction (a name in both ends reset)."""
        self.con.begin()
        if values:
            overrides = pa.table({"name": list(values), "value": list(values.values())}, schema=OVERRIDE_SCHEMA)
            self.con.register("incoming_overrides", overrides)
            self.con.execute(SET_OVERRIDES)
            self.con.unregister("incoming_overrides")
        if reset:
            self.con.execute(RESET_OVERRIDES, {"names": list(reset)})
        self.con.commit()

    def mark_running(self, run_ids: list[str]) -> None:
        if run_ids:
            self.con.execute(MARK_RUNNING, {"run_ids": run_ids})

    def mark_cancelled(self, run_ids: list[str]) -> None:
        if run_ids:
            self.con.execute(MARK_CANCELLED, {"run_ids": run_ids})

    def record_outcomes(self, outcomes: list[dict]) -> None:
        """Final state of runs whose task ended, plus dropping rows of dead attempts."""
        if not outcomes:
            return
        table = pa.Table.from_pylist(outcomes, schema=OUTCOME_SCHEMA)
        self.con.begin()
        self.con.register("outcomes", table)
        self.con.execute(RECORD_OUTCOMES)
        self.con.execute(DROP_SUPERSEDED_ROWS)
        self.con.unregister("outcomes")
        self.con.commit()

    # -- metrics ---------------------------------------------------------------------

    def loaded_chunks(self, run_ids: list[str]) -> set[tuple[str, int, int]]:
        rows = self.con.execute(LEDGER_KEYS, {"run_ids": run_ids}).fetchall()
        return {(r, a, c) for r, a, c in rows}

    def load_chunks(self, fs: pafs.FileSystem, chunks: list[ChunkFile]) -> int:
        """Load the chunks not yet in the ledger, all in one transaction; returns rows added."""
        if not chunks:
            return 0
        known = self.loaded_chunks(sorted({c.run_id for c in chunks}))
        tables, ledger = [], []
        for chunk in chunks:
            if (chunk.run_id, chunk.attempt, chunk.chunk) in known:
                continue
            try:
                table = read_chunk(fs, chunk.path)
            except (OSError, pa.ArrowInvalid) as e:  # complete files only ever appear; say so if not
                print(f"rnnsweep: skipping unreadable metric chunk {chunk.path}: {e}", file=sys.stderr)
                continue
            version = chunk_schema_version(table)
            if version != SCHEMA_VERSION:  # columns may mean something else: refuse, never guess
                found = "no metric schema version" if version is None else f"metric schema version {version}"
                print(
                    f"rnnsweep: refusing metric chunk {chunk.path}: {found}, "
                    f"this rnnsweep reads version {SCHEMA_VERSION}",
                    file=sys.stderr,
                )
                continue
            tables.append(table.select(METRIC_SCHEMA.names).cast(METRIC_SCHEMA))
            ledger.append(
                {"run_id": chunk.run_id, "attempt": chunk.attempt, "chunk": chunk.chunk, "rows": table.num_rows}
            )
        if not tables:
            return 0
        incoming = pa.concat_tables(tables)
        ledger_table = pa.Table.from_pylist(
            ledger,
            schema=pa.schema(
                [("run_id", pa.string()), ("attempt", pa.int32()), ("chunk", pa.int32()), ("rows", pa.int64())]
            ),
        )
        self.con.begin()
        self.con.register("incoming_metrics", incoming)
        self.con.register("incoming_ledger", ledger_table)
        self.con.execute(INSERT_METRICS)
        self.con.execute(ADVANCE_STEPS)
        self.con.execute(INSERT_LEDGER)
        self.con.unregister("incoming_metrics")
        self.con.unregister("incoming_ledger")
        self.con.commit()
        return incoming.num_rows
