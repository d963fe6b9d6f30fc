"""A loader killed mid-load (SIGKILL, at varying moments) leaves a warehouse that opens, and
each metric chunk is in it wholly or not at all: the rows always match the load ledger.
A later load brings in exactly what is missing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnsweep.jobs.metric_log import MetricLog, attempt_dir, claim_attempt, list_chunks, resolve_storage
from rnnsweep.service.query import run_query
from rnnsweep.service.warehouse import Warehouse
from tests.conftest import tiny_trial

pytestmark = pytest.mark.slow

RUNS, CHUNKS, ROWS_PER_STEP, STEPS_PER_CHUNK = 12, 4, 5, 4_000

LOADER = """
import sys
from pathlib import Path
from rnnsweep.jobs.metric_log import list_chunks, resolve_storage
from rnnsweep.service.warehouse import Warehouse
warehouse, storage, run_ids = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
fs, base = resolve_storage(storage)
for run_id in run_ids:  # one load window per run, as the driver does
    with Warehouse.open(warehouse) as wh:
        wh.load_chunks(fs, list_chunks(fs, base, "t", run_id))
    print("loaded", run_id, flush=True)
"""


def write_chunks(storage: Path) -> list[str]:
    """RUNS runs x CHUNKS chunks x 20,000 rows: loads long enough to be killed inside."""
    fs, base = resolve_storage(str(storage))
    run_ids = []
    for seed in range(RUNS):
        trial = tiny_trial(top={"seed": seed})
        attempt = claim_attempt(fs, base, trial.sweep, trial.run_id, "test")
        log = MetricLog(fs, attempt_dir(base, trial.sweep, trial.run_id, attempt), trial.run_id, attempt)
        for chunk in range(CHUNKS):
            for step in range(chunk * STEPS_PER_CHUNK, (chunk + 1) * STEPS_PER_CHUNK):
                log.add(step, 0, {f"m{i}": step * 0.5 + i for i in range(ROWS_PER_STEP)})
            log.flush()
        run_ids.append(trial.run_id)
    return run_ids


def consistent(warehouse: Path) -> tuple[int, int]:
    """(rows, chunks) in the warehouse, after checking rows match the ledger exactly."""
    state = run_query(
        warehouse,
        "select (select count(*) from metrics) as rows, (select coalesce(sum(rows), 0) from metric_chunks) as ledger_rows, "
        "(select count(*) from metric_chunks) as chunks, "
        "(select count(*) - count(distinct (run_id, step, metric)) from metrics) as dupes",
    ).to_pylist()[0]
    assert state["rows"] == state["ledger_rows"], state  # no chunk half in
    assert state["dupes"] == 0
    return state["rows"], state["chunks"]


def test_a_loader_killed_mid_load_never_leaves_half_a_chunk(tmp_path):
    storage, warehouse = tmp_path / "logs", tmp_path / "wh.duckdb"
    run_ids = write_chunks(storage)
    with Warehouse.open(warehouse):
        pass  # the schema exists before the first kill
    per_chunk = ROWS_PER_STEP * STEPS_PER_CHUNK
    kills = 0
    for delay in (0.4, 0.9, 1.5, 2.2):
        loader = subprocess.Popen(
            [sys.executable, "-c", LOADER, str(warehouse), str(storage), *run_ids], stdout=subprocess.PIPE, text=True
        )
        time.sleep(delay)
        if loader.poll() is None:
            loader.send_signal(signal.SIGKILL)
            kills += 1
        loader.communicate()
        rows, chunks = consistent(warehouse)
        assert rows == chunks * per_chunk
    assert kills >= 2, "the loads finished before they could be interrupted; make the chunks bigger"
    # a clean load completes the set: every chunk exactly once
    fs, base = resolve_storage(str(storage))
    with Warehouse.open(warehouse) as wh:
        wh.load_chunks(fs, [c for r in run_ids for c in list_chunks(fs, base, "t", r)])
    assert consistent(warehouse) == (RUNS * CHUNKS * per_chunk, RUNS * CHUNKS)


def test_a_query_past_the_memory_limit_fails_in_one_line(tmp_path):
    from rnnsweep.service.errors import UserError

    warehouse = tmp_path / "wh.duckdb"
    with Warehouse.open(warehouse):
        pass
    hungry = "select list(repeat('x', 1000)) from range(5000000)"  # ~5 GB of strings, past the 2 GB limit
    with pytest.raises(UserError, match=r"query failed: Out of Memory Error"):
        run_query(warehouse, hungry)
    assert run_query(warehouse, "select count(*) as n from runs").to_pylist() == [{"n": 0}]
