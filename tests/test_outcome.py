"""The typed attempt outcome: what a worker reports, written beside its chunks, validated where read."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from rnnsweep.jobs.metric_log import resolve_storage
from rnnsweep.jobs.outcome import AttemptOutcome, OutcomeFileError, outcome_path, read_outcomes
from rnnsweep.service.cli import app
from rnnsweep.service.errors import UserError
from rnnsweep.service.query import run_query
from rnnsweep.service.spec import load_grid
from rnnsweep.service.submit import publish_manifest
from rnnsweep.service.sync import sync_sweep
from tests.conftest import run_trial

GRID = """
[sweep]
name = "read-back"
task = "word_vectors"
epochs = 1
[data]
n_train = 64
n_val = 32
seq_len = 8
target_dim = 4
[model]
hidden = 8
[optimizer]
name = "sgd"
lr = [0.001, 1e30]  # the second's squared error overflows at its second step
[training]
batch_size = 16
"""


@pytest.fixture
def trained(write_grid, tmp_path):
    """A two-trial sweep trained in this process, as a cluster would leave it in storage."""
    grid = load_grid(write_grid(GRID))
    storage = str(tmp_path / "logs")
    publish_manifest(grid, storage)
    return grid, storage, [run_trial(t, storage) for t in grid.trials]


def test_what_the_worker_returns_is_what_storage_holds(trained):
    grid, storage, outcomes = trained
    fs, base = resolve_storage(storage)
    for trial, outcome in zip(grid.trials, outcomes, strict=True):
        assert read_outcomes(fs, base, grid.name, trial.run_id) == {0: outcome}
    finished, stopped = outcomes
    assert finished.status == "finished" and finished.pack_size is None and finished.chunks >= 1
    assert stopped.status == "stopped" and stopped.stop_reason.startswith("non-finite")


def test_a_fresh_warehouse_syncs_the_sweep_from_its_outcomes(trained, tmp_path):
    grid, storage, _ = trained
    report = sync_sweep(tmp_path / "wh.duckdb", grid.name, storage)
    assert (report.runs, report.ended, report.running) == (2, 2, 0)
    statuses = run_query(tmp_path / "wh.duckdb", "select status from runs order by status").column("status")
    assert statuses.to_pylist() == ["finished", "stopped"]


def test_non_finite_values_survive_the_round_trip():
    outcome = AttemptOutcome(run_id="r", attempt=0, status="stopped", final={"val_loss": math.nan, "x": math.inf})
    back = AttemptOutcome.model_validate_json(outcome.model_dump_json())
    assert math.isnan(back.final["val_loss"]) and back.final["x"] == math.inf


def test_a_malformed_outcome_is_one_line_naming_its_file(trained, tmp_path):
    grid, storage, outcomes = trained
    fs, base = resolve_storage(storage)
    path = outcome_path(base, grid.name, outcomes[0].run_id, 0)
    with open(path) as f:
        broken = json.load(f) | {"status": "exploded"}
    with open(path, "w") as f:
        json.dump(broken, f)

    with pytest.raises(OutcomeFileError, match=rf"^{path}: status: Input should be 'finished', 'stopped' or 'failed'"):
        read_outcomes(fs, base, grid.name, outcomes[0].run_id)
    with pytest.raises(UserError, match=path):
        sync_sweep(tmp_path / "wh.duckdb", grid.name, storage)
    result = CliRunner().invoke(app, ["sync", grid.name, "--storage", storage, "-w", str(tmp_path / "cli.duckdb")])
    assert result.exit_code == 2  # a user error
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: cannot sync read-back: ")
    assert path in result.stderr.replace("\n", "")
