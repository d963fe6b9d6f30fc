"""A PyTorch Lightning logger that logs into rnnsweep.

    from rnnsweep.jobs.integrations.lightning import RnnsweepLogger

    trainer = Trainer(logger=RnnsweepLogger(sweep="exp"), max_epochs=20)
    trainer.fit(model, train_loader, val_loader)   # then: rnnsweep sync exp

One logger is one `Run`, of one `fit`: its config is the `config` given here plus the module's
`save_hyperparameters()` (Lightning hands them over as `fit` starts), so the Run opens at the
first logged metric. Every metric Lightning logs goes to the Run at rnnsweep's step and epoch:
Lightning logs a batch's metrics at the count of optimizer steps before it and counts epochs from
0, rnnsweep counts the steps taken (as `trainer.global_step` does) and epochs from 1, so both are
Lightning's + 1. LIGHTNING_NAMES renames the usual names to rnnsweep's canonical ones (`names=`
adds or overrides). With `watch=True` (default) the LightningModule is watched: every log that
carries a val_* metric also gets the weight norm and the largest singular value of every
recurrent matrix in it (`sigma_max_hh.<module path>`). When `fit` ends, the Run ends: finished,
or failed with the exception that stopped it. Lightning ends a `validate` or `test` the same way,
so a later one on the same logger is not logged (a warning says so): give it a new logger.
"""

from __future__ import annotations

import sys
import warnings
from argparse import Namespace

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from rnnsweep.jobs.integrations.adapt import flat_config, numbers, rename
from rnnsweep.jobs.run import Run

# Lightning's name -> rnnsweep's. self.log(name, on_step=True, on_epoch=True) logs name_step and
# name_epoch: a training metric is kept per step (its epoch mean stays as it is), a validation
# metric per epoch (its per-batch values stay as they are). Names already canonical pass unchanged.
LIGHTNING_NAMES = {
    "train_loss_step": "train_loss",
    "train_acc_step": "train_acc",
    "train_accuracy": "train_acc",
    "val_loss_epoch": "val_loss",
    "val_acc_epoch": "val_acc",
    "val_accuracy": "val_acc",
    "lr-Adam": "lr",  # LearningRateMonitor, one optimizer and one param group
    "lr-AdamW": "lr",
    "lr-SGD": "lr",
}


class RnnsweepLogger(Logger):
    """Logs a Lightning `fit` as one rnnsweep Run of `sweep` under `storage` (see the module doc)."""

    def __init__(
        self,
        sweep: str = "default",
        config: dict | None = None,
        storage: str | None = None,
        watch: bool = True,
        names: dict[str, str] | None = None,
    ):
        super().__init__()
        self._sweep, self._storage, self._watch = sweep, storage, watch
        self._config = flat_config(config or {})
        self._names = LIGHTNING_NAMES | (names or {})
        self._run: Run | None = None
        self._module = None  # the LightningModule, from log_graph
        self._ended = False

    @property
    def name(self) -> str:
        return self._sweep

    @property
    def version(self) -> str:
        """The run_id, once the Run is open (it is the hash of the config, known from `fit`'s start)."""
        return self._run.run_id if self._run is not None else ""

    def _opened(self) -> Run:
        """The Run, opened now if it is not yet (its config is final from here on)."""
        if self._run is None:
            self._run = Run(sweep=self._sweep, config=self._config, storage=self._storage)
            if self._watch and self._module is not None:
                self._run.watch(self._module)
        return self._run

    @rank_zero_only
    def log_hyperparams(self, params: dict | Namespace, *args, **kwargs) -> None:
        params = flat_config(vars(params) if isinstance(params, Namespace) else params)
        if self._run is None:
            self._config |= params
        elif any(self._run.config.get(k) != v for k, v in params.items()):
            # A run is its config (run_id is its hash): once it has logged, its config is fixed.
            warnings.warn(
                f"rnnsweep: hyper-parameters logged after run {self._run.run_id} started are not part of it",
                stacklevel=2,
            )

    @rank_zero_only
    def log_graph(self, model, input_array=None) -> None:
        """Lightning hands over the LightningModule here at the start of `fit`: the one to watch."""
        self._module = model
        if self._watch and self._run is not None:
            self._run.watch(model)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self._ended:
            warnings.warn(
                f"rnnsweep: run {self.version} ended with its fit; {sorted(metrics)} not logged (use a new logger)",
                stacklevel=2,
            )
            return
        values = numbers(metrics)
        epoch = values.pop("epoch", None)
        values.pop("step", None)  # Lightning's own key, when a user logs it
        run = self._opened()
        run.log(
            run.step if step is None else int(step) + 1,
            epoch=None if epoch is None else int(epoch) + 1,
            **rename(values, self._names),
        )

    @rank_zero_only
    def save(self) -> None:
        """Nothing: Lightning calls this after every log; the Run writes a chunk when one is due."""

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Lightning's end of `fit` ("success"), or of a failure ("failed", inside its except block)."""
        if self._ended:
            return
        self._ended = True
        error = None
        if status != "success":
            error = sys.exc_info()[1] or RuntimeError(f"Lightning ended the run with status {status!r}")
        self._opened().end(error)
