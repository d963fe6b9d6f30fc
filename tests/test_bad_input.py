"""Careless input refused in one line (issue 11): grids that would hang or overflow later,
files that are not files, storage that cannot be reached or written, a data file whose contents
changed, a sweep name that holds imported runs. Each case: one clear line, a non-zero exit,
and nothing written (no warehouse, or its tables unchanged)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from rnnsweep.jobs.config import DataConfig
from rnnsweep.jobs.tasks import events, load_task, user_file
from rnnsweep.service import storage
from rnnsweep.service.cli import app
from rnnsweep.service.errors import UserError
from rnnsweep.service.spec import load_grid
from rnnsweep.service.submit import correct_storage
from rnnsweep.service.warehouse import Warehouse

TABLES = ("sweeps", "runs", "metrics", "metric_chunks")


def checksum(warehouse: Path) -> str:
    """Every row of the raw tables, in a stable order: equal before and after means unchanged."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = {t: sorted(map(repr, con.execute(f"select * from {t}").fetchall())) for t in TABLES}
    finally:
        con.close()
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def one_error(result, *fragments: str) -> str:
    """The result is a refusal: exit 2, nothing on stdout, one `error:` line holding every fragment."""
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert all(f in lines[0] for f in fragments), lines[0]
    return lines[0]


@pytest.fixture
def warehouse_with_a_sweep(tmp_path, write_grid) -> Path:
    """A warehouse holding one registered sweep, `kept`, so "unchanged" is about real rows."""
    warehouse = tmp_path / "data" / "wh.duckdb"
    kept = load_grid(write_grid("[sweep]\nname = 'kept'\nseeds = [0, 1]\n", name="kept.toml"))
    with Warehouse.open(warehouse, build_views=True) as wh:
        wh.register_sweep("kept", str(kept.path), kept.text, str(tmp_path / "logs"), list(kept.axes), kept.trials)
    return warehouse


# -- hangs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "got"), [("seq_len = 2", "got 2"), ("seq_len = 4\nnoise = 0.0", "got 4"), ("seq_len = [8, 1]", "got 1")]
)
def test_an_events_grid_whose_sequences_cannot_hold_an_event_is_refused(write_grid, tmp_path, data, got):
    grid = write_grid(f"[data]\n{data}\n")
    result = invoke("submit", str(grid), "-w", str(tmp_path / "data" / "wh.duckdb"))
    one_error(result, f'{grid}: data.seq_len: must be >= 5 for task "events" ({got})')
    assert not (tmp_path / "data").exists()


def test_the_events_generator_gives_up_instead_of_drawing_forever():
    began = time.monotonic()
    with pytest.raises(ValueError, match="positive sequences still missing after 1000 draws"):
        events.make(DataConfig(n_train=64, n_val=16, seq_len=2, noise=0.3))
    assert time.monotonic() - began < 10


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_grid_that_is_a_device_or_a_pipe_is_refused_without_reading_it(tmp_path, kind):
    if kind == "device":
        path = Path("/dev/zero")
    else:
        path = tmp_path / "grid.toml"
        os.mkfifo(path)  # opening it would wait for a writer forever
    began = time.monotonic()
    one_error(invoke("submit", str(path), "--dry-run"), f"{path}: not a regular file")
    assert time.monotonic() - began < 5


def test_a_grid_file_is_read_only_up_to_its_limit(tmp_path, monkeypatch):
    from rnnsweep.service import spec

    monkeypatch.setattr(spec, "MAX_GRID_BYTES", 64)
    grid = tmp_path / "grid.toml"
    grid.write_text("# " + "x" * 100 + "\n")
    one_error(invoke("submit", str(grid), "--dry-run"), "is larger than")


# -- storage ----------------------------------------------------------------------------


def bad_storages(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (storage, what the line says)."""
    (tmp_path / "afile").write_text("not a folder")
    return {
        "a file": (str(tmp_path / "afile"), "is a file, not a folder"),
        "under a file": (str(tmp_path / "afile" / "logs"), "cannot write there"),
        "unknown scheme": ("foo://bucket/p", "not a storage pyarrow knows"),
        "hdfs without java": ("hdfs://localhost:9000/p", "hdfs:// needs Java"),
        "read-only": ("/proc/rnnsweep-logs", "cannot write there"),
    }


@pytest.mark.parametrize("case", ["a file", "under a file", "unknown scheme", "hdfs without java", "read-only"])
def test_unusable_storage_is_refused_before_the_sweep_is_registered(tmp_path, write_grid, warehouse_with_a_sweep, case):
    uri, says = bad_storages(tmp_path)[case]
    before = checksum(warehouse_with_a_sweep)
    grid = write_grid("[sweep]\nname = 'fresh'\nepochs = 1\n")
    result = invoke("submit", str(grid), "-w", str(warehouse_with_a_sweep), "--storage", uri, "-q")
    one_error(result, f"storage {uri}: {says}", "--storage gives other storage")
    assert checksum(warehouse_with_a_sweep) == before  # no sweep `fresh`, no pending runs, no bad path


def test_an_unreachable_bucket_is_refused_within_the_deadline(
    tmp_path, write_grid, warehouse_with_a_sweep, monkeypatch
):
    # No network and no credentials here: GCS would retry for 15 minutes, S3 resolves a region.
    monkeypatch.setattr(storage, "STORAGE_CHECK_SECONDS", 3.0)
    before = checksum(warehouse_with_a_sweep)
    grid = write_grid("[sweep]\nname = 'fresh'\nepochs = 1\n")
    for uri in (
        "gs://a-bucket-that-does-not-exist/p",
        "s3://bucket/p?region=us-east-1&endpoint_override=127.0.0.1:1&scheme=http",
    ):
        began = time.monotonic()
        result = invoke("submit", str(grid), "-w", str(warehouse_with_a_sweep), "--storage", uri, "-q")
        one_error(result, f"storage {uri}: ")
        assert time.monotonic() - began < 3.0 + 2.0
    assert checksum(warehouse_with_a_sweep) == before


def test_sync_from_unreachable_storage_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "STORAGE_CHECK_SECONDS", 2.0)
    warehouse = tmp_path / "data" / "wh.duckdb"
    began = time.monotonic()
    one_error(
        invoke("sync", "s", "--storage", "gs://a-bucket-that-does-not-exist/p", "-w", str(warehouse)), "storage gs://"
    )
    assert time.monotonic() - began < 4.0
    assert not warehouse.exists()


def test_resume_storage_corrects_a_sweep_left_with_bad_storage(tmp_path, warehouse_with_a_sweep):
    # A sweep registered (before storage was checked) with a path it cannot write.
    bad, _ = bad_storages(tmp_path)["a file"]
    with Warehouse.open(warehouse_with_a_sweep) as wh:
        wh.set_sweep_storage("kept", bad)
    before = checksum(warehouse_with_a_sweep)
    one_error(invoke("resume", "kept", "-w", str(warehouse_with_a_sweep)), f"storage {bad}: is a file", "--storage")
    one_error(invoke("resume", "kept", "-w", str(warehouse_with_a_sweep), "--storage", "foo://x"), "storage foo://x")
    assert checksum(warehouse_with_a_sweep) == before
    good = str(tmp_path / "good-logs")
    assert correct_storage(warehouse_with_a_sweep, "kept", good) == good  # what resume --storage calls
    con = duckdb.connect(str(warehouse_with_a_sweep), read_only=True)
    assert con.execute("select storage_uri from sweeps where name = 'kept'").fetchone() == (good,)
    con.close()
    assert not [p for p in Path(good).iterdir()]  # the probe was deleted


# -- values that would overflow later -----------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[sweep]\nseeds = [4294967296]", "sweep.seeds[0]: must be <= 2147483647"),
        ("[sweep]\nepochs = 10000000", "sweep.epochs: must be <= 1000000"),
        ("[sweep]\nevals_per_epoch = 100000", "sweep.evals_per_epoch: must be <= 10000"),
        ("[resources]\nmax_retries = 100000000000", "resources.max_retries: must be <= 100"),
        ("[resources]\nmax_retries = 1e11", "resources.max_retries: must be an integer"),
        ("[resources]\npack_size = 5000", "resources.pack_size: must be <= 1024"),
        ("[resources]\ncpus_per_trial = 1e-9", "resources.cpus_per_trial: must be >= 0.01"),
        ("[resources]\ngpus_per_trial = 1e-9", "resources.gpus_per_trial: must be 0 or >= 0.01"),
        ("[data]\nseed = 4294967296", "data.seed: must be <= 2147483647"),
        ("[data]\nn_train = 100000000000", "data.n_train: must be <= 10000000"),
        ("[data]\nn_val = 100000000000", "data.n_val: must be <= 10000000"),
        ("[data]\nseq_len = 10000000", "data.seq_len: must be <= 100000"),
        ("[data]\nn_features = 1000000", "data.n_features: must be <= 16384"),
        ("[data]\ntarget_dim = 1000000", "data.target_dim: must be <= 16384"),
        ("[model]\nhidden = 1000000", "model.hidden: must be <= 16384"),
        ("[model]\nlayers = 1000", "model.layers: must be <= 64"),
        ("[training]\nbatch_size = 100000000000", "training.batch_size: must be <= 1000000"),
        ("[training]\nlr_step_epochs = 10000000", "training.lr_step_epochs: must be <= 1000000"),
        ("[data]\nn_val = 1", "data.n_val: 1 sequences at positive_rate 0.05 leave 1 positive and 0 negative"),
        ("[data]\nn_train = 10\npositive_rate = 0.99", "data.n_train: 10 sequences at positive_rate 0.99"),
        ("[data]\ndigest = '" + "0" * 64 + "'", "data.digest: unknown key"),
    ],
)
def test_a_value_that_would_overflow_or_fail_later_is_refused_where_it_enters(write_grid, tmp_path, line, problem):
    grid = write_grid(line + "\n")
    one_error(invoke("submit", str(grid), "-w", str(tmp_path / "data" / "wh.duckdb")), f"{grid}: {problem}")
    assert not (tmp_path / "data").exists()


# -- data files ---------------------------------------------------------------------------


def test_a_file_label_of_one_huge_integer_is_refused_without_allocating(tmp_path):
    path = tmp_path / "huge.npz"
    x = np.zeros((6, 2, 3), np.float32)
    np.savez(path, x=x, y=np.array([0, 1, 0, 1, 0, 10**12]))
    with pytest.raises(user_file.DataFileError, match="at most 100,000 classes"):
        user_file.load(DataConfig(path=str(path)))


def test_regression_targets_with_no_dimensions_are_refused(tmp_path):
    path = tmp_path / "empty_targets.npz"
    np.savez(path, x=np.zeros((6, 2, 3), np.float32), y=np.zeros((6, 0), np.float32))
    with pytest.raises(user_file.DataFileError, match=r"targets have no dimensions \(shape \(6, 0\)\)"):
        user_file.load(DataConfig(path=str(path)))


def test_float_zero_one_labels_stay_regression_as_documented(tmp_path):
    path = tmp_path / "float_labels.npz"
    np.savez(path, x=np.zeros((6, 2, 3), np.float32), y=np.array([0.0, 1.0] * 3))
    assert user_file.load(DataConfig(path=str(path))).kind == "regression"
    assert "float `y` is always regression" in user_file.__doc__


# -- identity -----------------------------------------------------------------------------


def test_a_changed_data_file_is_a_new_run_and_a_worker_refuses_stale_contents(tmp_path, write_grid):
    data = tmp_path / "seqs.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.normal(size=(8, 3, 2)).astype(np.float32), y=np.arange(8) % 2)
    grid = write_grid("[sweep]\ntask = 'file'\nseeds = [0, 1]\n[data]\npath = 'seqs.npz'\n")
    before = load_grid(grid).trials
    assert all(t.data_digest == hashlib.sha256(data.read_bytes()).hexdigest() for t in before)
    np.savez(data, x=rng.normal(size=(8, 3, 2)).astype(np.float32), y=np.arange(8) % 2)
    after = load_grid(grid).trials
    assert not {t.run_id for t in before} & {t.run_id for t in after}
    with pytest.raises(user_file.DataFileError, match="contents changed since the sweep was submitted"):
        load_task(before[0])
    assert load_task(after[0]).n_outputs == 1


def test_submit_into_a_sweep_of_imported_runs_is_refused(tmp_path, write_grid, warehouse_with_a_sweep):
    runs = pa.table(
        {
            "run_id": ["imp-1"],
            "trial_index": pa.array([0], pa.int32()),
            "config": [json.dumps({"source_run_id": "imp-1"})],
            "steps": pa.array([1], pa.int64()),
        }
    )
    metrics = pa.table(
        {
            "run_id": ["imp-1"],
            "step": pa.array([1], pa.int64()),
            "epoch": pa.array([0], pa.int32()),
            "metric": ["train_loss"],
            "value": [0.5],
        }
    )
    with Warehouse.open(warehouse_with_a_sweep) as wh:
        wh.import_runs("logged", "logs.csv", [], runs, metrics)
    before = checksum(warehouse_with_a_sweep)
    grid = write_grid("[sweep]\nname = 'logged'\nepochs = 1\n")
    result = invoke("submit", str(grid), "-w", str(warehouse_with_a_sweep), "--storage", str(tmp_path / "logs"), "-q")
    one_error(result, "sweep 'logged' holds imported runs")
    assert checksum(warehouse_with_a_sweep) == before


def test_correct_storage_refuses_unusable_storage(tmp_path, warehouse_with_a_sweep):
    before = checksum(warehouse_with_a_sweep)
    with pytest.raises(UserError, match="not a storage pyarrow knows"):
        correct_storage(warehouse_with_a_sweep, "kept", "foo://x")
    assert checksum(warehouse_with_a_sweep) == before
