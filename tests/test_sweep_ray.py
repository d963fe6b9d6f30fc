"""End to end on a real local Ray (num_cpus=2, started once for this module): grid file in,
every run in the warehouse exactly once; resubmitting re-uses finished runs; a trial that
raises ends failed and one that goes NaN ends stopped, while the sweep goes on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from rnnsweep.service.cli import app
from rnnsweep.service.query import run_query
from rnnsweep.service.spec import load_grid
from rnnsweep.service.submit import run_sweep

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("local_ray")]

TINY_GRID = """
[sweep]
name = "tiny"
task = "events"
epochs = 2
evals_per_epoch = 2
[data]
n_train = 96
n_val = 32
seq_len = 12
n_features = 2
positive_rate = 0.1
[model]
cell = ["gru", "lstm"]
hidden = 8
[optimizer]
lr = [0.01, 0.001]
[training]
batch_size = 32
"""


def rows(warehouse, sql, params=None):
    return run_query(warehouse, sql, params).to_pylist()


def test_a_grid_runs_end_to_end_and_lands_exactly_once(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(TINY_GRID)
    warehouse = tmp_path / "data" / "wh.duckdb"
    runner = CliRunner()

    result = runner.invoke(app, ["submit", str(grid), "-w", str(warehouse), "-q", "-f", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "sweep tiny: 4 runs: finished 4 in" in result.stderr
    assert "`rnnsweep diagnose tiny` gives evidence and fixes" in result.stderr
    results = json.loads(result.stdout)
    assert len(results) == 4 and {r["status"] for r in results} == {"finished"}
    assert all(r["label"] in ("healthy", "overfitting", "l2_collapsed", "diverged", "constant_output") for r in results)
    assert all(r["best_val_loss"] is not None for r in results)

    runs = rows(warehouse, "select run_id, status, attempts, steps, node, started_at < ended_at as timed from runs")
    assert [(r["status"], r["attempts"], r["steps"], r["timed"]) for r in runs] == [("finished", 1, 6, True)] * 4
    assert all(r["node"] for r in runs)
    # one row per (run, step, metric), and every step of every run is there
    assert rows(warehouse, "select count(*) - count(distinct (run_id, step, metric)) as dupes from metrics") == [
        {"dupes": 0}
    ]
    steps = rows(
        warehouse,
        "select run_id, list(step order by step) as steps from metrics where metric = 'train_loss' group by run_id",
    )
    assert all(r["steps"] == [1, 2, 3, 4, 5, 6] for r in steps) and len(steps) == 4
    evals = rows(warehouse, "select count(*) as n from metrics where metric = 'val_loss'")
    assert evals == [{"n": 4 * (1 + 2 * 2)}]  # baseline + 2 per epoch x 2 epochs, per run
    ledger = rows(warehouse, "select sum(rows) = (select count(*) from metrics) as complete from metric_chunks")
    assert ledger == [{"complete": True}]
    # the grid file is kept verbatim, and the logs sit beside the warehouse by default
    assert rows(warehouse, "select grid_text from sweeps") == [{"grid_text": TINY_GRID}]
    assert len(list((tmp_path / "data" / "logs" / "tiny").glob("*/attempt-000/chunk-*.arrow"))) >= 4

    # submitting the same grid again re-uses every finished run and trains nothing
    metric_rows = rows(warehouse, "select count(*) as n from metrics")
    again = runner.invoke(app, ["submit", str(grid), "-w", str(warehouse), "-q", "-f", "csv"], catch_exceptions=False)
    assert again.exit_code == 0
    assert "(4 reused from earlier)" in again.stderr
    assert rows(warehouse, "select count(*) as n from metrics") == metric_rows
    assert rows(warehouse, "select max(attempts) as a from runs") == [{"a": 1}]

    status = runner.invoke(app, ["status", "tiny", "-w", str(warehouse), "-f", "json"])
    assert {(r["cell"], r["lr"], r["status"]) for r in json.loads(status.stdout)} == {
        ("gru", 0.01, "finished"),
        ("gru", 0.001, "finished"),
        ("lstm", 0.01, "finished"),
        ("lstm", 0.001, "finished"),
    }


def test_failing_and_diverging_trials_do_not_stop_the_sweep(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6, 2)).astype(np.float32)
    np.savez(tmp_path / "good.npz", x=x, y=np.arange(40) % 2)
    np.savez(tmp_path / "huge.npz", x=x, y=np.full((40, 1), 1e20, np.float32))  # MSE overflows: inf loss
    np.savez(tmp_path / "vanishing.npz", x=x, y=np.arange(40) % 2)
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(
        '[sweep]\nname = "mixed"\ntask = "file"\nepochs = 1\n'
        '[data]\npath = ["good.npz", "huge.npz", "vanishing.npz"]\n[model]\nhidden = 4\n[training]\nbatch_size = 20\n'
    )
    grid = load_grid(grid_file)  # every file is checked here ...
    (tmp_path / "vanishing.npz").unlink()  # ... and one disappears before its trial runs
    warehouse = tmp_path / "wh.duckdb"

    report = run_sweep(grid, warehouse, str(tmp_path / "logs"), show_progress=False)

    assert report.counts == {"finished": 1, "stopped": 1, "failed": 1}
    by_file = {
        r["data_path"].rpartition("/")[2]: r
        for r in rows(
            warehouse,
            "select p.data_path, r.status, r.stop_reason, r.error from run_params p join runs r using (run_id)",
        )
    }
    assert by_file["good.npz"]["status"] == "finished"
    assert by_file["huge.npz"] == {
        "data_path": by_file["huge.npz"]["data_path"],
        "status": "stopped",
        "stop_reason": "non-finite train loss at step 1",
        "error": None,
    }
    assert by_file["vanishing.npz"]["status"] == "failed"
    assert (
        by_file["vanishing.npz"]["error"].startswith("DataFileError: ")
        and "vanishing.npz: data.path: no such file" in by_file["vanishing.npz"]["error"]
    )
    nonfinite = rows(
        warehouse,
        "select value from metrics join run_params using (run_id) where metric = 'train_loss' and data_path like '%huge.npz'",
    )
    assert nonfinite == [{"value": float("inf")}]


def test_trials_that_need_a_gpu_are_refused_before_anything_runs(tmp_path):
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text('[sweep]\nname = "gpu"\nepochs = 1\n[resources]\ngpus_per_trial = 0.5\n')
    result = CliRunner().invoke(app, ["submit", str(grid_file), "-w", str(tmp_path / "wh.duckdb"), "-q"])
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == "error: resources.gpus_per_trial = 0.5, but the largest Ray node has 0 GPUs; set gpus_per_trial = 0 to train on CPU"
    )
    assert rows(tmp_path / "wh.duckdb", "select status, count(*) as n from runs group by all") == [
        {"status": "pending", "n": 1}
    ]


PACKED_GRID = """
[sweep]
name = "packed"
task = "events"
epochs = 2
seeds = [0, 1]
[data]
n_train = 96
n_val = 32
seq_len = 12
n_features = 2
[model]
cell = "gru"
hidden = 8
bidirectional = true
[optimizer]
lr = [0.01, 0.001, 0.03]
weight_decay = [0.0, 0.01]
[training]
batch_size = 32
"""


def test_trials_of_one_shape_train_in_packs_and_land_as_their_own_runs(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(PACKED_GRID)
    spec = load_grid(grid)
    packed, alone = tmp_path / "packed.duckdb", tmp_path / "alone.duckdb"
    run_sweep(spec, packed, str(tmp_path / "packed-logs"), show_progress=False)
    run_sweep(spec, alone, str(tmp_path / "alone-logs"), show_progress=False, pack=False)

    outcomes = [
        json.loads(p.read_text()) for p in (tmp_path / "packed-logs" / "packed").glob("*/attempt-*/outcome.json")
    ]
    assert len(outcomes) == 12 and all(o["status"] == "finished" for o in outcomes)
    assert {o["pack_size"] for o in outcomes} <= set(range(2, 13))  # packed, at least two packs for 2 CPUs
    assert len({(o["started_at"], o["pack_size"]) for o in outcomes}) >= 2
    assert (
        not list((tmp_path / "alone-logs" / "packed").glob("*/attempt-*/outcome.json"))[0]
        .read_text()
        .count("pack_size")
    )

    curve = "select run_id, step, metric, value from metrics order by all"
    packed_rows, alone_rows = rows(packed, curve), rows(alone, curve)
    assert [(r["run_id"], r["step"], r["metric"]) for r in packed_rows] == [
        (r["run_id"], r["step"], r["metric"]) for r in alone_rows
    ]
    assert [r["value"] for r in packed_rows] == pytest.approx([r["value"] for r in alone_rows], rel=1e-3, abs=1e-5)
    assert rows(packed, "select count(*) as n, min(status) as s, max(attempts) as a from runs") == [
        {"n": 12, "s": "finished", "a": 1}
    ]
