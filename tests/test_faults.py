"""Faults on a real local Ray: a cancelled sweep, a killed driver, a killed worker. The
invariants after each: the warehouse opens, every run ends in a final state, and there is
exactly one metric row per (run, step, metric), with no gaps in any finished run's steps.

Drivers under test run as subprocesses attached to this module's Ray (`--address`), so
killing one never leaves a Ray of its own behind; the fixture shuts the cluster down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rnnsweep.jobs.metric_log import list_chunks, read_chunk, resolve_storage
from rnnsweep.service.cli import app
from rnnsweep.service.errors import UserError
from rnnsweep.service.query import run_query
from rnnsweep.service.spec import load_grid
from rnnsweep.service.submit import run_sweep

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.usefixtures("local_ray")]

# Six trials of ~3 s each on 2 CPUs: long enough to interrupt in the middle.
GRID = """
[sweep]
name = "faulty"
task = "events"
epochs = 6
[data]
n_train = 768
n_val = 128
seq_len = 30
positive_rate = 0.1
[model]
cell = "gru"
hidden = 32
[optimizer]
lr = [0.001, 0.002, 0.003, 0.004, 0.005, 0.006]
[training]
batch_size = 16
[resources]
pack_size = 1  # these faults hit one trial per Ray task; packs have their own test below
"""


def rows(warehouse: Path, sql: str, params=None) -> list[dict]:
    return run_query(warehouse, sql, params).to_pylist()


def assert_invariants(warehouse: Path, finished: int) -> None:
    statuses = rows(warehouse, "select status, count(*) as n from runs group by all")
    assert statuses == [{"status": "finished", "n": finished}], statuses
    assert rows(warehouse, "select count(*) - count(distinct (run_id, step, metric)) as d from metrics") == [{"d": 0}]
    gaps = rows(
        warehouse,
        "select run_id, count(*) as n, max(step) as last from metrics "
        "where metric = 'train_loss' group by run_id having count(*) <> max(step)",
    )
    assert gaps == []  # steps 1..last, each once
    complete = rows(
        warehouse,
        "select count(*) as n from runs r where steps <> (select max(step) from metrics m where m.run_id = r.run_id)",
    )
    assert complete == [{"n": 0}]


def start_driver(grid: Path, warehouse: Path, address: str) -> subprocess.Popen:
    storage = str(warehouse.parent / "logs")
    command = [
        sys.executable,
        "-m",
        "rnnsweep.service",
        "submit",
        str(grid),
        "-w",
        str(warehouse),
        "-q",
        "--address",
        address,
        "--storage",
        storage,
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout: float = 90.0, every: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except UserError:  # the driver holds the write lock for a moment: ask again
            pass
        time.sleep(every)
    raise AssertionError("condition not met in time")


@pytest.fixture
def grid(tmp_path) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    return path


@pytest.fixture
def address(local_ray) -> str:
    return local_ray.get_runtime_context().gcs_address


def finished_runs(warehouse: Path) -> int:
    return rows(warehouse, "select count(*) as n from runs where status = 'finished'")[0]["n"]


def test_cancel_stops_a_sweep_keeps_its_metrics_and_resume_finishes_it(grid, tmp_path, address):
    warehouse = tmp_path / "wh.duckdb"
    driver = start_driver(grid, warehouse, address)
    try:
        wait_for(lambda: warehouse.exists() and finished_runs(warehouse) >= 1)
        # while it writes, reads either answer or say which lock to wait for: never a traceback
        for command in (
            ["status", "-w", str(warehouse)],
            ["query", "select count(*) from metrics", "-w", str(warehouse)],
        ):
            result = CliRunner().invoke(app, command)
            assert result.exit_code in (0, 3), result.stderr
            assert result.exit_code == 0 or result.stderr.startswith("error: ") and "locked" in result.stderr
        cancelled = CliRunner().invoke(app, ["cancel", "faulty", "-w", str(warehouse)])
        assert cancelled.exit_code == 0, cancelled.stderr
        assert cancelled.stderr.startswith("sweep faulty: interrupted its driver;")
        _, stderr = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode != 0 and "interrupted:" in stderr
    states = {r["status"] for r in rows(warehouse, "select status from runs")}
    assert states <= {"finished", "cancelled"} and "cancelled" in states
    # what the cancelled trials logged before they stopped is all in the warehouse
    fs, base = resolve_storage(str(tmp_path / "logs"))
    for run in rows(warehouse, "select run_id from runs where status = 'cancelled'"):
        on_disk = [
            (c.attempt, c.chunk, read_chunk(fs, c.path).num_rows)
            for c in list_chunks(fs, base, "faulty", run["run_id"])
        ]
        ledger = rows(
            warehouse,
            "select attempt, chunk, rows from metric_chunks where run_id = $r order by all",
            {"r": run["run_id"]},
        )
        loaded = rows(warehouse, "select count(*) as n from metrics where run_id = $r", {"r": run["run_id"]})[0]["n"]
        assert on_disk == [(r["attempt"], r["chunk"], r["rows"]) for r in ledger]
        assert loaded == sum(n for _, _, n in on_disk)

    resumed = CliRunner().invoke(app, ["resume", "faulty", "-w", str(warehouse), "-q", "-f", "csv"])
    assert resumed.exit_code == 0, resumed.stderr
    assert "reused from earlier" in resumed.stderr
    assert_invariants(warehouse, finished=6)


def test_a_killed_driver_leaves_a_consistent_warehouse_and_resume_completes(grid, tmp_path, address):
    warehouse = tmp_path / "wh.duckdb"
    driver = start_driver(grid, warehouse, address)
    try:
        wait_for(lambda: warehouse.exists() and finished_runs(warehouse) >= 1)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        driver.kill()
        driver.communicate()
    # the file opens and what it holds is consistent: no duplicates, stale "running" runs allowed
    assert rows(warehouse, "select count(*) - count(distinct (run_id, step, metric)) as d from metrics") == [{"d": 0}]
    assert {r["status"] for r in rows(warehouse, "select status from runs")} <= {"finished", "running", "pending"}
    resumed = CliRunner().invoke(app, ["resume", "faulty", "-w", str(warehouse), "-q"])
    assert resumed.exit_code == 0, resumed.stderr
    assert_invariants(warehouse, finished=6)


def test_a_worker_killed_mid_trial_resumes_from_its_checkpoint_and_leaves_no_duplicates(tmp_path):
    text = GRID.replace("lr = [0.001, 0.002, 0.003, 0.004, 0.005, 0.006]", "lr = [0.003, 0.004]").replace(
        "epochs = 6", "epochs = 10"
    )
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(text)  # 480 steps per trial: a chunk is on disk at step 250
    spec = load_grid(grid_file)
    warehouse, storage = tmp_path / "wh.duckdb", tmp_path / "logs"
    victim = spec.trials[0]
    attempt0 = storage / "faulty" / victim.run_id / "attempt-000"

    outcome = {}
    worker = threading.Thread(
        target=lambda: outcome.update(report=run_sweep(spec, warehouse, str(storage), show_progress=False))
    )
    worker.start()
    checkpoint = storage / "faulty" / victim.run_id / "checkpoint.pt"
    wait_for(lambda: checkpoint.exists(), every=0.05)  # written right after the first chunk
    pid = json.loads((attempt0 / "started.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)  # the Ray worker process running that trial, by its own pid
    worker.join(timeout=180)
    assert not worker.is_alive()

    assert outcome["report"].counts == {"finished": 2}
    attempts = rows(warehouse, "select attempts from runs where run_id = $r", {"r": victim.run_id})
    assert attempts == [{"attempts": 2}]
    # the retry went on from the checkpoint: the dead attempt's rows stand up to it, the new one's after
    spans = rows(
        warehouse,
        "select attempt, min(step) as first, max(step) as last from metrics "
        "where run_id = $r and metric = 'train_loss' group by attempt order by attempt",
        {"r": victim.run_id},
    )
    assert [s["attempt"] for s in spans] == [0, 1]
    assert spans[0]["first"] == 1 and spans[1]["first"] == spans[0]["last"] + 1 > 1
    assert_invariants(warehouse, finished=2)


def test_a_worker_killed_mid_pack_resumes_both_members_from_their_checkpoints(tmp_path):
    text = GRID.replace("lr = [0.001, 0.002, 0.003, 0.004, 0.005, 0.006]", "lr = [0.003, 0.004]")
    text = text.replace("epochs = 6", "epochs = 10").replace("pack_size = 1", "pack_size = 2")
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(text)  # one pack of two, 480 steps: its first checkpoints are on disk at step 250
    spec = load_grid(grid_file)
    warehouse, storage = tmp_path / "wh.duckdb", tmp_path / "logs"
    runs = [storage / "faulty" / t.run_id for t in spec.trials]

    outcome = {}
    worker = threading.Thread(
        target=lambda: outcome.update(report=run_sweep(spec, warehouse, str(storage), show_progress=False))
    )
    worker.start()
    wait_for(lambda: all((run / "checkpoint.pt").exists() for run in runs), every=0.05)
    pid = json.loads((runs[0] / "attempt-000" / "started.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)  # the Ray worker training the pack, by its own pid
    worker.join(timeout=180)
    assert not worker.is_alive()

    assert outcome["report"].counts == {"finished": 2}
    assert rows(warehouse, "select attempts from runs") == [{"attempts": 2}] * 2
    # Ray's retry went on from the checkpoints: each member's dead attempt stands up to its
    # checkpoint, the new attempt's rows after, step for step
    spans = rows(
        warehouse,
        "select run_id, attempt, min(step) as first, max(step) as last from metrics "
        "where metric = 'train_loss' group by all order by run_id, attempt",
    )
    assert [s["attempt"] for s in spans] == [0, 1, 0, 1]
    for dead, retried in (spans[0:2], spans[2:4]):
        assert dead["first"] == 1 and retried["first"] == dead["last"] + 1 > 1
    assert_invariants(warehouse, finished=2)
