"""`Run`: your own training code, logging into rnnsweep.

Two ways in, one class:
- in a sweep (`sweep.entrypoint = "mytrain:main"`), each trial's worker calls
  `main(config, run)` with `[params]` as `config` and a `Run` already attached to the trial's
  attempt, metric log and checkpoint;
- in any script, as a context manager that makes its own run:

      from rnnsweep.jobs.run import Run

      with Run(sweep="exp", config={"lr": 1e-3}) as run:
          run.watch(model)
          for step, batch in enumerate(batches, 1):
              ...
              run.log(step, train_loss=loss.item())
          run.log(step, val_loss=validate(model))

  `rnnsweep sync exp` then loads it into the warehouse.

`run.log(step, **metrics)` writes the same exactly-once Arrow chunks a built-in trial writes
(canonical names: train_loss, val_loss, train_acc, val_acc, grad_norm, lr, ...).
`run.watch(model)` adds, at every log that carries a validation metric (or every `every`
logged steps), the weight norm and the largest singular value of the recurrent matrix of
every nn.RNN/LSTM/GRU and cell in the model, named by module path. `run.checkpoint(state)`
keeps tensors and plain values (loaded back with `torch.load(weights_only=True)`), and
`run.restored()` hands a retried attempt the last state its dead predecessor saved.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from pathlib import Path

from rnnsweep.jobs import metric_log
from rnnsweep.jobs.config import SWEEP_NAME, TrialConfig
from rnnsweep.jobs.metric_log import (
    MetricLog,
    attempt_dir,
    checkpoint_path,
    claim_attempt,
    read_manifest,
    resolve_storage,
    write_manifest,
)
from rnnsweep.jobs.outcome import AttemptOutcome, TrainOutcome, write_outcome

STANDALONE = "__main__:script"  # the entrypoint a Run made in a plain script records
DEFAULT_WAREHOUSE = "rnnsweep-data/warehouse.duckdb"  # the CLI's default; its logs sit beside it


class Run:
    """One attempt of one run of your own code: log metrics, watch a model, checkpoint."""

    def __init__(self, sweep: str = "default", config: dict | None = None, storage: str | None = None):
        """A run of your own script in `sweep`, with hyper-parameters `config` (numbers,
        strings and booleans; anything else is kept as its JSON text), logged under `storage`
        (default: beside the warehouse `rnnsweep` uses from here, where `rnnsweep sync` looks).
        A run is its sweep and config: run the same again and it is that run's next attempt."""
        if not re.fullmatch(SWEEP_NAME, sweep):
            raise ValueError(
                f"sweep {sweep!r}: may hold only letters, digits, '_', '-' and '.', starting with a letter or digit"
            )
        params = {
            k: v if isinstance(v, bool | int | float | str) else json.dumps(v, default=repr)
            for k, v in (config or {}).items()
        }
        trial = TrialConfig(sweep=sweep, entrypoint=STANDALONE, params=params)
        warehouse = Path(os.environ.get("RNNSWEEP_WAREHOUSE", DEFAULT_WAREHOUSE))
        uri = storage or str((warehouse.parent / "logs").resolve())
        fs, base = resolve_storage(uri)
        _add_to_manifest(fs, base, trial)
        attempt = claim_attempt(fs, base, sweep, trial.run_id, socket.gethostname())
        log = MetricLog(fs, attempt_dir(base, sweep, trial.run_id, attempt), trial.run_id, attempt)
        from rnnsweep.jobs.checkpoint import CheckpointStore

        self._attach(trial, log, CheckpointStore(fs, [checkpoint_path(base, sweep, trial.run_id)]))
        self._standalone = (fs, base, time.time())

    @classmethod
    def attached(cls, trial: TrialConfig, log: MetricLog, checkpoints) -> Run:
        """The Run a sweep's worker hands to your entrypoint (see jobs/entry.py)."""
        run = cls.__new__(cls)
        run._attach(trial, log, checkpoints)
        run._standalone = None
        return run

    def _attach(self, trial: TrialConfig, log: MetricLog, checkpoints) -> None:
        self.trial, self._metrics, self.checkpoints = trial, log, checkpoints
        self.config = dict(trial.params)
        self.step, self.epoch = 0, 0
        self.final: dict[str, float] = {}  # the last values of every metric logged
        self._model, self._every, self._since_watch = None, None, 0
        self._last_flush_step, self._flushed_at = 0, time.monotonic()
        [saved] = checkpoints.load()
        self._restored = saved["user"] if saved is not None and "user" in saved else None

    @property
    def run_id(self) -> str:
        return self.trial.run_id

    # -- what your code calls ------------------------------------------------------------

    def log(self, step: int, *, epoch: int | None = None, **metrics: float) -> None:
        """Metrics at an optimizer step (and, when given, the epoch it belongs to)."""
        if epoch is not None:
            self.epoch = epoch
        values = {name: float(value) for name, value in metrics.items()}
        self._since_watch += 1
        if self._model is not None and (
            any(name.startswith("val_") for name in values) if self._every is None else self._since_watch >= self._every
        ):
            values |= watched(self._model)
            self._since_watch = 0
        self._metrics.add(step, self.epoch, values)
        self.step = max(self.step, step)
        self.final |= values
        if metric_log.chunk_due(self.step - self._last_flush_step, self._flushed_at):
            self._flush()

    def watch(self, model, every: int | None = None) -> None:
        """Instrument `model` at every log with a val_* metric, or every `every` logged steps."""
        self._model, self._every = model, every

    def checkpoint(self, state: dict) -> None:
        """Keep `state` (tensors and plain values) for a retried attempt, after every metric so far."""
        self._flush()
        self.checkpoints.save({0: {"step": self.step, "epoch": self.epoch, "user": state}})

    def restored(self) -> dict | None:
        """What the last checkpoint of an earlier attempt of this run kept, or None."""
        return self._restored

    # -- ending ----------------------------------------------------------------------

    def _flush(self) -> None:
        self._metrics.flush()
        self._last_flush_step, self._flushed_at = self.step, time.monotonic()

    def finish(self) -> TrainOutcome:
        self._flush()
        return TrainOutcome("finished", "", self.step, self.final)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        self.end(error)
        return False  # an exception goes on up: the run is recorded failed, the script still fails

    def end(self, error: BaseException | None = None) -> None:
        """End a standalone run: finished, or failed with `error`; what `with Run(...)` does on leaving."""
        if self._standalone is None:
            return  # a sweep's worker ends the attempt (jobs/entry.py)
        fs, base, started_at = self._standalone
        self._flush()
        ended = {"status": "finished", "steps": self.step, "final": self.final}
        if error is not None:
            ended = {"status": "failed", "steps": self.step, "error": f"{type(error).__name__}: {error}"}
        outcome = AttemptOutcome(
            run_id=self.run_id,
            attempt=self._metrics.attempt,
            node=socket.gethostname(),
            started_at=started_at,
            ended_at=time.time(),
            chunks=self._metrics.chunks_written,
            **ended,
        )
        write_outcome(fs, base, self.trial.sweep, outcome)


def watched(model) -> dict[str, float]:
    """What run.watch adds at a log: weight norm and each recurrent matrix's largest singular value."""
    import torch

    from rnnsweep.jobs import instrument
    from rnnsweep.jobs.model import recurrent_weights

    with torch.no_grad():
        columns = {"weight_norm": instrument.weight_norms([p.unsqueeze(0) for p in model.parameters()])}
        recurrent = {name: w.unsqueeze(0) for name, w in recurrent_weights(model).items()}
        columns |= instrument.recurrent_sigmas(recurrent)
        values = torch.cat([c.float().cpu() for c in columns.values()]).tolist()  # one read-back
    return dict(zip(columns, values, strict=True))


def run_entrypoint(trial: TrialConfig, log: MetricLog, checkpoints) -> TrainOutcome:
    """A sweep's trial whose training is the user's own `main(config, run)`."""
    from rnnsweep.jobs.user_code import load_callable

    main = load_callable(trial.entrypoint, trial.code)
    run = Run.attached(trial, log, checkpoints)
    main(dict(trial.params), run)
    return run.finish()


def _add_to_manifest(fs, base: str, trial: TrialConfig) -> None:
    """A plain script's runs join their sweep's manifest, so `rnnsweep sync` finds them."""
    manifest = read_manifest(fs, base, trial.sweep) or {
        "name": trial.sweep,
        "grid_path": str(Path(sys.argv[0]).resolve()) if sys.argv and sys.argv[0] else "",
        "grid_text": "",
        "axes": [],
        "trials": [],
    }
    if all(TrialConfig.model_validate(t).run_id != trial.run_id for t in manifest["trials"]):
        manifest["trials"].append(trial.model_dump(mode="json"))
        write_manifest(fs, base, trial.sweep, manifest)
