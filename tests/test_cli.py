"""The CLI through CliRunner: help and examples, dry runs, bad input, query formats, status."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from rnnsweep.service.cli import app
from rnnsweep.service.warehouse import Warehouse
from tests.conftest import tiny_trial

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = list(typer.main.get_command(app).commands)  # from the app itself: a new command is checked at once


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def warehouse(tmp_path) -> Path:
    path = tmp_path / "wh.duckdb"
    trials = [tiny_trial(top={"seed": s}) for s in range(2)]
    with Warehouse.open(path, build_views=True) as wh:
        wh.register_sweep("tiny", "grid.toml", "", str(tmp_path / "logs"), ["sweep.seeds"], trials)
    return path


def test_every_command_has_help_with_a_runnable_example(cli):
    top = cli("--help")
    assert top.exit_code == 0
    for command in COMMANDS:
        assert command in top.stdout
        result = cli(command, "--help")
        assert result.exit_code == 0
        assert re.search(rf"Example: rnnsweep {command}\b", result.stdout), command


def test_version(cli):
    assert re.fullmatch(r"rnnsweep \d+\.\d+\.\d+\n", cli("--version").stdout)


def test_dry_run_prints_the_grid_and_writes_nothing(cli, tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    result = cli("submit", ROOT / "examples" / "quickstart.toml", "--dry-run", "-f", "csv", "-w", warehouse)
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert lines[0] == '"trial","run_id","cell","lr","weight_decay"'
    assert len(lines) == 1 + 18
    assert (
        "18 trials, axes: model.cell (2), optimizer.lr (3), optimizer.weight_decay (3). Dry run: nothing submitted."
        in result.stderr
    )
    assert not warehouse.exists() and not (tmp_path / "logs").exists()


def test_a_bad_grid_exits_non_zero_with_one_line_per_problem_and_writes_nothing(cli, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text("[optimizer]\nlr = [1e-3, 1e-2, -1]\n[model]\ncel = 'gru'\n")
    warehouse = tmp_path / "wh.duckdb"
    result = cli("submit", grid, "-w", warehouse)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [  # in the file's order
        f"error: {grid}: optimizer.lr[2]: must be > 0 (got -1)",
        f"error: {grid}: model.cel: unknown key (did you mean 'cell'?)",
    ]
    assert not warehouse.exists()


def test_query_formats(cli, warehouse, tmp_path):
    sql = "select run_id, seed, lr from run_params order by seed"
    table = cli("query", sql, "-w", warehouse)
    assert table.exit_code == 0 and "seed" in table.stdout and "0.001" in table.stdout
    csv = cli("query", sql, "-w", warehouse, "-f", "csv").stdout.splitlines()
    assert csv[0] == '"run_id","seed","lr"' and len(csv) == 3
    rows = json.loads(cli("query", sql, "-w", warehouse, "-f", "json").stdout)
    assert [r["seed"] for r in rows] == [0, 1] and rows[0]["lr"] == 0.001
    out = tmp_path / "runs.parquet"
    assert cli("query", sql, "-w", warehouse, "-f", "parquet", "-o", out).exit_code == 0
    assert pq.read_table(out).num_rows == 2
    piped = cli("query", sql, "-w", warehouse, "-f", "parquet").stdout_bytes  # stdout is not a terminal here
    assert pq.read_table(io.BytesIO(piped)).column("seed").to_pylist() == [0, 1]


def test_query_reads_sql_from_stdin(warehouse):
    result = CliRunner().invoke(app, ["query", "-", "-w", str(warehouse), "-f", "csv"], input="select 41 + 1 as answer")
    assert result.stdout.splitlines() == ['"answer"', "42"]


def test_json_has_no_bare_nan(cli, warehouse):
    rows = json.loads(
        cli("query", "select 'nan'::double as a, 'inf'::double as b, 1.5 as c", "-w", warehouse, "-f", "json").stdout
    )
    assert rows == [{"a": None, "b": "Infinity", "c": 1.5}]


def test_query_errors_are_one_line(cli, warehouse, tmp_path):
    bad = cli("query", "select * from nope", "-w", warehouse)
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: query failed: Catalog Error: Table with name nope does not exist")
    missing = cli("query", "select 1", "-w", tmp_path / "absent.duckdb")
    assert missing.exit_code == 2 and "no warehouse here yet" in missing.stderr
    table_to_file = cli("query", "select 1", "-w", warehouse, "-o", tmp_path / "x.txt")
    assert table_to_file.exit_code == 2 and "--output needs --format csv, json or parquet" in table_to_file.stderr


def test_status_lists_sweeps_and_a_sweeps_runs(cli, warehouse):
    sweeps = cli("status", "-w", warehouse, "-f", "json")
    assert [(s["sweep"], s["runs"], s["pending"]) for s in json.loads(sweeps.stdout)] == [("tiny", 2, 2)]
    runs = json.loads(cli("status", "tiny", "-w", warehouse, "-f", "json").stdout)
    assert [(r["seed"], r["status"], r["attempts"]) for r in runs] == [(0, "pending", 0), (1, "pending", 0)]
    unknown = cli("status", "nope", "-w", warehouse)
    assert unknown.exit_code == 2 and "no sweep named 'nope'" in unknown.stderr


def test_csv_writes_list_columns_as_json_text(cli, warehouse):
    result = cli("query", "select [0.9, 0.999]::double[] as betas, {'a': 1} as s, 2 as n", "-w", warehouse, "-f", "csv")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ['"betas","s","n"', '"[0.9, 0.999]","{""a"": 1}",2']


def test_detach_refuses_what_a_cluster_could_not_run_before_contacting_it(cli, tmp_path):
    import numpy as np

    grid = ROOT / "examples" / "quickstart.toml"
    warehouse = tmp_path / "wh.duckdb"
    alone = cli("submit", grid, "--detach", "-w", warehouse)
    assert alone.exit_code == 2 and "--detach needs --address" in alone.stderr
    remote = "http://10.0.0.9:8265"  # never contacted: each check comes first
    local = cli("submit", grid, "--detach", "--address", remote, "--storage", tmp_path / "logs", "-w", warehouse)
    assert local.exit_code == 2 and f"{tmp_path / 'logs'} is a path on this machine" in local.stderr

    np.savez(tmp_path / "seqs.npz", x=np.random.default_rng(0).normal(size=(40, 5, 3)), y=np.arange(40) % 2)
    (tmp_path / "file.toml").write_text('[sweep]\ntask = "file"\n[data]\npath = "seqs.npz"\n')
    relative = cli(
        "submit", tmp_path / "file.toml", "--detach", "--address", remote, "--storage", "s3://b/x", "-w", warehouse
    )
    assert relative.exit_code == 2 and "data.path: 'seqs.npz' is relative to this grid file" in relative.stderr
    assert not warehouse.exists()  # refused before anything was written
