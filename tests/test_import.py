"""`rnnsweep import`: CSV and Parquet in, NaN kept, twice changes nothing, and every bad file
is refused with one line naming it, before anything is written. The other log shapes (wide CSV,
TensorBoard, MLflow) are in test_importers.py."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rnnsweep.service.cli import app
from rnnsweep.service.diagnose import diagnose
from rnnsweep.service.errors import UserError
from rnnsweep.service.importer import import_runs
from rnnsweep.service.query import run_query

GOOD = "run_id,step,epoch,metric,value\n1,10,1,train_loss,0.9\n1,20,2,train_loss,NaN\n1,20,2,val_loss,inf\n2,10,1,train_loss,0.8\n"
PARAMS = "run_id,lr,weight_decay,task,n_classes\n1,0.01,0.0,classification,3\n2,0.001,0.1,classification,3\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def snapshot(warehouse):
    """Every metric row, values as text so NaN equals NaN."""
    return run_query(
        warehouse, "select run_id, step, metric, value::varchar as value from metrics order by all"
    ).to_pylist()


def test_csv_import_keeps_nan_prefixes_run_ids_and_reads_params(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    report = import_runs(warehouse, write(tmp_path, "m.csv", GOOD), write(tmp_path, "p.csv", PARAMS), "old")
    assert (report.runs, report.rows) == (2, 4)
    rows = snapshot(warehouse)
    assert [r["run_id"] for r in rows] == ["old:1", "old:1", "old:1", "old:2"]
    values = {(r["run_id"], r["step"], r["metric"]): r["value"] for r in rows}
    assert values[("old:1", 20, "train_loss")] == "nan" and values[("old:1", 20, "val_loss")] == "inf"
    params = run_query(
        warehouse, "select run_id, lr, weight_decay, task_kind, n_classes, status from run_params order by run_id"
    ).to_pylist()
    assert params == [
        {
            "run_id": "old:1",
            "lr": 0.01,
            "weight_decay": 0.0,
            "task_kind": "classification",
            "n_classes": 3,
            "status": "finished",
        },
        {
            "run_id": "old:2",
            "lr": 0.001,
            "weight_decay": 0.1,
            "task_kind": "classification",
            "n_classes": 3,
            "status": "finished",
        },
    ]
    axes = run_query(warehouse, "select axes from sweeps").column("axes")[0].as_py()
    assert axes == ["import.lr", "import.weight_decay"]


def test_importing_twice_changes_nothing_and_a_corrected_file_replaces(tmp_path):
    warehouse, metrics = tmp_path / "wh.duckdb", write(tmp_path, "m.csv", GOOD)
    import_runs(warehouse, metrics, None, "old")
    first = snapshot(warehouse)
    import_runs(warehouse, metrics, None, "old")
    assert snapshot(warehouse) == first
    import_runs(warehouse, write(tmp_path, "m2.csv", GOOD.replace("0.9", "0.7")), None, "old")
    assert [r["value"] for r in snapshot(warehouse) if r["step"] == 10 and r["run_id"] == "old:1"] == ["0.7"]
    assert run_query(warehouse, "select count(*) as n from runs").column("n")[0].as_py() == 2


def test_parquet_import(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "m.parquet"
    pq.write_table(
        pa.table(
            {"run_id": ["a", "a"], "step": [1, 2], "epoch": [0, 0], "metric": ["val_loss"] * 2, "value": [1.0, 0.5]}
        ),
        path,
    )
    assert import_runs(tmp_path / "wh.duckdb", path, None, "pq").rows == 2


@pytest.mark.parametrize(
    ("metrics", "params", "message"),
    [
        (
            "run_id,step,metric,value\n1,1,val_loss,1\n",
            None,
            "m.csv: missing column 'epoch' (a metrics file has columns run_id, step, epoch, metric, value)",
        ),
        (
            "run_id,step,epoch,metric,value\n1,abc,1,val_loss,1\n",
            None,
            "m.csv: column step: CSV conversion error to int64: invalid value 'abc'",
        ),
        ("run_id,step,epoch,metric,value\n1,,1,val_loss,1\n", None, "m.csv: column 'step': empty at row 1"),
        (
            "run_id,step,epoch,metric,value\n1,1,1,val_loss,1\n1,1,1,val_loss,2\n",
            None,
            "m.csv: 1 duplicate (run_id, step, metric) rows, e.g. run '1' step 1 metric 'val_loss'",
        ),
        ("run_id,step,epoch,metric,value\n", None, "m.csv: no rows"),
        (
            "run_id,step,epoch,metric,value\n1,1,1,perplexity,1\n",
            None,
            "m.csv: none of its metrics (perplexity) is a canonical name",
        ),
        (
            "run_id,step,epoch,metric,value\n1,1,1,loss,1\n1,1,1,train_loss,1\n",
            None,
            "m.csv: run '1': 'loss' and 'train_loss' both read as 'train_loss'; keep one as it is with --map train_loss=train_loss",
        ),
        (GOOD, "run_id,lr\n3,0.1\n", "p.csv: run '3' has no rows in the metrics (its runs are '1', '2')"),
        (GOOD, "run_id,lr\n1,0.1\n1,0.2\n", "p.csv: run '1' appears twice"),
        (
            GOOD,
            "run_id,task\n1,segmentation\n",
            "p.csv: column 'task': run '1' has 'segmentation'; expected one of classification, regression",
        ),
        (
            GOOD,
            "run_id,n_classes\n1,1\n",
            "p.csv: column 'n_classes': run '1' has 1; expected a whole number >= 2 (or task = regression)",
        ),
        (
            GOOD,
            "run_id,task,n_classes\n1,classification,1\n",
            "p.csv: column 'n_classes': run '1' has 1; expected a whole number >= 2",
        ),
        (GOOD, "run_id,task,n_classes\n1,regression,1.5\n", "p.csv: column 'n_classes': run '1' has 1.5"),
        (
            GOOD,
            "run_id,task,target_std\n1,regression,0\n",
            "p.csv: column 'target_std': run '1' has 0; expected the targets' standard deviation, a number from 1e-100",
        ),
        (GOOD, "run_id,target_std\n1,wide\n", "p.csv: column 'target_std': run '1' has 'wide'"),
        (GOOD, "run_id,target_std\n1,1e200\n", "p.csv: column 'target_std': run '1' has 1e+200; expected"),
        (GOOD, "run_id,target_std\n1,true\n", "p.csv: column 'target_std': run '1' has True; expected"),
        (
            GOOD,
            "run_id,task,target_std\n1,classification,0.3\n",
            "p.csv: column 'target_std': run '1' is a classification run; target_std is a regression's",
        ),
        (GOOD, "lr\n0.1\n", "p.csv: missing column 'run_id'"),
    ],
)
def test_bad_files_are_refused_whole(tmp_path, metrics, params, message):
    warehouse = tmp_path / "wh.duckdb"
    import_runs(warehouse, write(tmp_path, "ok.csv", GOOD), None, "kept")
    before = snapshot(warehouse)
    params_path = write(tmp_path, "p.csv", params) if params else None
    with pytest.raises(UserError) as caught:
        import_runs(warehouse, write(tmp_path, "m.csv", metrics), params_path, "new")
    assert str(caught.value).removeprefix(str(tmp_path) + "/").startswith(message)
    assert snapshot(warehouse) == before  # nothing half-loaded
    assert run_query(warehouse, "select count(*) as n from sweeps where name = 'new'").column("n")[0].as_py() == 0


def test_n_classes_of_one_on_a_regression_run_is_accepted_and_ignored(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    params = write(tmp_path, "p.csv", "run_id,task,n_classes\n1,regression,1\n2,regression,0\n")
    import_runs(warehouse, write(tmp_path, "m.csv", GOOD), params, "reg")
    read = run_query(warehouse, "select task_kind, n_classes from run_params order by run_id").to_pylist()
    assert read == [{"task_kind": "regression", "n_classes": None}] * 2
    configs = run_query(warehouse, "select config->>'$.n_classes' as n from runs").column("n").to_pylist()
    assert configs == [None, None]


def test_a_regression_log_of_loss_only_is_judged_by_the_targets_spread_given_in_the_params(tmp_path):
    """Loss only, per epoch, no untrained evaluation: without the targets' spread the diagnosis
    cannot tell "predicts their mean" from "learned the task" and abstains; with it, a validation
    loss at the targets' variance is no learning at all."""
    metrics = "run_id,step,epoch,metric,value\n" + "".join(
        f"{run},{e * 10},{e},{m},{v}\n"
        for run, level in (("flat", 0.25), ("learns", None))
        for e in range(1, 9)
        for m, v in (("train_loss", level or 0.25 / e), ("val_loss", level or 0.26 / e))
    )
    source = write(tmp_path, "m.csv", metrics)
    verdicts = {}
    for given in ("", ",0.5"):  # a spread of 0.5: variance 0.25, the flat run's loss
        header = "run_id,task" + (",target_std" if given else "")
        task = "regression" if not given else ""  # a spread given says regression by itself
        params = write(
            tmp_path, "p.csv", header + "\n" + "".join(f"{run},{task}{given}\n" for run in ("flat", "learns"))
        )
        import_runs(tmp_path / "wh.duckdb", source, params, "reg")
        rows = diagnose(tmp_path / "wh.duckdb", "reg").to_pylist()
        verdicts[given] = {r["run_id"]: (r["label"], r["confidence"], r["evidence"]) for r in rows}
    assert {run: v[:2] for run, v in verdicts[""].items()} == {
        "reg:flat": ("healthy", "low"),
        "reg:learns": ("healthy", "low"),
    }
    assert verdicts[""]["reg:flat"][2].startswith("no baseline")
    assert verdicts[",0.5"]["reg:flat"][0] == "constant_output"
    assert verdicts[",0.5"]["reg:learns"][0] == "healthy"


def test_other_refusals(tmp_path):
    with pytest.raises(UserError, match="absent.csv: no such file"):
        import_runs(tmp_path / "wh.duckdb", tmp_path / "absent.csv", None, "x")
    with pytest.raises(UserError, match=r"m.txt: must be a .csv or .parquet file"):
        import_runs(tmp_path / "wh.duckdb", write(tmp_path, "m.txt", GOOD), None, "x")
    with pytest.raises(UserError, match="--sweep 'a b': may hold only"):
        import_runs(tmp_path / "wh.duckdb", write(tmp_path, "m.csv", GOOD), None, "a b")


def test_import_command(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    args = [
        "import",
        str(write(tmp_path, "m.csv", GOOD)),
        "--params",
        str(write(tmp_path, "p.csv", PARAMS)),
        "--sweep",
        "old",
        "-w",
        str(warehouse),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and result.stderr.strip() == "imported 2 runs (4 metric rows) into sweep old"
    bad = CliRunner().invoke(app, ["import", str(tmp_path / "nope.csv"), "--sweep", "old", "-w", str(warehouse)])
    assert bad.exit_code == 2 and bad.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: no such file or folder"
