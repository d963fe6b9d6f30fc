"""Careless or hostile input (issue 11): every case is refused with one line and a non-zero
exit, or handled, and the warehouse is never changed by a refusal (its tables' checksum, or
the file's bytes, before and after). Grids, tasks and storage are in test_bad_grids.py."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import io
import json
import sqlite3

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rnnsweep.service.cli import app
from rnnsweep.service.importer import import_runs
from rnnsweep.service.query import run_query
from rnnsweep.service.warehouse import Warehouse

GOOD = "run_id,step,epoch,metric,value\n1,10,1,train_loss,0.9\n1,20,2,train_loss,0.7\n1,20,2,val_loss,0.8\n"
TABLES = ("sweeps", "runs", "metrics", "metric_chunks", "threshold_overrides", "sweep_jobs")
BIGGEST_INT64 = 2**63 - 1


def cli(*args) -> object:
    """The command through CliRunner; a traceback fails the test instead of being caught."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def checksum(warehouse) -> dict:
    """Each raw table's row count and a digest of its rows, in a stable order."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            table: con.execute(
                f"select count(*), md5(coalesce(string_agg(t::varchar, '|' order by t::varchar), '')) from {table} t"
            ).fetchone()
            for table in TABLES
        }
    finally:
        con.close()


def file_digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_error(result, expected: str, tmp_path) -> None:
    """Exit 2 and exactly one stderr line, `error: ...` (paths shown relative to tmp_path)."""
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].replace(f"{tmp_path}/", "") == f"error: {expected}"


@pytest.fixture
def warehouse(tmp_path):
    """A warehouse holding one imported sweep, 'kept'."""
    path = tmp_path / "wh.duckdb"
    (tmp_path / "kept.csv").write_text(GOOD)
    import_runs(path, tmp_path / "kept.csv", None, "kept")
    return path


# -- imports: every value range-checked where it enters ------------------------------------


def parquet(tmp_path, name: str, columns: dict) -> str:
    pq.write_table(pa.table(columns), tmp_path / name)
    return name


def long_parquet(tmp_path, name: str, **overrides) -> str:
    columns = {"run_id": ["1"], "step": [1], "epoch": [0], "metric": ["train_loss"], "value": [1.0], **overrides}
    return parquet(tmp_path, name, columns)


BAD_METRICS = [
    (
        "run_id,step,epoch,metric,value\n1,9223372036854775807,1,train_loss,1\n",
        f"m.csv: column 'step': run '1' has {BIGGEST_INT64}; steps count from 0 and stay below 2**40; a timestamp is not a step",
    ),
    (
        "run_id,step,epoch,metric,value\n1,-5,1,train_loss,1\n",
        "m.csv: column 'step': run '1' has -5; steps count from 0 and stay below 2**40; a timestamp is not a step",
    ),
    (
        "run_id,step,epoch,metric,value\n1,1,3000000000,train_loss,1\n",
        "m.csv: column 'epoch': run '1' has 3000000000; epochs count from 0 and stay below 2**31",
    ),
    (
        "run_id,step,epoch,metric,value\n1,1,0,epoch,5e9\n1,1,0,train_loss,1\n",
        "m.csv: column 'value': run '1' has 5000000000.0; metric 'epoch' counts from 0 and stays below 2**31",
    ),
    (
        "run_id,step,epoch,metric,value\n1,1,1,train_loss,1\n,2,1,train_loss,1\n",
        "m.csv: column 'run_id': empty at row 2 (a run with no id); fill it or drop the row",
    ),
    (
        "run_id,step,epoch,metric,value\n1,1,1,train_loss,1\n1,2,1,  ,1\n",
        "m.csv: column 'metric': empty at row 2 (a metric with no name); fill it or drop the row",
    ),
    ("run_id,step,epoch,metric,value,step\n1,1,1,train_loss,1,2\n", "m.csv: column 'step' appears twice; keep one"),
]


@pytest.mark.parametrize(("metrics", "message"), BAD_METRICS)
def test_bad_metric_values_are_refused_in_one_line(tmp_path, warehouse, metrics, message):
    (tmp_path / "m.csv").write_text(metrics)
    before = checksum(warehouse)
    one_line_error(cli("import", tmp_path / "m.csv", "--sweep", "new", "-w", warehouse), message, tmp_path)
    assert checksum(warehouse) == before


def test_nanosecond_timestamps_as_steps_and_a_boolean_value_column_are_refused(tmp_path, warehouse):
    before = checksum(warehouse)
    stamped = long_parquet(tmp_path, "ns.parquet", step=[1_700_000_000_000_000_000])
    one_line_error(
        cli("import", tmp_path / stamped, "--sweep", "new", "-w", warehouse),
        "ns.parquet: column 'step': run '1' has 1700000000000000000; steps count from 0 and stay below 2**40; "
        "a timestamp is not a step",
        tmp_path,
    )
    boolean = long_parquet(tmp_path, "b.parquet", value=[True])
    one_line_error(
        cli("import", tmp_path / boolean, "--sweep", "new", "-w", warehouse),
        "b.parquet: column 'value': must be numbers (found bool)",
        tmp_path,
    )
    assert checksum(warehouse) == before


BAD_PARAMS = [
    ("run_id,lr\n1,inf\n", "p.csv: column 'lr': run '1' has inf; a parameter is a finite number, text or true/false"),
    ("run_id,n_classes\n1,three\n", "p.csv: column 'n_classes': run '1' has 'three'; expected a whole number >= 2"),
    (
        "run_id,n_classes\n1,1099511627776\n",
        "p.csv: column 'n_classes': run '1' has 1099511627776; expected fewer than 2**31 classes",
    ),
    ("run_id,lr,lr\n1,0.1,0.2\n", "p.csv: column 'lr' appears twice; keep one"),
    (" ,\n,\n", "p.csv: missing column 'run_id'"),
]


@pytest.mark.parametrize(("params", "message"), BAD_PARAMS)
def test_bad_params_are_refused_in_one_line(tmp_path, warehouse, params, message):
    (tmp_path / "m.csv").write_text(GOOD)
    (tmp_path / "p.csv").write_text(params)
    before = checksum(warehouse)
    args = ("import", tmp_path / "m.csv", "--params", tmp_path / "p.csv", "--sweep", "new", "-w", warehouse)
    one_line_error(cli(*args), message, tmp_path)
    assert checksum(warehouse) == before


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([datetime.date(2024, 1, 1)], "date32[day]"),
        ([datetime.datetime(2024, 1, 1, 12)], "timestamp[us]"),
        ([b"\x00\x01"], "binary"),
        ([[0.9, 0.999]], "list<element: double>"),
    ],
)
def test_params_of_kinds_a_parameter_cannot_be_are_refused_by_column(tmp_path, warehouse, values, kind):
    (tmp_path / "m.csv").write_text(GOOD)
    name = parquet(tmp_path, "p.parquet", {"run_id": ["1"], "when": values})
    before = checksum(warehouse)
    args = ("import", tmp_path / "m.csv", "--params", tmp_path / name, "--sweep", "new", "-w", warehouse)
    one_line_error(
        cli(*args),
        f"p.parquet: column 'when': holds {kind} values; a parameter is a finite number, text or true/false",
        tmp_path,
    )
    assert checksum(warehouse) == before


def test_decimals_are_numbers_and_dates_in_a_csv_stay_text(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    (tmp_path / "m.csv").write_text(GOOD)
    pq.write_table(pa.table({"run_id": ["1"], "lr": [decimal.Decimal("0.01")]}), tmp_path / "p.parquet")
    import_runs(warehouse, tmp_path / "m.csv", tmp_path / "p.parquet", "dec")
    (tmp_path / "p.csv").write_text("run_id,trained_on\n1,2024-01-01\n")
    import_runs(warehouse, tmp_path / "m.csv", tmp_path / "p.csv", "dated")
    assert run_query(warehouse, "select lr from run_params where sweep = 'dec'").column("lr").to_pylist() == [0.01]
    stored = run_query(warehouse, "select config from runs where sweep = 'dated'").column("config")[0].as_py()
    assert json.loads(stored)["trained_on"] == "2024-01-01"


# -- one bad value never poisons every sweep ----------------------------------------------


def test_views_survive_a_step_past_int64_arithmetic_stored_by_an_older_import(tmp_path, warehouse):
    """Such a row got in before imports were range-checked: diagnose, report and every view still work."""
    metrics = pa.table(
        {
            "run_id": ["old:1", "old:1"],
            "step": pa.array([10, BIGGEST_INT64], pa.int64()),
            "epoch": pa.array([0, 1], pa.int64()),
            "metric": ["train_loss", "train_loss"],
            "value": [1.0, 0.5],
        }
    )
    runs = pa.table(
        {
            "run_id": ["old:1"],
            "trial_index": pa.array([0], pa.int32()),
            "config": [json.dumps({"seed": "random", "n_classes": 10**30})],
            "steps": pa.array([BIGGEST_INT64], pa.int64()),
        }
    )
    with Warehouse.open(warehouse, build_views=True) as wh:
        wh.import_runs("old", "old.csv", [], runs, metrics)
    assert cli("diagnose", "-w", warehouse, "-f", "csv").exit_code == 0
    for view in ("run_params", "run_results", "run_curves", "run_features", "diagnosis"):
        run_query(warehouse, f"select * from {view}")
    assert cli("report", "kept", "-w", warehouse, "-o", tmp_path / "r.html").exit_code == 0


def test_run_params_reads_values_no_integer_column_holds_as_null_or_bigint(warehouse):
    """A seed of 2**32, max_retries of 1e11, `seed = "random"`: the view answers for every run."""
    config = {
        "seed": 2**32,
        "epochs": "many",
        "data": {"seed": 2**40, "n_val": 1e30, "noise": "loud"},
        "resources": {"max_retries": 10**11, "cpus_per_trial": "x"},
        "model": {"bidirectional": "sometimes"},
    }
    runs = pa.table(
        {
            "run_id": ["odd:1"],
            "trial_index": pa.array([0], pa.int32()),
            "config": [json.dumps(config)],
            "steps": pa.array([1], pa.int64()),
        }
    )
    metrics = pa.table(
        {"run_id": ["odd:1"], "step": [1], "epoch": [0], "metric": ["train_loss"], "value": [1.0]},
        schema=pa.schema(
            [
                ("run_id", pa.string()),
                ("step", pa.int64()),
                ("epoch", pa.int64()),
                ("metric", pa.string()),
                ("value", pa.float64()),
            ]
        ),
    )
    with Warehouse.open(warehouse, build_views=True) as wh:
        wh.import_runs("odd", "odd.csv", [], runs, metrics)
    row = run_query(warehouse, "select * from run_params where run_id = 'odd:1'").to_pylist()[0]
    assert (row["seed"], row["data_seed"], row["max_retries"]) == (2**32, 2**40, 10**11)
    assert (row["epochs"], row["n_val"], row["noise"], row["bidirectional"]) == (None, None, None, None)
    assert run_query(warehouse, "select count(*) as n from run_results").column("n")[0].as_py() == 2


# -- reads: one statement, every type printable, bounded and streamed ----------------------


def test_one_statement_at_a_time(warehouse, tmp_path):
    one_line_error(
        cli("query", "select 1; select 2", "-w", warehouse),
        "query: one statement at a time, found 2; run each on its own",
        tmp_path,
    )
    one_line_error(cli("query", "  ", "-w", warehouse), "query: no SQL statement given", tmp_path)
    assert cli("query", "select 1 as one;", "-w", warehouse, "-f", "csv").stdout.splitlines() == ['"one"', "1"]


ODD_TYPES = {
    "select interval 3 day as x": "3 days",
    "select now() - max(ended_at) as x from runs": None,
    "select 'infinity'::timestamp as x": "infinity",
    "select '-infinity'::date as x": "-infinity",
    "select '101'::bit as x": "101",
    "select 123456789012345678901234567890::varint as x": "123456789012345678901234567890",
    "select union_value(a := 1) as x": "1",
    "select {'a': interval 1 day} as x": "{'a': 1 day}",
    "select ['infinity'::timestamp] as x": "[infinity]",
    "select 'a'::enum('a', 'b') as x": "a",
    "select '\\x00\\x01'::blob as x": "\\x00\\x01",
}


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "parquet"])
@pytest.mark.parametrize("sql", list(ODD_TYPES))
def test_every_type_prints_in_every_format(warehouse, sql, fmt):
    result = cli("query", sql, "-w", warehouse, "-f", fmt)
    assert result.exit_code == 0, result.stderr
    text = ODD_TYPES[sql]
    if text is None:
        return
    if fmt == "csv":
        assert result.stdout.splitlines()[1].strip('"') == text
    elif fmt == "json":
        assert json.loads(result.stdout) == [{"x": text}]
    elif fmt == "parquet":
        assert pq.read_table(io.BytesIO(result.stdout_bytes)).num_rows == 1
    else:
        assert text in result.stdout


def test_a_table_stops_at_a_thousand_rows_and_says_how_to_get_them_all(warehouse, tmp_path):
    table = cli("query", "select range as i from range(5000)", "-w", warehouse)
    assert table.exit_code == 0
    assert "│ 999 │" in table.stdout and "│ 1000 │" not in table.stdout
    assert (
        table.stderr.strip() == "showing the first 1,000 rows; for all of them: -f csv -o FILE.csv (or json, parquet)"
    )
    out = tmp_path / "all.csv"
    assert cli("query", "select range as i from range(250000)", "-w", warehouse, "-f", "csv", "-o", out).exit_code == 0
    assert len(out.read_text().splitlines()) == 250_001
    rows = json.loads(cli("query", "select range as i from range(250000)", "-w", warehouse, "-f", "json").stdout)
    assert [r["i"] for r in rows] == list(range(250_000))


def test_the_time_limit_covers_writing_and_leaves_no_half_file(warehouse, tmp_path):
    out = tmp_path / "big.json"
    result = cli("query", "select * from range(20000000)", "-w", warehouse, "-f", "json", "-o", out, "--timeout", "0.5")
    one_line_error(result, "query stopped after 0.5 s (--timeout to allow longer)", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.csv", "wh.duckdb"]


# -- output paths never overwrite the warehouse or a sweep's logs --------------------------


def test_output_paths_that_would_destroy_data_are_refused(warehouse, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    with Warehouse.open(warehouse) as wh:
        wh.register_sweep("trained", "grid.toml", "", str(logs), [], [])
    digest = file_digest(warehouse)
    own = "is the warehouse's own file; writing it would destroy the warehouse"
    cases = [
        (("query", "select 1", "-f", "csv", "-o", warehouse), f"--output {warehouse}: {own}"),
        (("query", "select 1", "-f", "parquet", "-o", f"{warehouse}.wal"), f"--output {warehouse}.wal: {own}"),
        (("report", "kept", "-o", warehouse), f"--output {warehouse}: {own}"),
        (
            ("query", "select 1", "-f", "csv", "-o", logs / "x.csv"),
            f"--output {logs / 'x.csv'}: is inside the sweeps' metric logs ({logs}); write it elsewhere",
        ),
        (
            ("query", "select 1", "-f", "csv", "-o", tmp_path / "absent" / "x.csv"),
            f"--output {tmp_path / 'absent' / 'x.csv'}: no folder {tmp_path / 'absent'}; create it first",
        ),
        (("report", "kept", "-o", tmp_path), f"--output {tmp_path}: is a folder; name a file in it"),
    ]
    for args, message in cases:
        result = cli(*args, "-w", warehouse)
        assert result.exit_code == 2 and result.stderr.strip() == f"error: {message}", (args, result.stderr)
    assert file_digest(warehouse) == digest


def test_a_warehouse_path_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "m.csv").write_text(GOOD)
    result = cli("import", tmp_path / "m.csv", "--sweep", "s", "-w", tmp_path / "afile" / "wh.duckdb")
    one_line_error(
        result, "afile/wh.duckdb: cannot make the warehouse's folder: afile is a file, not a folder", tmp_path
    )
    result = cli("import", tmp_path / "m.csv", "--sweep", "s", "-w", tmp_path)
    one_line_error(
        result, f"{tmp_path}: cannot read the warehouse: Is a directory".replace(f"{tmp_path}/", ""), tmp_path
    )


# -- the write connection is locked like reads ---------------------------------------------


def test_a_file_that_is_not_duckdb_is_refused_before_duckdb_reads_it(tmp_path):
    other = tmp_path / "runs.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("create table t (x)")
    (tmp_path / "m.csv").write_text(GOOD)
    digest = file_digest(other)
    for args in (("import", tmp_path / "m.csv", "--sweep", "s"), ("query", "select 1"), ("status",)):
        result = cli(*args, "-w", other)
        one_line_error(
            result, "runs.sqlite: not a DuckDB file, so not a warehouse; point --warehouse at another file", tmp_path
        )
    assert file_digest(other) == digest


def test_a_crafted_warehouse_cannot_read_files_through_the_writer(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the-secret")
    crafted = tmp_path / "crafted.duckdb"
    con = duckdb.connect(str(crafted))
    con.execute(
        f"create view runs as select content as run_id, 'x' as sweep, content as source from read_text('{secret}')"
    )
    con.close()
    (tmp_path / "m.csv").write_text(GOOD)
    digest = file_digest(crafted)
    result = cli("import", tmp_path / "m.csv", "--sweep", "x", "-w", crafted)
    one_line_error(result, "crafted.duckdb: not an rnnsweep warehouse: 'runs' is not a table", tmp_path)
    assert "the-secret" not in result.stdout + result.stderr
    assert file_digest(crafted) == digest


def test_the_write_connection_has_no_file_access_and_cannot_be_unlocked(tmp_path, warehouse):
    (tmp_path / "secret.txt").write_text("the-secret")
    with Warehouse.open(warehouse) as wh:
        with pytest.raises(duckdb.PermissionException):
            wh.con.execute(f"select * from read_text('{tmp_path / 'secret.txt'}')")
        with pytest.raises(duckdb.InvalidInputException):
            wh.con.execute("set enable_external_access = true")
        assert wh.con.execute("select current_setting('autoinstall_known_extensions')").fetchone() == (False,)


@pytest.mark.parametrize("command", ["thresholds", "diagnose"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_threshold_that_is_not_a_finite_number_is_refused(tmp_path, command, value):
    from rnnsweep.service.diagnose import set_thresholds

    warehouse = tmp_path / "wh.duckdb"
    with Warehouse.open(warehouse, build_views=True):
        pass
    set_thresholds(warehouse, {"collapse_sigma": 0.8}, [])
    before = warehouse.read_bytes()
    result = CliRunner().invoke(app, [command, "--set", f"collapse_sigma={value}", "-w", str(warehouse)])
    assert result.exit_code == 2 and result.stdout == ""
    assert (
        result.stderr
        == f"error: --set 'collapse_sigma={value}': a threshold is a finite number; NaN and Inf would silence its rule\n"
    )
    assert warehouse.read_bytes() == before
