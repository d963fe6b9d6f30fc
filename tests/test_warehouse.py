"""The warehouse: Arrow chunks in, exactly once; runs and sweeps; analysis views; the
read-only sandbox; and a clear message when another process holds the write lock."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from rnnsweep.jobs.config import TrialConfig
from rnnsweep.jobs.metric_log import METRIC_SCHEMA, MetricLog, attempt_dir, claim_attempt, list_chunks, resolve_storage
from rnnsweep.service.errors import UserError, WarehouseBusy
from rnnsweep.service.grid_keys import SECTIONS, SWEEP_ONLY
from rnnsweep.service.query import run_query
from rnnsweep.service.reports import column_of
from rnnsweep.service.warehouse import Warehouse, analysis_files, connect_with_retry
from tests.conftest import tiny_trial


def open_log(storage: Path, trial: TrialConfig) -> MetricLog:
    """A fresh attempt's metric log, as a worker opens one."""
    fs, base = resolve_storage(str(storage))
    attempt = claim_attempt(fs, base, trial.sweep, trial.run_id, "test-node")
    return MetricLog(fs, attempt_dir(base, trial.sweep, trial.run_id, attempt), trial.run_id, attempt)


def write_attempt(storage: Path, trial: TrialConfig, steps: range, chunk_every: int = 2, value=None) -> int:
    """Log train_loss and lr at each step, as a worker would; returns the attempt number."""
    log = open_log(storage, trial)
    attempt = log.attempt
    for step in steps:
        loss = value if value is not None else 1.0 / step + attempt
        log.add(step, 1, {"train_loss": loss, "lr": 0.01})
        if step % chunk_every == 0:
            log.flush()
    log.flush()
    return attempt


def load_all(warehouse: Path, storage: Path, trials: list[TrialConfig]) -> int:
    fs, base = resolve_storage(str(storage))
    with Warehouse.open(warehouse) as wh:
        return wh.load_chunks(fs, [c for t in trials for c in list_chunks(fs, base, t.sweep, t.run_id)])


def outcome(trial: TrialConfig, attempt: int, status: str = "finished", steps: int = 5) -> dict:
    return {
        "run_id": trial.run_id,
        "status": status,
        "attempt": attempt,
        "node": "test-node",
        "started_at": time.time() - 1,
        "ended_at": time.time(),
        "steps": steps,
        "stop_reason": None,
        "error": None,
    }


@pytest.fixture
def trials() -> list[TrialConfig]:
    return [tiny_trial(top={"seed": s}) for s in range(3)]


@pytest.fixture
def warehouse(tmp_path, trials) -> Path:
    path = tmp_path / "wh.duckdb"
    with Warehouse.open(path, build_views=True) as wh:
        wh.register_sweep("t", "grid.toml", "[sweep]\n", str(tmp_path / "logs"), ["sweep.seeds"], trials)
    return path


def scalar(warehouse: Path, sql: str, params: dict | None = None):
    return run_query(warehouse, sql, params).to_pylist()[0]


def test_chunks_load_once_with_nan_and_inf_as_values(tmp_path, warehouse, trials):
    storage = tmp_path / "logs"
    write_attempt(storage, trials[0], range(1, 6))
    write_attempt(storage, trials[1], range(1, 4), value=float("nan"))
    write_attempt(storage, trials[2], range(1, 2), value=float("inf"))
    assert load_all(warehouse, storage, trials) == 2 * (5 + 3 + 1)
    assert load_all(warehouse, storage, trials) == 0  # the ledger knows every chunk
    counts = scalar(
        warehouse,
        "select count(*) as n, count(*) filter (where isnan(value)) as nans, "
        "count(*) filter (where isinf(value)) as infs from metrics",
    )
    assert counts == {"n": 18, "nans": 3, "infs": 1}
    ledger = scalar(warehouse, "select count(*) as chunks, sum(rows) as rows from metric_chunks")
    assert ledger == {"chunks": 3 + 2 + 1, "rows": 18}


def test_new_chunks_of_a_running_trial_are_picked_up(tmp_path, warehouse, trials):
    storage = tmp_path / "logs"
    trial = trials[0]
    log = open_log(storage, trial)
    log.add(1, 1, {"train_loss": 1.0})
    log.flush()
    assert load_all(warehouse, storage, [trial]) == 1
    log.add(2, 1, {"train_loss": 0.5})
    log.flush()
    assert load_all(warehouse, storage, [trial]) == 1
    assert scalar(warehouse, "select count(*) as n from metrics")["n"] == 2
    # a run still training has its steps so far, so the analysis can window its curves
    assert scalar(warehouse, "select steps from runs where run_id = $r", {"r": trial.run_id}) == {"steps": 2}
    assert scalar(warehouse, "select count(*) as n from run_curves where run_id = $r", {"r": trial.run_id})["n"] == 2


def test_a_retried_run_keeps_one_row_per_step_and_metric(tmp_path, warehouse, trials):
    storage = tmp_path / "logs"
    restarted, resumed = trials[0], trials[1]
    write_attempt(storage, restarted, range(1, 6))  # attempt 0 died after step 5 ...
    write_attempt(storage, restarted, range(1, 8))  # ... attempt 1 started over and finished
    write_attempt(storage, resumed, range(1, 6))  # attempt 0 died ...
    write_attempt(storage, resumed, range(4, 8))  # ... attempt 1 resumed from a checkpoint at step 3
    load_all(warehouse, storage, trials)
    with Warehouse.open(warehouse) as wh:
        wh.record_outcomes([outcome(restarted, 1, steps=7), outcome(resumed, 1, steps=7)])
    dupes = scalar(warehouse, "select count(*) - count(distinct (run_id, step, metric)) as n from metrics")
    assert dupes["n"] == 0
    rows = run_query(
        warehouse, "select run_id, step, attempt from metrics where metric = 'train_loss' order by run_id, step"
    ).to_pylist()
    by_run = {
        r: [(x["step"], x["attempt"]) for x in rows if x["run_id"] == r] for r in (restarted.run_id, resumed.run_id)
    }
    assert by_run[restarted.run_id] == [(s, 1) for s in range(1, 8)]
    assert by_run[resumed.run_id] == [(1, 0), (2, 0), (3, 0)] + [(s, 1) for s in range(4, 8)]
    status = scalar(warehouse, "select status, attempts, node from runs where run_id = $r", {"r": restarted.run_id})
    assert status == {"status": "finished", "attempts": 2, "node": "test-node"}


def test_registering_again_adds_only_new_runs(tmp_path, warehouse, trials):
    extra = tiny_trial(top={"seed": 9})
    with Warehouse.open(warehouse) as wh:
        wh.record_outcomes([outcome(trials[0], 0)])
        statuses = wh.register_sweep(
            "t", "grid.toml", "[sweep]\nseeds = [0, 1, 2, 9]\n", "logs", ["sweep.seeds"], [*trials, extra]
        )
    assert statuses == {
        trials[0].run_id: "finished",
        trials[1].run_id: "pending",
        trials[2].run_id: "pending",
        extra.run_id: "pending",
    }
    sweep = scalar(warehouse, "select count(*) as n, any_value(grid_text) as text from sweeps")
    assert sweep == {"n": 1, "text": "[sweep]\nseeds = [0, 1, 2, 9]\n"}


@pytest.mark.parametrize(("version", "said"), [("7", "metric schema version 7"), (None, "no metric schema version")])
def test_a_chunk_of_another_metric_schema_version_is_refused_by_name(
    tmp_path, warehouse, trials, capsys, version, said
):
    storage = tmp_path / "logs"
    write_attempt(storage, trials[0], range(1, 3))  # a good chunk beside it still loads
    log = open_log(storage, trials[1])
    schema = METRIC_SCHEMA.remove_metadata()
    if version is not None:
        schema = schema.with_metadata({"rnnsweep.metric_schema": version})
    rows = {"run_id": [trials[1].run_id], "attempt": [log.attempt], "chunk": [0], "step": [1], "epoch": [1]}
    table = pa.table({**rows, "metric": ["train_loss"], "value": [0.5]}, schema=schema)
    path = Path(log.directory) / "chunk-00000.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        writer.write_table(table)
    assert load_all(warehouse, storage, trials) == 2 * 2
    refused = {"r": trials[1].run_id}
    assert scalar(warehouse, "select count(*) as n from metrics where run_id = $r", refused)["n"] == 0
    assert scalar(warehouse, "select count(*) as n from metric_chunks where run_id = $r", refused)["n"] == 0
    stderr = capsys.readouterr().err
    assert f"rnnsweep: refusing metric chunk {path}: {said}, this rnnsweep reads version 1\n" in stderr


def test_imported_runs_replace_themselves_and_store_no_grid(tmp_path):
    path = tmp_path / "wh.duckdb"
    runs = pa.table(
        {
            "run_id": ["old:1"],
            "trial_index": pa.array([0], pa.int32()),
            "config": ['{"source_run_id": "1"}'],
            "steps": pa.array([2], pa.int64()),
        }
    )
    metrics = pa.table(
        {
            "run_id": ["old:1", "old:1"],
            "step": pa.array([1, 2], pa.int64()),
            "epoch": pa.array([1, 2], pa.int64()),
            "metric": ["train_loss", "train_loss"],
            "value": [1.0, float("nan")],
        }
    )
    with Warehouse.open(path) as wh:
        assert wh.sweep_sources("old") == set()
        wh.import_runs("old", "a.csv", ["import.lr"], runs, metrics)
        wh.import_runs("old", "b.csv", [], runs, metrics.slice(0, 1))
        assert wh.sweep_sources("old") == {"import"}
    sweep = scalar(
        path,
        "select count(*) as n, any_value(grid_path) as path, any_value(grid_text) as text, "
        "any_value(storage_uri) as storage, any_value(axes) as axes from sweeps",
    )
    assert sweep == {"n": 1, "path": "b.csv", "text": "", "storage": "", "axes": []}
    run = scalar(path, "select status, source, attempts, steps from runs")
    assert run == {"status": "finished", "source": "import", "attempts": 1, "steps": 2}
    assert scalar(path, "select count(*) as n from metrics") == {"n": 1}


def test_trained_sweeps_name_their_source(warehouse):
    with Warehouse.open(warehouse) as wh:
        assert wh.sweep_sources("t") == {"rnnsweep"}


def test_detached_jobs_are_recorded_and_a_resubmission_replaces_its_row(warehouse):
    with Warehouse.open(warehouse) as wh:
        wh.record_job("rnnsweep-t-abc", "t", "http://head:8265", "s3://bucket/logs")
        wh.record_job("rnnsweep-t-abc", "t", "http://other:8265", "s3://bucket/logs")
    jobs = run_query(warehouse, "select job_id, sweep, address, storage_uri from sweep_jobs").to_pylist()
    assert jobs == [
        {"job_id": "rnnsweep-t-abc", "sweep": "t", "address": "http://other:8265", "storage_uri": "s3://bucket/logs"}
    ]


def test_threshold_overrides_set_and_reset_in_one_call(warehouse):
    with Warehouse.open(warehouse) as wh:
        wh.set_threshold_overrides({"l2_strong": 0.5, "collapse_sigma": 0.8}, [])
        wh.set_threshold_overrides({"l2_strong": 0.25, "overfit_val_rise": 0.3}, ["collapse_sigma", "overfit_val_rise"])
        wh.set_threshold_overrides({}, [])
    rows = run_query(warehouse, "select name, value from threshold_overrides order by name").to_pylist()
    assert rows == [{"name": "l2_strong", "value": 0.25}]  # a name both set and reset ends reset


def test_views_turn_configs_and_curves_into_columns(tmp_path, warehouse, trials):
    storage = tmp_path / "logs"
    trial = trials[1]
    log = open_log(storage, trial)
    for step, val_loss in ((0, 0.9), (10, 0.4), (20, 0.6)):
        log.add(step, step // 10, {"val_loss": val_loss, "val_acc": 1 - val_loss})
    log.flush()
    load_all(warehouse, storage, trials)
    with Warehouse.open(warehouse) as wh:
        wh.record_outcomes([outcome(trial, log.attempt, steps=20)])
    params = scalar(warehouse, "select * from run_params where run_id = $r", {"r": trial.run_id})
    assert params["seed"] == 1 and params["cell"] == "lstm" and params["lr"] == trial.optimizer.lr
    assert params["betas"] == [0.9, 0.999] and params["beta2"] == 0.999 and params["bidirectional"] is False
    results = scalar(warehouse, "select * from run_results where run_id = $r", {"r": trial.run_id})
    assert results["final_val_loss"] == 0.6 and results["best_val_loss"] == 0.4
    assert results["best_val_acc"] == pytest.approx(0.6) and results["last_step"] == 20
    status = scalar(warehouse, "select * from sweep_status")
    assert (status["runs"], status["finished"], status["pending"]) == (3, 1, 2)


def test_every_grid_key_has_a_run_params_column(warehouse):
    columns = set(run_query(warehouse, "select * from run_params limit 0").column_names)
    for section, model in SECTIONS.items():
        for key in model.model_fields:
            if (section, key) not in SWEEP_ONLY:
                assert column_of(f"{section}.{key}") in columns, f"{section}.{key}"


def test_analysis_files_are_one_headed_view_each():
    files = analysis_files()
    assert [f.name for f in files] == sorted(f.name for f in files) and files
    for file in files:
        text = file.read_text()
        name = re.match(r"-- (\w+)\n-- grain: one row per \w+", text)
        assert name, f"{file.name} needs a header: name, then grain"
        assert f"create or replace view {name[1]} as" in text
        assert text.rstrip().endswith("select * from final;")


@pytest.mark.parametrize(
    ("sql", "refusal"),
    [
        ("copy runs to '/tmp/rnnsweep-stolen.csv'", "file system operations are disabled"),
        ("select * from read_csv('/etc/passwd')", "file system operations are disabled"),
        ("attach '/tmp/other.duckdb' as other", "file system operations are disabled"),
        ("install httpfs", "disabled"),
        ("set enable_external_access = true", "configuration has been locked"),
        ("drop table runs", "read-only mode"),
        ("insert into sweeps select * from sweeps", "read-only mode"),
    ],
)
def test_query_is_read_only_and_sandboxed(warehouse, sql, refusal):
    with pytest.raises(UserError, match=re.escape(refusal)):
        run_query(warehouse, sql)
    assert scalar(warehouse, "select count(*) as n from runs")["n"] == 3
    assert not Path("/tmp/rnnsweep-stolen.csv").exists()


def test_a_runaway_query_is_stopped(warehouse):
    endless = "with recursive r(i) as (select 1 union all select i + 1 from r) select max(i) from r"
    with pytest.raises(UserError, match=r"query stopped after 0.5 s"):
        run_query(warehouse, endless, timeout=0.5)


def test_a_missing_warehouse_says_how_to_make_one(tmp_path):
    with pytest.raises(UserError, match="no warehouse here yet; run `rnnsweep submit GRID` first"):
        run_query(tmp_path / "absent.duckdb", "select 1")


def test_a_held_write_lock_gives_one_clear_line(warehouse):
    hold = f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); print('held', flush=True); time.sleep(30)"
    with subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout.readline().strip() == "held"
            with pytest.raises(
                WarehouseBusy, match=r"warehouse is locked by another writer \(.*PID.*\); wait for it to finish"
            ):
                connect_with_retry(warehouse, read_only=True, wait=0.3)
        finally:
            holder.kill()
    assert scalar(warehouse, "select count(*) as n from runs")["n"] == 3


def test_reads_use_the_installed_analysis_even_over_stale_stored_views(warehouse):
    """A warehouse written by an older rnnsweep keeps its old views; reads must not use them."""
    import duckdb

    con = duckdb.connect(str(warehouse))
    con.execute("create or replace view run_params as select 'stale' as run_id")
    con.close()
    assert scalar(warehouse, "select count(*) as n from run_params")["n"] == 3
    assert scalar(warehouse, "select count(*) as n from run_results")["n"] == 3  # views over views too


def test_users_add_their_own_views_and_a_broken_one_is_named(warehouse, tmp_path, monkeypatch):
    mine = tmp_path / "my_analysis"
    mine.mkdir()
    (mine / "90_seeds.sql").write_text(
        "-- seed_counts\n-- grain: one row per seed\ncreate or replace view seed_counts as\n"
        "select seed, count(*) as runs from run_params group by seed;\n"
    )
    monkeypatch.setenv("RNNSWEEP_ANALYSIS", str(mine))
    assert run_query(warehouse, "select * from seed_counts order by seed").to_pylist() == [
        {"seed": 0, "runs": 1},
        {"seed": 1, "runs": 1},
        {"seed": 2, "runs": 1},
    ]
    (mine / "91_broken.sql").write_text("create or replace view broken as select nope from runs;")
    with pytest.raises(UserError, match=r"91_broken.sql: cannot build this view: Binder Error"):
        run_query(warehouse, "select 1")
    with (
        pytest.raises(UserError, match=r"91_broken.sql: cannot build this view"),
        Warehouse.open(warehouse, build_views=True),
    ):
        pass
    monkeypatch.setenv("RNNSWEEP_ANALYSIS", str(tmp_path / "absent"))
    with pytest.raises(UserError, match="not a folder of .sql files"):
        run_query(warehouse, "select 1")
