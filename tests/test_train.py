"""The training job: a 2-step smoke per cell, the instrumentation, reproducibility,
non-finite stops, where L2 applies, and the metric log it writes."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
import torch

from rnnsweep.jobs import instrument
from rnnsweep.jobs.config import OptimizerConfig, TrainingConfig
from rnnsweep.jobs.loop import eval_points, lr_factor
from rnnsweep.jobs.metric_log import (
    METRIC_SCHEMA,
    MetricLog,
    attempt_dir,
    claim_attempt,
    list_chunks,
    read_chunk,
    resolve_storage,
)
from rnnsweep.jobs.model import SequenceModel, make_optimizer, parameter_groups, recurrent_weights
from tests.conftest import run_trial, tiny_trial


def logged(storage, trial) -> pa.Table:
    fs, base = resolve_storage(str(storage))
    return pa.concat_tables(read_chunk(fs, c.path) for c in list_chunks(fs, base, trial.sweep, trial.run_id))


def values(table: pa.Table, metric: str) -> list[float]:
    rows = [r for r in table.to_pylist() if r["metric"] == metric]
    return [r["value"] for r in sorted(rows, key=lambda r: r["step"])]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_two_steps_of_every_cell_log_every_metric(tmp_path, cell, bidirectional):
    # 64 sequences in batches of 32: 2 optimizer steps
    trial = tiny_trial(
        model={"cell": cell, "bidirectional": bidirectional, "layers": 2}, training=TrainingConfig(batch_size=32)
    )
    summary = run_trial(trial, str(tmp_path))
    assert summary.status == "finished" and summary.steps == 2 and summary.attempt == 0
    table = logged(tmp_path, trial)
    assert table.schema.equals(METRIC_SCHEMA, check_metadata=False)
    assert set(table.column("run_id").to_pylist()) == {trial.run_id}
    metrics = set(table.column("metric").to_pylist())
    recurrent = {"sigma_max_hh_l0", "sigma_max_hh_l1"} | (
        {"sigma_max_hh_l0_reverse", "sigma_max_hh_l1_reverse"} if bidirectional else set()
    )
    assert (
        metrics
        == {
            "train_loss",
            "grad_norm",
            "lr",
            "val_loss",
            "val_acc",
            "val_recall",
            "val_f1",
            "train_acc",
            "train_recall",
            "train_f1",
            "pred_std",
            "target_std",
            "n_classes",
            "weight_norm",
            "update_ratio",
            "sigma_max_hh",
        }
        | recurrent
    )
    assert len(values(table, "train_loss")) == 2
    assert len(values(table, "val_loss")) == 2  # the step-0 baseline and the end of epoch 1
    assert all(math.isfinite(v) for v in table.column("value").to_pylist())
    sigma = values(table, "sigma_max_hh")[-1]
    assert sigma == max(values(table, name)[-1] for name in recurrent)


def test_regression_and_multiclass_log_their_own_scores(tmp_path):
    words, kinds = tiny_trial("word_vectors"), tiny_trial("sequences4")
    run_trial(words, str(tmp_path))
    run_trial(kinds, str(tmp_path))
    regression_metrics = set(logged(tmp_path, words).column("metric").to_pylist())
    assert {"val_r2", "val_cosine"} <= regression_metrics and "val_acc" not in regression_metrics
    assert values(logged(tmp_path, kinds), "val_acc")[0] == pytest.approx(0.25, abs=0.2)  # 4 classes, untrained


def test_same_seed_same_curves_other_seed_other_curves(tmp_path):
    a, b = tiny_trial(top={"seed": 3}), tiny_trial(top={"seed": 4})
    run_trial(a, str(tmp_path / "one"))
    run_trial(a, str(tmp_path / "two"))
    run_trial(b, str(tmp_path / "one"))
    first, again, other = (
        values(logged(tmp_path / d, t), "train_loss") for d, t in (("one", a), ("two", a), ("one", b))
    )
    assert first == again
    assert first != other


def test_a_non_finite_loss_stops_the_run_and_is_recorded(tmp_path):
    # targets of 1e20: their squared error overflows float32 at the first step
    path = tmp_path / "huge.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(16, 5, 2)).astype(np.float32), y=np.full((16, 1), 1e20, np.float32))
    trial = tiny_trial("file", data={"path": str(path)})
    summary = run_trial(trial, str(tmp_path / "logs"))
    assert summary.status == "stopped"
    assert summary.stop_reason == "non-finite train loss at step 1"
    table = logged(tmp_path / "logs", trial)
    assert math.isinf(values(table, "train_loss")[-1])
    assert values(table, "nonfinite") == [1.0]


def test_a_trial_that_raises_keeps_what_it_logged(tmp_path):
    trial = tiny_trial("file", data={"path": str(tmp_path / "gone.npz")})
    with pytest.raises(ValueError, match="gone.npz: data.path: no such file"):
        run_trial(trial, str(tmp_path))
    fs, base = resolve_storage(str(tmp_path))
    assert list_chunks(fs, base, trial.sweep, trial.run_id) == []  # failed before any metric


def test_weight_decay_on_non_recurrent_spares_w_hh():
    model = SequenceModel(3, 1, tiny_trial(model={"cell": "gru", "bidirectional": True}).model)
    names = {id(p): n for n, p in model.named_parameters()}
    for where, expect_hh in (("all", True), ("non_recurrent", False)):
        decayed, plain = parameter_groups(model, OptimizerConfig(weight_decay=0.1, weight_decay_on=where))
        decayed_names = {names[id(p)] for p in decayed["params"]}
        assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
        assert any("weight_ih" in n for n in decayed_names) and "head.weight" in decayed_names
        assert any("weight_hh" in n for n in decayed_names) == expect_hh
        assert not any("bias" in n for n in decayed_names)  # biases are never decayed


def sigma_max_hh(model) -> float:
    recurrent = {name: w[None] for name, w in recurrent_weights(model).items()}  # one member
    return instrument.recurrent_sigmas(recurrent)["sigma_max_hh"].item()


def test_strong_l2_on_w_hh_shrinks_its_largest_singular_value():
    """Seed 000's mechanism: L2 drives sigma_max(W_hh) down when the data loss is out of the way."""
    torch.manual_seed(0)
    model = SequenceModel(2, 1, tiny_trial(model={"cell": "rnn", "hidden": 16}).model)
    before = sigma_max_hh(model)
    optimizer = make_optimizer(model, OptimizerConfig(name="sgd", lr=0.5, weight_decay=1.0))
    for _ in range(20):
        optimizer.zero_grad()
        (model(torch.zeros(4, 3, 2)).sum() * 0).backward()  # gradient from L2 only
        optimizer.step()
    assert sigma_max_hh(model) < 0.01 * before


def test_prediction_std_is_zero_for_a_constant_model():
    constant = torch.ones(50, 4)
    assert instrument.prediction_std(constant[None], "multiclass").item() == 0.0
    assert instrument.prediction_std(torch.randn(50, 1)[None], "binary").item() > 0.05


def test_lr_schedules_and_eval_points():
    cosine = lr_factor(tiny_trial(top={"epochs": 4}, training=TrainingConfig(lr_schedule="cosine")), steps_per_epoch=10)
    assert cosine(0) == 1.0 and cosine(20) == pytest.approx(0.5) and cosine(40) == pytest.approx(0.0)
    step = lr_factor(tiny_trial(training=TrainingConfig(lr_schedule="step", lr_step_epochs=2, lr_gamma=0.5)), 10)
    assert [step(s) for s in (0, 19, 20, 40)] == [1.0, 1.0, 0.5, 0.25]
    assert eval_points(10, 1) == {9}
    assert eval_points(10, 2) == {4, 9}
    assert eval_points(3, 5) == {0, 1, 2}  # never more evaluations than steps


def test_metric_log_chunks_are_atomic_and_attempts_are_claimed(tmp_path):
    fs, base = resolve_storage(str(tmp_path))
    assert claim_attempt(fs, base, "s", "r1", "node-a") == 0
    assert claim_attempt(fs, base, "s", "r1", "node-a") == 1  # a retry never reuses an attempt
    log = MetricLog(fs, attempt_dir(base, "s", "r1", 1), "r1", 1)
    log.flush()  # nothing buffered, nothing written
    log.add(1, 1, {"train_loss": 0.5, "lr": 1e-3})
    log.flush()
    log.add(2, 1, {"train_loss": float("nan")})
    log.flush()
    # a file left half-written by a killed worker keeps its .tmp name and is not a chunk
    (tmp_path / "s" / "r1" / "attempt-001" / "chunk-00002.arrow.tmp").write_bytes(b"half")
    chunks = list_chunks(fs, base, "s", "r1")
    assert [(c.attempt, c.chunk) for c in chunks] == [(1, 0), (1, 1)]
    second = read_chunk(fs, chunks[1].path).to_pylist()
    assert second[0]["chunk"] == 1 and second[0]["step"] == 2 and math.isnan(second[0]["value"])
    assert not list(tmp_path.rglob("chunk-00000.arrow.tmp"))


def test_a_retried_attempt_resumes_from_the_checkpoint_and_draws_the_same_curve(tmp_path, monkeypatch):
    from rnnsweep.jobs import checkpoint, metric_log

    monkeypatch.setattr(metric_log, "CHUNK_STEPS", 5)  # a chunk and a checkpoint every 5 steps
    trial = tiny_trial(
        "sequences4",
        top={"epochs": 3, "evals_per_epoch": 2},
        model={"dropout": 0.3, "layers": 2},
        training=TrainingConfig(batch_size=8),
    )  # 64 sequences / 8 = 8 steps per epoch, 24 in all; dropout so the global RNG matters too
    run_trial(trial, str(tmp_path / "reference"))
    reference = {(r["step"], r["metric"]): r["value"] for r in logged(tmp_path / "reference", trial).to_pylist()}

    real_save, saves = checkpoint.save, []

    def save_then_die(fs, path, state):  # the worker dies right after its second checkpoint
        real_save(fs, path, state)
        saves.append(state["step"])
        if len(saves) == 2:
            raise SystemExit("killed")

    monkeypatch.setattr(checkpoint, "save", save_then_die)
    with pytest.raises(SystemExit):
        run_trial(trial, str(tmp_path / "crashed"))
    monkeypatch.setattr(checkpoint, "save", real_save)
    summary = run_trial(trial, str(tmp_path / "crashed"))
    assert summary.attempt == 1 and summary.status == "finished" and summary.steps == 24

    rows = logged(tmp_path / "crashed", trial).to_pylist()
    resumed_at = min(r["step"] for r in rows if r["attempt"] == 1)
    assert resumed_at == saves[1] + 1 == 11  # went on from the checkpoint, not from step 1
    kept = [r for r in rows if r["attempt"] == 1 or r["step"] < resumed_at]  # the warehouse's rule
    merged = {(r["step"], r["metric"]): r["value"] for r in kept}
    assert merged.keys() == reference.keys()
    assert merged == pytest.approx(reference, rel=1e-6)


RAN: list[str] = []


class Planted:
    """What an attacker with write access to shared storage would plant in a checkpoint."""

    def __reduce__(self):
        return RAN.append, ("code from a checkpoint ran",)


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    import pickle

    from rnnsweep.jobs import checkpoint

    fs, path = pafs.LocalFileSystem(), str(tmp_path / "checkpoint.pt")
    torch.save({"step": 3, "model": Planted()}, path)
    with pytest.raises(pickle.UnpicklingError):
        checkpoint.load(fs, path)
    assert RAN == []
