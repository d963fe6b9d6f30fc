"""The Lightning logger and the Ray Tune callback, each driven by the real library: what a user's
Trainer or Tuner reports lands in the warehouse under rnnsweep's names, and gets a diagnosis."""

from __future__ import annotations

import math

import pytest

from rnnsweep.service.diagnose import diagnose
from rnnsweep.service.query import run_query
from rnnsweep.service.sync import sync_sweep

LABELS = {"healthy", "overfitting", "l2_collapsed", "diverged", "constant_output"}
RUNS = "select run_id, status, steps, error from runs order by run_id"
METRICS = "select metric, step, epoch, value from metrics where run_id = $run order by metric, step"


def metrics_of(warehouse, run_id: str) -> dict[str, list[tuple[int, int, float]]]:
    found: dict[str, list] = {}
    for row in run_query(warehouse, METRICS, {"run": run_id}).to_pylist():
        found.setdefault(row["metric"], []).append((row["step"], row["epoch"], row["value"]))
    return found


# -- Lightning --------------------------------------------------------------------------

# Lightning 2.6 still builds torch's LeafSpec, which newer torch deprecates (Lightning's to fix).
LIGHTNING_ON_NEW_TORCH = pytest.mark.filterwarnings("ignore:.*LeafSpec.* is deprecated:FutureWarning")


def lightning_fit(tmp_path, fail_at_batch: int | None = None):
    """A LightningModule with an nn.LSTM, 4 batches an epoch, fit for 2 epochs by a real Trainer."""
    import lightning.pytorch as pl
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from rnnsweep.jobs.integrations.lightning import RnnsweepLogger

    class Regressor(pl.LightningModule):
        def __init__(self, lr: float = 0.05, hidden: int = 4):
            super().__init__()
            self.save_hyperparameters()
            self.lstm = nn.LSTM(2, hidden, batch_first=True)
            self.head = nn.Linear(hidden, 1)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

        def training_step(self, batch, index):
            if index == fail_at_batch:
                raise ValueError("the batch was bad")
            loss = nn.functional.mse_loss(self(batch[0]), batch[1])
            self.log("train_loss", loss, on_step=True, on_epoch=True)  # train_loss_step, train_loss_epoch
            return loss

        def validation_step(self, batch, index):
            self.log("val_loss", nn.functional.mse_loss(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(32, 5, 2, generator=generator), torch.randn(32, 1, generator=generator))
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=RnnsweepLogger(sweep="pl", config={"data": {"seq_len": 5}}, storage=str(tmp_path / "logs")),
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(Regressor(), DataLoader(data, batch_size=8), DataLoader(data, batch_size=16))


@LIGHTNING_ON_NEW_TORCH
def test_a_lightning_fit_lands_finished_with_canonical_names_and_sigma_max(tmp_path):
    lightning_fit(tmp_path)
    warehouse = tmp_path / "wh.duckdb"
    report = sync_sweep(warehouse, "pl", str(tmp_path / "logs"))
    assert (report.runs, report.ended, report.running) == (1, 1, 0)
    [run] = run_query(warehouse, RUNS).to_pylist()
    assert (run["status"], run["steps"], run["error"]) == ("finished", 8, None)
    metrics = metrics_of(warehouse, run["run_id"])
    # 4 batches an epoch: a train loss after each of the 8 optimizer steps, validation after 4 and 8.
    assert [(step, epoch) for step, epoch, _ in metrics["train_loss"]] == [(s, 1 + (s > 4)) for s in range(1, 9)]
    assert [(step, epoch) for step, epoch, _ in metrics["val_loss"]] == [(4, 1), (8, 2)]
    assert [step for step, _, _ in metrics["train_loss_epoch"]] == [4, 8]  # the epoch mean keeps its name
    for name in ("sigma_max_hh.lstm.l0", "sigma_max_hh", "weight_norm"):  # watched beside each validation
        assert [step for step, _, _ in metrics[name]] == [4, 8]
        assert all(math.isfinite(value) and value > 0 for _, _, value in metrics[name])
    [params] = run_query(warehouse, "select lr, hidden, params from run_params").to_pylist()
    assert (params["lr"], params["hidden"]) == (0.05, 4)  # save_hyperparameters(), beside the logger's config
    assert '"data/seq_len":5' in params["params"].replace(" ", "")
    [row] = diagnose(warehouse, "pl").to_pylist()
    assert row["run_id"] == run["run_id"] and row["label"] in LABELS


@LIGHTNING_ON_NEW_TORCH
def test_a_lightning_fit_that_raises_lands_failed_with_its_error(tmp_path):
    with pytest.raises(ValueError, match="the batch was bad"):
        lightning_fit(tmp_path, fail_at_batch=2)
    warehouse = tmp_path / "wh.duckdb"
    assert sync_sweep(warehouse, "pl", str(tmp_path / "logs")).ended == 1
    [run] = run_query(warehouse, RUNS).to_pylist()
    assert (run["status"], run["steps"]) == ("failed", 2)
    assert run["error"] == "ValueError: the batch was bad"
    assert [step for step, _, _ in metrics_of(warehouse, run["run_id"])["train_loss"]] == [1, 2]


# -- Ray Tune ---------------------------------------------------------------------------


@pytest.mark.ray
def test_every_tune_trial_lands_as_a_run_with_its_metrics_and_lr(local_ray, tmp_path):
    from ray import tune

    from rnnsweep.jobs.integrations.tune import RnnsweepCallback

    def trainable(config):
        for i in range(1, 5):
            if config["lr"] > 0.05 and i == 3:
                raise RuntimeError("the loss went NaN")
            tune.report({"loss": config["lr"] / i, "val_loss": 2 * config["lr"] / i, "note": "text is left out"})

    callback = RnnsweepCallback(sweep="tuned", storage=str(tmp_path / "logs"), names={"loss": "train_loss"})
    tuner = tune.Tuner(
        trainable,
        param_space={"lr": tune.grid_search([0.01, 0.1]), "model": {"hidden": 8}},
        tune_config=tune.TuneConfig(num_samples=2),  # each lr twice: the same config, two trials
        run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path / "tune"), callbacks=[callback], verbose=0),
    )
    assert len(tuner.fit().errors) == 2  # both lr = 0.1 trials

    warehouse = tmp_path / "wh.duckdb"
    report = sync_sweep(warehouse, "tuned", str(tmp_path / "logs"))
    assert (report.runs, report.ended, report.running) == (4, 4, 0)
    runs = run_query(
        warehouse,
        "select run_id, lr, params ->> '$.sample' as sample, params ->> '$.model/hidden' as hidden, "
        "runs.status, runs.steps, runs.error from runs join run_params using (run_id)",
    ).to_pylist()
    assert {(r["lr"], r["sample"], r["hidden"]) for r in runs} == {
        (0.01, None, "8"),
        (0.01, "2", "8"),  # the second trial of a config is its sample 2: a run is its config
        (0.1, None, "8"),
        (0.1, "2", "8"),
    }
    for run in runs:
        metrics = metrics_of(warehouse, run["run_id"])
        assert set(metrics) == {"train_loss", "val_loss"}  # renamed; Tune's own keys and text left out
        if run["lr"] == 0.01:
            assert (run["status"], run["steps"], run["error"]) == ("finished", 4, None)
            assert [(step, value) for step, _, value in metrics["train_loss"]] == [(i, 0.01 / i) for i in range(1, 5)]
        else:
            assert (run["status"], run["steps"], run["error"]) == ("failed", 2, "RuntimeError: the loss went NaN")
    assert {row["run_id"] for row in diagnose(warehouse, "tuned").to_pylist()} == {run["run_id"] for run in runs}
