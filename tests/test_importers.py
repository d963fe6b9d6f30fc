"""Every log shape `rnnsweep import` reads, each written by the tool that writes it in the wild:
pandas, Keras' CSVLogger layout, Lightning's CSVLogger, torch's SummaryWriter, mlflow's client.
Each lands with canonical metric names at the steps the writer logged them."""

from __future__ import annotations

import csv
import math

import pytest
from typer.testing import CliRunner

from rnnsweep.service.cli import app
from rnnsweep.service.errors import UserError
from rnnsweep.service.importer import import_runs
from rnnsweep.service.importers import SourceFormat
from rnnsweep.service.query import run_query


def rows(warehouse, run_id: str, metric: str) -> list[tuple[int, int, float]]:
    """(step, epoch, value) of one metric of one run, in step order."""
    table = run_query(
        warehouse,
        "select step, epoch, value from metrics where run_id = $run and metric = $metric order by step",
        {"run": run_id, "metric": metric},
    )
    return [(r["step"], r["epoch"], r["value"]) for r in table.to_pylist()]


def metric_names(warehouse, run_id: str) -> set[str]:
    table = run_query(warehouse, "select distinct metric from metrics where run_id = $run", {"run": run_id})
    return set(table.column("metric").to_pylist())


def params(warehouse, run_id: str) -> dict:
    table = run_query(warehouse, "select lr, task_kind, n_classes from run_params where run_id = $run", {"run": run_id})
    return table.to_pylist()[0]


def diagnose(warehouse, sweep: str) -> str:
    result = CliRunner().invoke(app, ["diagnose", sweep, "-w", str(warehouse), "-f", "csv"])
    assert result.exit_code == 0, result.output
    return result.stdout


# -- pandas -------------------------------------------------------------------------------


def test_pandas_parquet_and_csv_with_a_nan_loss(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "run_id": ["a"] * 4,
            "step": [0, 1, 2, 3],
            "epoch": [0, 0, 1, 1],
            "metric": ["train_loss", "val_loss", "train_loss", "val_loss"],
            "value": [0.9, 0.8, float("nan"), 0.7],
        }
    )
    frame.to_parquet(tmp_path / "runs.parquet")  # pandas stores NaN as null here
    frame.to_csv(tmp_path / "runs.csv", index=False)  # and as an empty cell here
    warehouse = tmp_path / "wh.duckdb"
    for name in ("runs.parquet", "runs.csv"):
        import_runs(warehouse, tmp_path / name, None, "pd")
        (step, epoch, value) = rows(warehouse, "pd:a", "train_loss")[1]
        assert (step, epoch) == (2, 1) and math.isnan(value)
    # a wide frame with its index, as `to_csv()` writes it by default: the unnamed index column is not a metric
    pd.DataFrame({"epoch": [0, 1], "loss": [0.7, float("nan")]}).to_csv(tmp_path / "history.csv")
    import_runs(warehouse, tmp_path / "history.csv", None, "pd")
    assert metric_names(warehouse, "pd:history") == {"train_loss"}


# -- wide CSV: Keras and Lightning ---------------------------------------------------------


def write_keras_csv(path, history: dict[str, list[float]]) -> None:
    """As keras.callbacks.CSVLogger writes it: `epoch` first, then the logs' keys sorted, epochs from 0."""
    keys = sorted(history)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["epoch", *keys])
        writer.writeheader()
        for epoch in range(len(history[keys[0]])):
            writer.writerow({"epoch": epoch, **{k: history[k][epoch] for k in keys}})


def test_keras_csv_logger_files_one_run_per_file(tmp_path):
    folder = tmp_path / "keras"
    (folder / "gru").mkdir(parents=True)
    write_keras_csv(
        folder / "lstm.csv",
        {
            "loss": [0.69, 0.41, 0.30],
            "accuracy": [0.5, 0.8, 0.9],
            "val_loss": [0.6, 0.5, 0.55],
            "val_accuracy": [0.6, 0.7, 0.7],
        },
    )
    write_keras_csv(
        folder / "gru" / "lr_0.1.csv",
        {
            "loss": [0.69, float("nan")],
            "accuracy": [0.5, 0.5],
            "val_loss": [0.7, float("nan")],
            "val_accuracy": [0.5, 0.5],
        },
    )
    assert (folder / "lstm.csv").read_text().splitlines()[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    warehouse = tmp_path / "wh.duckdb"
    report = import_runs(warehouse, folder, None, "keras")
    assert (report.runs, report.rows) == (2, 20)
    assert metric_names(warehouse, "keras:lstm") == {"train_loss", "train_acc", "val_loss", "val_acc"}
    assert rows(warehouse, "keras:lstm", "train_loss") == [(0, 0, 0.69), (1, 1, 0.41), (2, 2, 0.30)]
    assert math.isnan(rows(warehouse, "keras:gru/lr_0.1", "val_loss")[1][2])
    # one file alone is one run named after it
    import_runs(warehouse, folder / "lstm.csv", None, "one")
    assert rows(warehouse, "one:lstm", "val_acc") == [(0, 0, 0.6), (1, 1, 0.7), (2, 2, 0.7)]
    assert "keras:lstm" in diagnose(warehouse, "keras")


def test_lightning_csv_logger_versions_are_runs(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    for version, lr in enumerate((0.1, 0.01)):
        logger = CSVLogger(tmp_path / "logs", name="rnn", version=version)
        logger.log_hyperparams({"lr": lr})
        step = 0
        for epoch in range(3):  # as the Trainer logs: per step, then validation, then the epoch means
            for _ in range(2):
                logger.log_metrics({"train_loss_step": 1.0 / (step + 1), "epoch": epoch}, step=step)
                step += 1
            logger.log_metrics({"val_loss": 0.9 - 0.1 * epoch, "val_acc": 0.5 + 0.1 * epoch, "epoch": epoch}, step - 1)
            logger.log_metrics({"train_loss_epoch": 0.75 - 0.25 * epoch, "epoch": epoch}, step=step - 1)
        logger.save()
    header = (tmp_path / "logs" / "rnn" / "version_0" / "metrics.csv").read_text().splitlines()[0]
    assert header == "epoch,step,train_loss_epoch,train_loss_step,val_acc,val_loss"
    warehouse = tmp_path / "wh.duckdb"
    params_file = tmp_path / "params.csv"
    params_file.write_text(
        "run_id,lr,task,n_classes\nrnn/version_0,0.1,classification,4\nrnn/version_1,0.01,classification,4\n"
    )
    report = import_runs(warehouse, tmp_path / "logs", params_file, "pl")
    assert report.runs == 2
    assert metric_names(warehouse, "pl:rnn/version_1") == {"train_loss", "train_loss_step", "val_loss", "val_acc"}
    assert rows(warehouse, "pl:rnn/version_0", "train_loss") == [(1, 0, 0.75), (3, 1, 0.5), (5, 2, 0.25)]
    assert [(s, e) for s, e, _ in rows(warehouse, "pl:rnn/version_0", "train_loss_step")] == [
        (0, 0),
        (1, 0),
        (2, 1),
        (3, 1),
        (4, 2),
        (5, 2),
    ]
    assert params(warehouse, "pl:rnn/version_1") == {"lr": 0.01, "task_kind": "classification", "n_classes": 4}
    assert "pl:rnn/version_0" in diagnose(warehouse, "pl")


def test_a_wide_file_without_step_or_epoch_is_refused_in_one_line(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("loss,val_loss\n0.9,0.8\n")
    with pytest.raises(UserError) as caught:
        import_runs(tmp_path / "wh.duckdb", path, None, "x")
    assert str(caught.value) == (
        f"{path}: no 'step' or 'epoch' column; expected a long table (run_id, step, epoch, metric, value) "
        "or a wide one (a step or epoch column, then one column per metric, optionally run_id)"
    )


# -- TensorBoard ---------------------------------------------------------------------------


def test_tensorboard_log_dir_one_run_per_folder_with_hparams(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    for lr in (0.1, 0.01):
        with SummaryWriter(tmp_path / "runs" / f"lr{lr}") as writer:
            for step in range(6):
                writer.add_scalar("Loss/train", 1.0 / (step + 1) if step < 5 or lr < 0.1 else math.nan, step)
                writer.add_scalar("epoch", step // 2, step)
                if step % 2 == 1:
                    writer.add_scalar("Accuracy/val", 0.5 + 0.1 * step, step)
            writer.add_hparams({"lr": lr, "n_classes": 4, "task": "classification"}, {"hparam/val_acc": 0.9})
    # Keras' TensorBoard callback layout: train/ and validation/ beside each other are one run
    for half, loss in (("train", 0.5), ("validation", 0.75)):
        with SummaryWriter(tmp_path / "runs" / "keras" / half) as writer:
            for epoch in range(3):
                writer.add_scalar("epoch_loss", loss / (epoch + 1), epoch)
    warehouse = tmp_path / "wh.duckdb"
    report = import_runs(warehouse, tmp_path / "runs", None, "tb")
    assert report.runs == 3  # the hparams sub-folders are not runs
    assert metric_names(warehouse, "tb:lr0.1") == {"train_loss", "val_acc"}
    losses = rows(warehouse, "tb:lr0.1", "train_loss")
    assert [(s, e) for s, e, _ in losses] == [(0, 0), (1, 0), (2, 1), (3, 1), (4, 2), (5, 2)]
    assert losses[1][2] == 0.5 and math.isnan(losses[5][2])
    assert params(warehouse, "tb:lr0.01") == {"lr": 0.01, "task_kind": "classification", "n_classes": 4}
    assert rows(warehouse, "tb:keras", "val_loss") == [(0, 0, 0.75), (1, 0, 0.375), (2, 0, 0.25)]
    assert metric_names(warehouse, "tb:keras") == {"train_loss", "val_loss"}
    # --params overrides what the event files hold; one event file alone is a run named after its folder
    params_file = tmp_path / "p.csv"
    params_file.write_text("run_id,lr\nlr0.1,0.3\n")
    before = run_query(warehouse, "select run_id, step, metric, value::varchar as v from metrics order by all")
    import_runs(warehouse, tmp_path / "runs", params_file, "tb", SourceFormat.tensorboard)
    assert params(warehouse, "tb:lr0.1")["lr"] == 0.3
    assert run_query(warehouse, "select run_id, step, metric, value::varchar as v from metrics order by all") == before
    event_file = next((tmp_path / "runs" / "keras" / "train").glob("events.out.tfevents.*"))
    import_runs(warehouse, event_file, None, "one")
    assert rows(warehouse, "one:train", "train_loss")[0] == (0, 0, 0.5)
    assert "tb:lr0.1" in diagnose(warehouse, "tb")


# -- MLflow --------------------------------------------------------------------------------


def test_mlflow_file_store_runs_metrics_and_params(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 writes a file store only when asked
    store = tmp_path / "mlruns"
    client = MlflowClient(tracking_uri=store.as_uri())
    experiment = client.create_experiment("rnn")
    for name, lr in (("lstm", 0.1), ("gru", 0.01), ("gru", 0.001)):
        run = client.create_run(experiment, run_name=name).info.run_id
        for key, value in {"lr": lr, "n_classes": 1, "task": "regression", "optimizer": "adam"}.items():
            client.log_param(run, key, value)
        for epoch in range(3):
            client.log_metric(run, "loss", 1.0 / (epoch + 1), step=epoch)
            client.log_metric(run, "val_loss", 1.2 / (epoch + 1), step=epoch)
            client.log_metric(run, "epoch", epoch, step=epoch)
        client.set_terminated(run)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # the reader opens the store without being told
    warehouse = tmp_path / "wh.duckdb"
    report = import_runs(warehouse, store, None, "ml")
    assert (report.runs, report.rows) == (3, 18)
    runs = run_query(warehouse, "select run_id from runs order by run_id").column("run_id").to_pylist()
    assert runs[2] == "ml:rnn/lstm" and all(r.startswith("ml:rnn/gru-") for r in runs[:2])
    assert rows(warehouse, "ml:rnn/lstm", "train_loss") == [(0, 0, 1.0), (1, 1, 0.5), (2, 2, pytest.approx(1 / 3))]
    assert metric_names(warehouse, "ml:rnn/lstm") == {"train_loss", "val_loss"}
    # n_classes = 1 on a regression run is accepted, and not read as a class count
    assert params(warehouse, "ml:rnn/lstm") == {"lr": 0.1, "task_kind": "regression", "n_classes": None}
    assert "ml:rnn/lstm" in diagnose(warehouse, "ml")


# -- names, formats and refusals -------------------------------------------------------------


def test_map_and_format_options_on_the_command_line(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,ce,val_ce\n1,0.9,1.0\n2,0.8,0.95\n")
    warehouse = tmp_path / "wh.duckdb"
    args = ["import", str(path), "--sweep", "m", "-w", str(warehouse), "--format", "wide"]
    result = CliRunner().invoke(app, [*args, "--map", "ce=train_loss", "--map", "val_ce=val_loss"])
    assert result.exit_code == 0 and result.stderr.strip() == "imported 1 runs (4 metric rows) into sweep m"
    assert rows(warehouse, "m:log", "val_loss") == [(1, 0, 1.0), (2, 0, 0.95)]
    typo = CliRunner().invoke(app, [*args, "--map", "ce=trian_loss"])
    assert typo.exit_code == 2 and typo.stderr.startswith(
        "error: --map 'ce=trian_loss': 'trian_loss' is not a canonical name (did you mean 'train_loss'?"
    )
    absent = CliRunner().invoke(app, [*args, "--map", "xent=train_loss"])
    assert absent.stderr.strip() == f"error: {path}: --map xent=...: no metric 'xent' here (it has ce, val_ce)"
    wrong = CliRunner().invoke(app, [*args[:-1], "tensorboard"])
    assert wrong.stderr.strip() == f"error: {path}: no TensorBoard event files (events.out.tfevents.*) here"
    assert run_query(warehouse, "select count(*) as n from metrics").column("n")[0].as_py() == 4


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(UserError, match="no .csv or .parquet files, TensorBoard event files or MLflow runs here"):
        import_runs(tmp_path / "wh.duckdb", tmp_path, None, "x")
