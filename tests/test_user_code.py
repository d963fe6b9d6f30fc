"""Your own model (model.factory) and your own training loop (sweep.entrypoint, rnnsweep.jobs.run.Run):
refused in one line before anything trains when they cannot work, instrumented and logged like
rnnsweep's own trials when they can."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rnnsweep.jobs.metric_log import list_chunks, read_chunk, resolve_storage
from rnnsweep.service.cli import app
from rnnsweep.service.errors import GridError
from rnnsweep.service.query import run_query
from rnnsweep.service.spec import load_grid
from rnnsweep.service.sync import sync_sweep
from tests.conftest import run_trial

MODELS = '''
import torch
from torch import nn


class EncoderDecoder(nn.Module):
    """An LSTM encoder, a GRU decoder over its outputs, and a cell: three recurrent matrices."""

    def __init__(self, n_features, n_outputs, hidden):
        super().__init__()
        self.encoder = nn.LSTM(n_features, hidden, batch_first=True, bidirectional=True)
        self.decoder = nn.GRU(2 * hidden, hidden, batch_first=True)
        self.refine = nn.GRUCell(hidden, hidden)
        self.head = nn.Linear(hidden, n_outputs)

    def forward(self, x):
        sequence, _ = self.encoder(x)
        _, last = self.decoder(sequence)
        return self.head(self.refine(last[-1]))


def build(n_features, n_outputs, hidden=8):
    return EncoderDecoder(n_features, n_outputs, hidden)


def wrong_width(n_features, n_outputs):
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(n_outputs + 2))


def not_a_module(n_features, n_outputs):
    return "a string"


def breaks_on_a_batch(n_features, n_outputs):
    return nn.LSTM(n_features + 1, 4)
'''

LOOP = """
import torch
from torch import nn


def main(config, run):
    torch.manual_seed(0)
    model = nn.GRU(1, 4, batch_first=True)
    head = nn.Linear(4, 1)
    optimizer = torch.optim.SGD([*model.parameters(), *head.parameters()], lr=config["lr"])
    run.watch(model)
    x, y = torch.randn(32, 6, 1), torch.randn(32, 1)
    first = 1
    saved = run.restored()
    if saved is not None:
        model.load_state_dict(saved["model"])
        head.load_state_dict(saved["head"])
        optimizer.load_state_dict(saved["optimizer"])
        first = saved["step"] + 1
    for step in range(first, config["steps"] + 1):
        loss = nn.functional.mse_loss(head(model(x)[1][-1]), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        run.log(step, epoch=1, train_loss=loss.item())
        if step % 3 == 0:
            run.log(step, val_loss=loss.item() * 1.1)
            state = {"model": model.state_dict(), "head": head.state_dict(), "optimizer": optimizer.state_dict()}
            run.checkpoint(state | {"step": step})
            if config.get("die_at") == step:
                raise SystemExit("the worker died")
"""

GRID = """
[sweep]
name = "own"
task = "events"
epochs = 1
[data]
n_train = 64
n_val = 32
seq_len = 12
n_features = 3
[model]
factory = "{factory}"
[model.args]
{args}
[training]
batch_size = 16
"""


@pytest.fixture
def code(tmp_path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "own_models.py").write_text(MODELS)
    (folder / "own_loop.py").write_text(LOOP)
    return folder


def grid_file(code: Path, factory: str = "own_models:build", args: str = "hidden = [4, 8]") -> Path:
    path = code / "grid.toml"
    path.write_text(GRID.format(factory=factory, args=args))
    return path


def logged(storage: Path, trial) -> list[dict]:
    fs, base = resolve_storage(str(storage))
    return [r for c in list_chunks(fs, base, trial.sweep, trial.run_id) for r in read_chunk(fs, c.path).to_pylist()]


def test_a_factory_model_trains_and_every_recurrent_layer_is_instrumented(code, tmp_path):
    grid = load_grid(grid_file(code))
    assert [t.model.args for t in grid.trials] == [{"hidden": 4}, {"hidden": 8}]
    assert grid.axes == {"model.args.hidden": [4, 8]}
    assert len({t.run_id for t in grid.trials}) == 2
    outcome = run_trial(grid.trials[0], str(tmp_path / "logs"))
    assert (outcome.status, outcome.steps, outcome.pack_size) == ("finished", 4, None)
    metrics = {r["metric"] for r in logged(tmp_path / "logs", grid.trials[0])}
    sigmas = {m for m in metrics if m.startswith("sigma_max_hh")}
    assert sigmas == {
        "sigma_max_hh",
        "sigma_max_hh.encoder.l0",
        "sigma_max_hh.encoder.l0_reverse",
        "sigma_max_hh.decoder.l0",
        "sigma_max_hh.refine",
    }
    assert {"train_loss", "val_loss", "val_acc", "pred_std", "weight_norm", "update_ratio"} <= metrics


@pytest.mark.parametrize(
    ("factory", "args", "problem"),
    [
        ("nowhere:build", "", r"model\.factory: nowhere:build: cannot import nowhere from .*: ModuleNotFoundError"),
        ("own_models:missing", "", r"model\.factory: own_models:missing: own_models has no function missing"),
        (
            "own_models:build",
            "width = 3",
            r"model\.factory: own_models:build: got an unexpected keyword argument 'width'",
        ),
        ("own_models:not_a_module", "", r"own_models:not_a_module: returned str, not a torch\.nn\.Module"),
        (
            "own_models:wrong_width",
            "",
            r"the module's output for a batch of shape \(16, 12, 3\) is \(16, 3\); the task needs \(16, 1\)",
        ),
        ("own_models:breaks_on_a_batch", "", r"the module failed on a batch of shape \(16, 12, 3\): RuntimeError"),
        ("own_models", "", r"model\.factory: must name a function as \"module:function\""),
    ],
)
def test_a_factory_that_cannot_work_is_refused_in_one_line_before_training(code, factory, args, problem):
    path = grid_file(code, factory, args)
    with pytest.raises(GridError, match=problem) as refused:
        load_grid(path)
    assert len(refused.value.lines) == 1 and refused.value.lines[0].startswith(f"{path}: model.factory: ")
    result = CliRunner().invoke(app, ["submit", str(path), "--dry-run"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[model.args]\nhidden = 4\n", "model.args: only read by model.factory"),
        ("[params]\nlr = 0.1\n", "params: only read by sweep.entrypoint"),
        (
            '[sweep]\nentrypoint = "own_loop:main"\n[params]\nlr = [0.1, nan]\n',
            r"params\.lr\[1\]: must be a finite number",
        ),
        (
            '[sweep]\nentrypoint = "own_loop:main"\n[params]\nlr = {a = 1}\n',
            r"params\.lr: must be a finite number, a string",
        ),
        ('[sweep]\nentrypoint = "own_loop:nope"\n', "sweep.entrypoint: own_loop:nope: own_loop has no function nope"),
        ('[sweep]\nentrypoint = "own_loop:main"\ncode = "missing"\n', "sweep.code: missing: not a folder"),
        (
            '[sweep]\nentrypoint = "own_loop:main"\n[model]\nfactory = "own_models:build"\n',
            "model.factory: not read when sweep.entrypoint is set",
        ),
    ],
)
def test_misused_own_code_keys_are_refused(code, text, problem):
    path = code / "bad.toml"
    path.write_text(text)
    with pytest.raises(GridError, match=problem):
        load_grid(path)


def test_an_entrypoint_resumes_from_its_own_checkpoint(code, tmp_path):
    path = code / "loop.toml"
    path.write_text(
        '[sweep]\nname = "loop"\nentrypoint = "own_loop:main"\n[params]\nlr = 0.05\nsteps = 10\ndie_at = 6\n'
    )
    [trial] = load_grid(path).trials
    assert trial.params == {"lr": 0.05, "steps": 10, "die_at": 6}
    with pytest.raises(SystemExit):  # the worker dies right after the checkpoint at step 6
        run_trial(trial, str(tmp_path / "logs"))
    outcome = run_trial(trial, str(tmp_path / "logs"))  # the retry
    assert (outcome.status, outcome.attempt, outcome.steps) == ("finished", 1, 10)
    rows = logged(tmp_path / "logs", trial)
    assert min(r["step"] for r in rows if r["attempt"] == 1) == 7  # went on after the checkpoint
    assert {r["metric"] for r in rows} >= {"train_loss", "val_loss", "weight_norm", "sigma_max_hh.l0"}
    watched = [r["step"] for r in rows if r["metric"] == "sigma_max_hh.l0"]
    assert watched == [r["step"] for r in rows if r["metric"] == "val_loss"]  # instrumented beside each val_loss


def test_a_plain_script_with_a_run_lands_in_the_warehouse(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import math
            from rnnsweep.jobs.run import Run

            with Run(sweep="exp", config={"lr": 0.01, "layers": [2, 2]}) as run:
                for step in range(1, 21):
                    run.log(step, train_loss=1 / step)
                run.log(20, val_loss=0.2, val_acc=math.nan)
            """
        )
    )
    env = os.environ | {"RNNSWEEP_WAREHOUSE": str(tmp_path / "data" / "wh.duckdb")}
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, check=True, timeout=120)
    report = sync_sweep(tmp_path / "data" / "wh.duckdb", "exp", str(tmp_path / "data" / "logs"))
    assert (report.runs, report.ended, report.running) == (1, 1, 0)
    [run] = run_query(tmp_path / "data" / "wh.duckdb", "select status, steps, config from runs").to_pylist()
    assert (run["status"], run["steps"]) == ("finished", 20)
    assert '"params":{"lr":0.01,"layers":"[2, 2]"}' in run["config"]
    rows = run_query(tmp_path / "data" / "wh.duckdb", "select count(*) as n from metrics where metric = 'train_loss'")
    assert rows.to_pylist() == [{"n": 20}]


# -- on a real local Ray -----------------------------------------------------------------

SLOW_LOOP = """
import time

import torch
from torch import nn


def main(config, run):
    model = nn.GRU(1, 4, batch_first=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    run.watch(model)
    saved, first = run.restored(), 1
    if saved is not None:
        model.load_state_dict(saved["model"])
        first = saved["step"] + 1
    x = torch.randn(16, 5, 1)
    for step in range(first, config["steps"] + 1):
        loss = model(x)[1].pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        run.log(step, train_loss=loss.item())
        time.sleep(0.02)  # long enough to be killed mid-run
        if step % 20 == 0:
            run.log(step, val_loss=loss.item())
            run.checkpoint({"model": model.state_dict(), "step": step})
"""


@pytest.mark.ray
@pytest.mark.slow
def test_a_factory_sweep_trains_on_ray_and_is_diagnosed(local_ray, code, tmp_path):
    from rnnsweep.service.diagnose import diagnose
    from rnnsweep.service.submit import run_sweep

    grid = load_grid(grid_file(code))
    warehouse = tmp_path / "wh.duckdb"
    report = run_sweep(grid, warehouse, str(tmp_path / "logs"), show_progress=False)
    assert report.counts == {"finished": 2}
    sigmas = run_query(
        warehouse, "select distinct metric from metrics where metric like 'sigma_max_hh.%' order by metric"
    ).column("metric")
    assert sigmas.to_pylist() == [
        "sigma_max_hh.decoder.l0",
        "sigma_max_hh.encoder.l0",
        "sigma_max_hh.encoder.l0_reverse",
        "sigma_max_hh.refine",
    ]
    labels = diagnose(warehouse, grid.name).column("label").to_pylist()
    assert len(labels) == 2 and all(labels)


@pytest.mark.ray
@pytest.mark.slow
def test_an_entrypoint_whose_worker_is_killed_resumes_from_its_checkpoint(local_ray, code, tmp_path):
    import json
    import signal
    import threading

    from rnnsweep.service.submit import run_sweep
    from tests.test_faults import wait_for

    (code / "slow_loop.py").write_text(SLOW_LOOP)
    path = code / "slow.toml"
    path.write_text('[sweep]\nname = "slow"\nentrypoint = "slow_loop:main"\n[params]\nsteps = 200\n')
    grid = load_grid(path)
    warehouse, storage = tmp_path / "wh.duckdb", tmp_path / "logs"
    [trial] = grid.trials
    run_dir = storage / "slow" / trial.run_id
    outcome = {}
    worker = threading.Thread(
        target=lambda: outcome.update(report=run_sweep(grid, warehouse, str(storage), show_progress=False))
    )
    worker.start()
    wait_for(lambda: (run_dir / "checkpoint.pt").exists(), every=0.05)
    os.kill(json.loads((run_dir / "attempt-000" / "started.json").read_text())["pid"], signal.SIGKILL)
    worker.join(timeout=180)
    assert not worker.is_alive()
    assert outcome["report"].counts == {"finished": 1}
    spans = run_query(
        warehouse,
        "select attempt, min(step) as first, max(step) as last from metrics where metric = 'train_loss' "
        "group by attempt order by attempt",
    ).to_pylist()
    assert [s["attempt"] for s in spans] == [0, 1] and spans[1]["first"] > 1 and spans[1]["last"] == 200
    duplicates = run_query(warehouse, "select count(*) - count(distinct (step, metric)) as d from metrics")
    assert duplicates.to_pylist() == [{"d": 0}]
