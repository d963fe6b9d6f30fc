"""Diagnosis rules on hand-made curves (minimal, epoch-level logs, imported the way a user
would), threshold overrides, and the diagnose/thresholds commands."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rnnsweep.service import diagnose as diagnosis
from rnnsweep.service.cli import app
from rnnsweep.service.errors import UserError
from rnnsweep.service.importer import import_runs

EPOCHS = 20
rng = np.random.default_rng(0)


def decay(start: float, end: float, speed: float = 0.3) -> np.ndarray:
    return end + (start - end) * np.exp(-speed * np.arange(EPOCHS))


# name -> (params, {metric: curve}); 4-class classification unless said otherwise
CURVES = {
    "healthy": ({}, {"train_loss": decay(1.39, 0.2), "val_loss": decay(1.39, 0.3), "val_acc": 1 - decay(0.75, 0.1)}),
    "noisy": (
        {},
        {
            "train_loss": decay(1.39, 0.3) * rng.uniform(0.75, 1.25, EPOCHS),
            "val_loss": decay(1.39, 0.4) * rng.uniform(0.9, 1.1, EPOCHS),
            "val_acc": 1 - decay(0.75, 0.2),
        },
    ),
    "plateau": (
        {},
        {
            "train_loss": decay(1.39, 0.1, speed=3.0),
            "val_loss": decay(1.39, 0.15, speed=3.0),
            "val_acc": 1 - decay(0.75, 0.05, speed=3.0),
        },
    ),
    "overfit": (
        {},
        {
            "train_loss": decay(1.39, 0.02),
            "val_loss": np.r_[decay(1.39, 0.4)[:6], np.linspace(0.65, 1.1, EPOCHS - 6)],
            "val_acc": np.r_[np.linspace(0.3, 0.8, 6), np.linspace(0.78, 0.6, EPOCHS - 6)],
        },
    ),
    "nan": (
        {},
        {
            "train_loss": np.r_[decay(1.39, 0.2)[:7], [np.nan] * 13],
            "val_loss": decay(1.39, 0.3),
            "val_acc": 1 - decay(0.75, 0.2),
        },
    ),
    "rise": (
        {"beta1": 0.5, "optimizer": "adam", "lr": 0.01},
        {
            "train_loss": np.r_[decay(1.39, 0.2)[:8], np.linspace(0.4, 1.2, 4), [1.2] * 8],
            "val_loss": np.r_[decay(1.39, 0.3)[:8], [1.25] * 12],
            "val_acc": np.r_[np.linspace(0.3, 0.85, 8), [0.3] * 12],
        },
    ),
    "l2": (
        {"weight_decay": 0.1},
        {"train_loss": np.full(EPOCHS, 1.386), "val_loss": np.full(EPOCHS, 1.386), "val_acc": np.full(EPOCHS, 0.25)},
    ),
    "stuck": (
        {"weight_decay": 0.0},
        {"train_loss": np.full(EPOCHS, 1.386), "val_loss": np.full(EPOCHS, 1.387), "val_acc": np.full(EPOCHS, 0.25)},
    ),
}
EXPECTED = {
    "healthy": "healthy",
    "noisy": "healthy",
    "plateau": "healthy",
    "overfit": "overfitting",
    "nan": "diverged",
    "rise": "diverged",
    "l2": "l2_collapsed",
    "stuck": "constant_output",
}


def write_logs(tmp_path, curves=CURVES):
    rows, params = [], []
    for run, (extra, series) in curves.items():
        params.append({"run_id": run, "task": "classification", "n_classes": 4, "lr": 1e-3, **extra})
        for metric, values in series.items():
            rows += [
                {"run_id": run, "step": 100 * (e + 1), "epoch": e + 1, "metric": metric, "value": float(v)}
                for e, v in enumerate(values)
            ]
    metrics, params_file = tmp_path / "metrics.parquet", tmp_path / "params.parquet"
    pq.write_table(pa.Table.from_pylist(rows), metrics)
    keys = sorted({k for p in params for k in p})  # from_pylist would take the first row's keys only
    pq.write_table(pa.table({k: [p.get(k) for p in params] for k in keys}), params_file)
    return metrics, params_file


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "wh.duckdb"
    import_runs(path, *write_logs(tmp_path), sweep="logs")
    return path


def by_run(table: pa.Table) -> dict[str, dict]:
    return {r["run_id"].removeprefix("logs:"): r for r in table.to_pylist()}


def test_each_pathology_gets_its_label_from_epoch_level_logs(warehouse):
    found = by_run(diagnosis.diagnose(warehouse, "logs"))
    assert {run: found[run]["label"] for run in CURVES} == EXPECTED


def test_labels_carry_onset_evidence_and_fix(warehouse):
    found = by_run(diagnosis.diagnose(warehouse))
    nan = found["nan"]
    assert (nan["onset_step"], nan["metric"], nan["confidence"]) == (800, "train_loss", "high")
    assert nan["evidence"] == "train_loss became NaN/Inf at step 800"
    assert "check the inputs for NaN/Inf" in nan["fix"] and "clip gradients" in nan["fix"]
    rise = found["rise"]
    assert rise["onset_step"] == 800 and rise["confidence"] == "medium"
    assert rise["evidence"] == (
        "train loss rose from its best 0.346 (step 800) to 1.2 over the last 20% of training, "
        "giving back 82% of what it had learned (>= 50%)"
    )
    assert (
        "set optimizer.betas = [0.9, 0.999] (beta1 is 0.5)" in rise["fix"]
        and "lower optimizer.lr 0.01 -> 0.001" in rise["fix"]
    )
    overfit = found["overfit"]
    assert overfit["onset_step"] == 600 and overfit["metric"] == "val_loss"
    assert overfit["value"] > overfit["threshold"]
    assert overfit["fix"].startswith("stop at step 600, the best validation loss")
    l2 = found["l2"]
    assert (l2["metric"], l2["value"], l2["threshold"], l2["confidence"]) == ("weight_decay", 0.1, 0.01, "low")
    assert "shrink optimizer.weight_decay 0.1 -> 0.01" in l2["fix"]
    assert found["healthy"]["fix"] is None and found["healthy"]["onset_step"] is None
    assert found["healthy"]["evidence"].endswith("no rule fired")


def test_a_query_override_changes_the_verdict_and_nothing_else(warehouse):
    strict = by_run(diagnosis.diagnose(warehouse, overrides={"overfit_val_rise": 5.0}))
    assert strict["overfit"]["label"] == "healthy"
    assert by_run(diagnosis.diagnose(warehouse))["overfit"]["label"] == "overfitting"  # only that query


def test_a_warehouse_override_persists_and_can_be_reset(warehouse):
    diagnosis.set_thresholds(warehouse, {"l2_strong": 0.5}, [])
    assert by_run(diagnosis.diagnose(warehouse))["l2"]["label"] == "constant_output"  # 0.1 no longer "strong"
    table = {r["name"]: r for r in diagnosis.thresholds(warehouse).to_pylist()}
    assert (table["l2_strong"]["value"], table["l2_strong"]["default_value"], table["l2_strong"]["source"]) == (
        0.5,
        0.01,
        "warehouse",
    )
    assert (
        by_run(diagnosis.diagnose(warehouse, overrides={"l2_strong": 0.05}))["l2"]["label"] == "l2_collapsed"
    )  # query beats warehouse
    diagnosis.set_thresholds(warehouse, {}, ["l2_strong"])
    assert by_run(diagnosis.diagnose(warehouse))["l2"]["label"] == "l2_collapsed"


def test_unknown_thresholds_and_bad_assignments_are_one_line(warehouse):
    with pytest.raises(UserError, match=r"unknown threshold 'colapse_sigma' \(did you mean 'collapse_sigma'\?\)"):
        diagnosis.diagnose(warehouse, overrides={"colapse_sigma": 1.0})
    with pytest.raises(UserError, match="expected NAME=NUMBER"):
        diagnosis.parse_assignments(["collapse_sigma:1"])
    with pytest.raises(UserError, match="no sweep named 'nope'"):
        diagnosis.diagnose(warehouse, "nope")


def test_the_diagnose_command_prints_labels_and_counts(warehouse):
    runner = CliRunner()
    result = runner.invoke(app, ["diagnose", "logs", "-w", str(warehouse), "-f", "json"])
    assert result.exit_code == 0
    assert {r["run_id"]: r["label"] for r in json.loads(result.stdout)} == {f"logs:{k}": v for k, v in EXPECTED.items()}
    assert (
        result.stderr.strip() == "8 runs: healthy 3 · overfitting 1 · l2_collapsed 1 · diverged 2 · constant_output 1"
    )
    table = runner.invoke(app, ["diagnose", "-w", str(warehouse), "--set", "overfit_val_rise=5"])
    assert table.exit_code == 0 and "constant_output" in table.stdout
    shown = runner.invoke(app, ["thresholds", "-w", str(warehouse), "-f", "csv"])
    assert shown.stdout.splitlines()[0] == '"name","value","default_value","source","description"'


def test_nan_values_in_metrics_stay_values_not_missing_rows(warehouse):
    from rnnsweep.service.query import run_query

    rows = run_query(
        warehouse,
        "select count(*) as n, count(*) filter (where isnan(value)) as nans from metrics where run_id = 'logs:nan'",
    ).to_pylist()
    assert rows == [{"n": 60, "nans": 13}]
    assert math.isnan(
        run_query(warehouse, "select max(value) as v from metrics where run_id = 'logs:nan' and metric = 'train_loss'")
        .column("v")[0]
        .as_py()
    )


# Logs that say less than rnnsweep's own (issue 13): epoch-level, starting after the first
# epoch, loss only, many classes. name -> (params, {metric: curve}, {metric: untrained value at step 0})
KNOWING = {
    # the quickstart's LSTM at lr 0.03: 0.20 by epoch 7, 0.73 in epoch 8, the run's last
    "late_jump": (
        {"n_classes": 2},
        {
            "train_loss": [0.69, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.73],
            "val_loss": [0.66, 0.55, 0.45, 0.38, 0.3, 0.26, 0.22, 0.7],
            "val_acc": [0.6, 0.7, 0.8, 0.85, 0.9, 0.92, 0.94, 0.7],
        },
        {},
    ),
    # a 10,000-word language model whose first epoch did most of the learning: a flat loss
    # after it is no "did not learn" (ln 10000 = 9.2 is chance)
    "lm_learned_early": (
        {"n_classes": 10_000},
        {"train_loss": np.linspace(5.3, 4.9, EPOCHS), "val_loss": np.linspace(5.2, 4.95, EPOCHS)},
        {},
    ),
    # ... and one whose loss never left chance
    "lm_at_chance": (
        {"n_classes": 10_000},
        {"train_loss": np.full(EPOCHS, 9.2), "val_loss": np.full(EPOCHS, 9.21)},
        {},
    ),
    # regression, loss only, flat from the first logged epoch: no baseline, no chance level
    "regression_flat": (
        {"task": "regression", "n_classes": None},
        {"train_loss": np.linspace(0.061, 0.059, EPOCHS), "val_loss": np.linspace(0.06, 0.0595, EPOCHS)},
        {},
    ),
    # the same with the untrained model's loss at step 0: it never moved from it
    "regression_flat_from_untrained": (
        {"task": "regression", "n_classes": None},
        {"train_loss": np.linspace(0.061, 0.059, EPOCHS), "val_loss": np.linspace(0.06, 0.0595, EPOCHS)},
        {"val_loss": 0.062},
    ),
    # the same under strong L2: still unknowable, but the evidence names the suspect
    "regression_flat_l2": (
        {"task": "regression", "n_classes": None, "weight_decay": 0.1},
        {"train_loss": np.linspace(0.061, 0.059, EPOCHS), "val_loss": np.linspace(0.06, 0.0595, EPOCHS)},
        {},
    ),
    # a slow learner, still at chance at the end, its loss still falling
    "slow_at_chance": (
        {"n_classes": 2},
        {
            "train_loss": np.linspace(0.69, 0.55, EPOCHS),
            "val_loss": np.linspace(0.69, 0.56, EPOCHS),
            "val_acc": np.full(EPOCHS, 0.5),
        },
        {"val_loss": 0.70, "val_acc": 0.5},
    ),
    # stuck at chance (ln 4) for 14 epochs, then its loss starts to fall, still near chance
    "slow_stuck_then_falling": (
        {"n_classes": 4},
        {
            "train_loss": np.r_[np.full(14, 1.386), np.linspace(1.37, 1.25, 6)],
            "val_loss": np.r_[np.full(14, 1.386), np.linspace(1.375, 1.26, 6)],
            "val_acc": np.full(EPOCHS, 0.26),
        },
        {},
    ),
}
KNOWN = {
    "late_jump": ("diverged", "medium", "train loss jumped from its best 0.2 (step 700) to 0.73"),
    "lm_learned_early": ("healthy", "medium", "best val_loss 4.95"),
    "lm_at_chance": ("constant_output", "low", ""),
    "regression_flat": ("healthy", "low", "no baseline: the log starts at step 100, after training began"),
    "regression_flat_from_untrained": ("constant_output", "low", ""),
    "regression_flat_l2": ("healthy", "low", "no baseline: "),
    "slow_at_chance": ("healthy", "low", "not above chance yet: raise lr or train longer"),
    "slow_stuck_then_falling": ("healthy", "low", "not above chance yet: raise lr or train longer"),
}


def test_the_diagnosis_knows_what_the_log_does_not_say(tmp_path):
    rows, params = [], []
    for run, (extra, series, untrained) in KNOWING.items():
        params.append({"run_id": run, "task": "classification", "lr": 1e-3, **extra})
        rows += [{"run_id": run, "step": 0, "epoch": 0, "metric": m, "value": v} for m, v in untrained.items()]
        for metric, values in series.items():
            rows += [
                {"run_id": run, "step": 100 * (e + 1), "epoch": e + 1, "metric": metric, "value": float(v)}
                for e, v in enumerate(values)
            ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "metrics.parquet")
    keys = sorted({k for p in params for k in p})
    pq.write_table(pa.table({k: [p.get(k) for p in params] for k in keys}), tmp_path / "params.parquet")
    import_runs(tmp_path / "wh.duckdb", tmp_path / "metrics.parquet", tmp_path / "params.parquet", sweep="logs")
    found = by_run(diagnosis.diagnose(tmp_path / "wh.duckdb", "logs"))
    for run, (label, confidence, evidence) in KNOWN.items():
        row = found[run]
        assert (row["label"], row["confidence"]) == (label, confidence), (run, row["evidence"])
        assert row["evidence"].startswith(evidence), (run, row["evidence"])
    assert found["late_jump"]["onset_step"] == 700 and "lower optimizer.lr" in found["late_jump"]["fix"]
    assert "weight_decay 0.1 >= 0.01: if it did not learn, suspect L2" in found["regression_flat_l2"]["evidence"]
    # the fall is what tells it from a constant output: ask for a steeper one and it is one
    stricter = by_run(diagnosis.diagnose(tmp_path / "wh.duckdb", "logs", overrides={"still_falling": 0.5}))
    assert stricter["slow_stuck_then_falling"]["label"] == "constant_output"
