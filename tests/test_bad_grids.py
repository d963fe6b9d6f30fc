"""Malformed grid files through the real CLI: each exits non-zero with one line per problem
naming the file, the key path and the problem, and nothing is submitted or written."""

from __future__ import annotations

import os

import numpy as np
import pytest
from typer.testing import CliRunner

from rnnsweep.service.cli import app

# (grid text, the expected problem line after "error: <file>: ")
CASES = [
    ("[sweep\nname = 'x'\n", "TOML syntax error: "),
    ("[sweep]\nname = \n", "TOML syntax error: "),
    ("[sweep]\nname = 'a'\nname = 'b'\n", "TOML syntax error: "),
    ("[model]\ncell = ['lstm', 'gru'\n", "TOML syntax error: "),
    ("lr = 0.1\n", "lr: a key outside any table; it belongs under [optimizer]"),
    ("model = 3\n", "model: must be a table ([model])"),
    ("[optimiser]\nlr = 0.1\n", "optimiser: unknown table (did you mean 'optimizer'?)"),
    ("[model]\nhiden = 64\n", "model.hiden: unknown key (did you mean 'hidden'?)"),
    ("[training]\nbatchsize = 64\n", "training.batchsize: unknown key (did you mean 'batch_size'?)"),
    (
        "[optimizer]\nweight_decay_on = 'recurrent'\n",
        "optimizer.weight_decay_on: must be one of 'all' or 'non_recurrent' (got 'recurrent')",
    ),
    (
        "[sweep]\ntask = 'speech'\n",
        "sweep.task: must be one of 'events', 'word_vectors', 'sequences4' or 'file' (got 'speech')",
    ),
    ("[model]\ncell = 'transformer'\n", "model.cell: must be one of 'rnn', 'lstm' or 'gru' (got 'transformer')"),
    ("[model]\nhidden = '128'\n", "model.hidden: must be an integer (got '128')"),
    ("[model]\nhidden = 12.5\n", "model.hidden: must be an integer (got 12.5)"),
    ("[model]\nbidirectional = 'yes'\n", "model.bidirectional: must be true or false (got 'yes')"),
    ("[model]\nhidden = 0\n", "model.hidden: must be > 0 (got 0)"),
    ("[model]\nlayers = -1\n", "model.layers: must be >= 1 (got -1)"),
    ("[model]\ndropout = 1.0\n", "model.dropout: must be < 1 (got 1.0)"),
    ("[data]\nn_train = 0\n", "data.n_train: must be > 0 (got 0)"),
    ("[data]\nseq_len = -5\n", "data.seq_len: must be > 0 (got -5)"),
    ("[data]\npositive_rate = 0\n", "data.positive_rate: must be > 0 (got 0)"),
    ("[training]\nbatch_size = [32, 0]\n", "training.batch_size[1]: must be > 0 (got 0)"),
    ("[training]\nclip_grad_norm = -1.0\n", "training.clip_grad_norm: must be >= 0 (got -1.0)"),
    ("[optimizer]\nlr = nan\n", "optimizer.lr: must be a finite number (got nan)"),
    ("[optimizer]\nlr = inf\n", "optimizer.lr: must be a finite number (got inf)"),
    ("[optimizer]\nlr = [1e-3, -1e-3]\n", "optimizer.lr[1]: must be > 0 (got -0.001)"),
    ("[optimizer]\nlr = []\n", "optimizer.lr: empty list; an axis needs at least one value"),
    ("[optimizer]\nbetas = [0.9, 1.0]\n", "optimizer.betas[1]: must be < 1 (got 1.0)"),
    (
        "[optimizer]\nbetas = [[0.9, 0.999], [0.5]]\n",
        "optimizer.betas[1][1]: missing value; a pair needs two, like [0.9, 0.999]",
    ),
    ("[resources]\ncpus_per_trial = 0\n", "resources.cpus_per_trial: must be >= 0.01 (got 0)"),
    ("[resources]\ngpus_per_trial = -0.5\n", "resources.gpus_per_trial: must be >= 0 (got -0.5)"),
    ("[sweep]\nseeds = [1, 1]\n", "sweep.seeds: the same value appears twice in this axis"),
    ("[sweep]\nname = 'my sweep'\n", "sweep.name: may hold only letters, digits"),
    ("[sweep]\ntask = 'file'\n", 'data.path: required when sweep.task = "file"'),
    ("[sweep]\ntask = 'file'\n[data]\npath = 'missing.npz'\n", "data.path: missing.npz: no such file"),
    (
        "[sweep]\ntask = 'file'\n[data]\npath = 'nan.npz'\n",
        "data.path: nan.npz: x: 36 NaN/Inf values (first in sequence 0)",
    ),
    ("[sweep]\ntask = 'file'\n[data]\npath = 'empty.npz'\n", "data.path: empty.npz: x: is empty"),
    (
        "[sweep]\ntask = 'file'\n[data]\npath = 'gap.npz'\n",
        "data.path: gap.npz: y: class labels must be 0..2 with every class in the training split; missing [1]",
    ),
    (
        "[sweep]\ntask = 'file'\n[data]\npath = 'flat.npz'\n",
        "data.path: flat.npz: x: must have shape (n, seq_len, n_features)",
    ),
    (
        "[data]\nn_train = ["
        + ", ".join(map(str, range(2, 102)))
        + "]\nn_val = ["
        + ", ".join(map(str, range(2, 102)))
        + "]\nseq_len = ["
        + ", ".join(map(str, range(5, 1005)))
        + "]\n",
        "grid expands to 10,000,000 trials (data.n_train: 100 x data.n_val: 100 x data.seq_len: 1000); pass --yes",
    ),
    # [[trial]] tables: as strict as the rest, each problem naming its table's index (from 0)
    ("[[trial]]\n[[trial]]\noptimizer.lr = -1.0\n", "trial[1].optimizer.lr: must be > 0 (got -1.0)"),
    ("[[trial]]\noptimizer.lrr = 0.1\n", "trial[0].optimizer.lrr: unknown key (did you mean 'lr'?)"),
    ("[[trial]]\noptimiser.lr = 0.1\n", "trial[0].optimiser: unknown key (did you mean 'optimizer'?)"),
    ("[[trial]]\nlr = 0.1\n", "trial[0].lr: a key of [optimizer]; write optimizer.lr = ..."),
    ("[[trial]]\nmodel.hidden = '8'\n", "trial[0].model.hidden: must be an integer (got '8')"),
    (
        "[[trial]]\noptimizer.lr = [0.1, 0.01]\n",
        "trial[0].optimizer.lr: a list is an axis, and one [[trial]] table is one trial; write one [[trial]] per value",
    ),
    ("[[trial]]\noptimizer.betas = [0.5, 1.5]\n", "trial[0].optimizer.betas[1]: must be < 1 (got 1.5)"),
    ("[[trial]]\nsweep.name = 'x'\n", "trial[0].sweep.name: one value for the whole sweep; set it in [sweep]"),
    ("[[trial]]\nfixes = 'run-7'\n", "trial[0].fixes: must be the run_id of the run this trial follows up"),
    ("[trial]\noptimizer.lr = 0.1\n", "trial: must be [[trial]] tables, one per trial"),
    ("[[trial]]\n[[trial]]\ndata.seq_len = 3\n", 'trial[1].data.seq_len: must be >= 5 for task "events" (got 3)'),
    ("[optimizer]\nlr = 0.1\n[[trial]]\n[[trial]]\noptimizer.lr = 0.1\n", "trial[1]: the same trial as trial[0]"),
]


@pytest.fixture
def folder(tmp_path):
    """A grid folder with the user data files the cases point at."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 2, 3)).astype(np.float32)
    np.savez(tmp_path / "nan.npz", x=np.where(x > -10, np.nan, x), y=np.arange(6) % 2)
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 2, 3)), y=np.zeros(0, int))
    np.savez(tmp_path / "gap.npz", x=x, y=np.array([0, 2, 0, 2, 0, 2]))
    np.savez(tmp_path / "flat.npz", x=x.reshape(6, 6), y=np.arange(6) % 2)
    return tmp_path


def submit(folder, grid_text: str, name: str = "grid.toml"):
    grid = folder / name
    grid.write_text(grid_text)
    warehouse = folder / "data" / "wh.duckdb"
    result = CliRunner().invoke(app, ["submit", str(grid), "-w", str(warehouse), "-q"])
    return grid, warehouse, result


def assert_refused(folder, warehouse, result):
    assert result.exit_code == 2
    assert result.stdout == ""
    assert not warehouse.exists() and not (folder / "data").exists()  # nothing written, nothing submitted


@pytest.mark.parametrize(("grid_text", "problem"), CASES, ids=[f"case{i:02d}" for i in range(len(CASES))])
def test_a_malformed_grid_is_refused_with_file_key_and_problem(folder, grid_text, problem):
    grid, warehouse, result = submit(folder, grid_text)
    assert_refused(folder, warehouse, result)
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith(f"error: {grid}: ") for line in lines), lines
    assert any(line.removeprefix(f"error: {grid}: ").startswith(problem) for line in lines), lines


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30


def test_files_that_cannot_be_grids(folder):
    for path, problem in [
        (folder / "absent.toml", "no such file"),
        (folder, "is a directory, not a grid file"),
    ]:
        warehouse = folder / "data" / "wh.duckdb"
        result = CliRunner().invoke(app, ["submit", str(path), "-w", str(warehouse), "-q"])
        assert_refused(folder, warehouse, result)
        assert result.stderr.strip() == f"error: {path}: {problem}"
    binary = folder / "binary.toml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    warehouse = folder / "data" / "wh.duckdb"
    result = CliRunner().invoke(app, ["submit", str(binary), "-w", str(warehouse), "-q"])
    assert_refused(folder, warehouse, result)
    assert result.stderr.strip() == f"error: {binary}: not UTF-8 text"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file: permission bits cannot make it unreadable")
def test_an_unreadable_grid(folder):
    grid = folder / "secret.toml"
    grid.write_text("[sweep]\n")
    grid.chmod(0)
    result = CliRunner().invoke(app, ["submit", str(grid), "-w", str(folder / "data" / "wh.duckdb"), "-q"])
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {grid}: cannot read file (permission denied)"
