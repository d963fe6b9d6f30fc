"""A Ray Tune callback that logs every Tune trial into rnnsweep.

    from rnnsweep.jobs.integrations.tune import RnnsweepCallback

    tuner = tune.Tuner(train, param_space={"lr": tune.grid_search([1e-3, 1e-2])},
                       run_config=tune.RunConfig(callbacks=[RnnsweepCallback(sweep="exp")]))
    tuner.fit()                                     # then: rnnsweep sync exp

Callbacks run on the Tune driver, so this works whatever the trainable is (a function, a class,
a Ray Train trainer). Each trial gets its own `Run`: its config is the trial's config flattened
to scalars ("model/hidden"); every numeric value a result reports is logged at the result's
`training_iteration` (or the `step` key you name), renamed by `names` ({"loss": "train_loss"})
so the diagnosis reads it; Tune's own bookkeeping (time_total_s, pid, ...) is left out. The Run
opens at the trial's first result and ends finished when the trial completes (a scheduler's early
stop included); when the trial errors it ends failed with what the trainable raised (a trial that
errors before its first result is recorded failed too); a Run still open when the experiment
ends (an interrupted Tuner) ends failed. The 2nd, 3rd, ... trial of one config (num_samples > 1)
gets `sample = 2, 3, ...` in its Run's config: a run is its config, and these are different runs.
"""

from __future__ import annotations

import os
from pathlib import Path

from ray import cloudpickle
from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS

from rnnsweep.jobs.integrations.adapt import flat_config, numbers, rename
from rnnsweep.jobs.run import Run


class TrialError(Exception):
    """How a Tune trial failed, as the Run records it."""


class RnnsweepCallback(Callback):
    """Logs each Tune trial as one rnnsweep Run of `sweep` under `storage` (see the module doc)."""

    def __init__(
        self,
        sweep: str = "default",
        storage: str | None = None,
        step: str = "training_iteration",
        names: dict[str, str] | None = None,
    ):
        self.sweep, self.storage, self.step, self.names = sweep, storage, step, dict(names or {})
        self._runs: dict[str, Run] = {}  # by trial_id, while the trial lives

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if self.step not in result:
            raise ValueError(f"rnnsweep: trial {trial.trial_id} reported no {self.step!r} (the step key you named)")
        metrics = numbers({k: v for k, v in result.items() if k not in AUTO_RESULT_KEYS and k != self.step})
        self._run(trial, trials).log(int(result[self.step]), **rename(metrics, self.names))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        if trial.trial_id in self._runs:  # else it reported nothing (or never ran: a pending trial Tune stopped)
            self._runs.pop(trial.trial_id).end()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._run(trial, trials)
        self._runs.pop(trial.trial_id).end(trial_error(trial))

    def on_experiment_end(self, trials, **info) -> None:
        for trial_id in list(self._runs):
            self._runs.pop(trial_id).end(TrialError("the Tune experiment ended before the trial did"))

    def _run(self, trial, trials) -> Run:
        if trial.trial_id not in self._runs:
            config = flat_config(trial.config)
            earlier = [t for t in trials if t.config == trial.config].index(trial)  # trials of this same config
            if earlier:
                config["sample"] = earlier + 1
            self._runs[trial.trial_id] = Run(sweep=self.sweep, config=config, storage=self.storage)
        return self._runs[trial.trial_id]


def trial_error(trial) -> BaseException:
    """What the trial raised. Tune keeps it beside the trial on the driver (its storage copy comes
    later): pickled when the trainable raised (a RayTaskError whose cause is the user's exception),
    as traceback text otherwise (a dead worker), whose last line names it."""
    pickled, text = trial.pickled_error_file, trial.error_file
    if pickled and os.path.exists(pickled):
        try:
            with open(pickled, "rb") as f:
                error = cloudpickle.load(f)
            return getattr(error, "cause", None) or error
        except Exception:  # e.g. the user's exception class is not importable here: read the text
            pass
    lines = Path(text).read_text().strip().splitlines() if text and os.path.exists(text) else []
    return TrialError(lines[-1] if lines else "the trial failed")
