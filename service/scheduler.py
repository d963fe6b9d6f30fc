"""Running trials on Ray: one task per trial or per pack, bounded in flight, results in completion order.

Ray reuses worker processes between tasks of the same function, so torch is imported once
per worker, not once per trial. Ray re-runs a task whose worker or node died (up to
`resources.max_retries`); an exception raised by the trial itself is not retried: it is the
trial's result (failed, with its error text).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rnnsweep.jobs.config import TrialConfig
from rnnsweep.jobs.outcome import AttemptOutcome
from rnnsweep.service.errors import UserError

CANCEL_GRACE_SECONDS = 5.0  # how long a trial gets to stop on its own before its worker is killed
CANCEL_WAIT_SECONDS = 15.0


@contextmanager
def ray_session(address: str | None, num_cpus: int | None = None, code: str = "") -> Iterator[None]:
    """Connect to a cluster (`address`) or start a local Ray that ends with the block.

    `code`, a sweep's own code folder (sweep.code), goes to every worker as the job's
    working_dir: Ray ships local folders only at the job level, not per task. A Ray already
    initialised in this process (a test fixture, a notebook) is used as is and left running;
    its workers then import the code from the folder's path, which must exist where they run.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        # Without --address: the cluster RAY_ADDRESS names (a Ray Job's driver runs with it set to
        # its cluster), else a Ray of its own, "local", never a cluster some other process started
        # on this machine (a bare ray.init() joins one; then num_cpus is refused).
        target = address or os.environ.get("RAY_ADDRESS") or "local"
        ray.init(
            address=target,
            num_cpus=num_cpus if target == "local" else None,
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,
            runtime_env={"working_dir": code} if code else None,
        )
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = "a local Ray" if target == "local" else f"the Ray cluster at {target}"
        raise UserError(f"could not start {where}: {str(e).splitlines()[0]}") from None
    try:
        yield
    finally:
        ray.shutdown()


def check_fits(trials: list[TrialConfig]) -> None:
    """Refuse trials no node can ever run, instead of letting Ray wait for them forever."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    most_cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    most_gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    cpus = max(t.resources.cpus_per_trial for t in trials)
    gpus = max(t.resources.gpus_per_trial for t in trials)
    if cpus > most_cpus:
        raise UserError(f"resources.cpus_per_trial = {cpus:g}, but the largest Ray node has {most_cpus:g} CPUs")
    if gpus > most_gpus:
        raise UserError(
            f"resources.gpus_per_trial = {gpus:g}, but the largest Ray node has {most_gpus:g} GPUs"
            + ("; set gpus_per_trial = 0 to train on CPU" if most_gpus == 0 else "")
        )


def task_slots(trials: list[TrialConfig]) -> int:
    """How many of these trials' tasks the cluster runs at once."""
    import ray

    total = ray.cluster_resources()
    slots = min(
        total.get("CPU", 1) / max(t.resources.cpus_per_trial for t in trials),
        total.get("GPU", 0) / max(t.resources.gpus_per_trial for t in trials)
        if any(t.resources.gpus_per_trial for t in trials)
        else float("inf"),
    )
    return max(1, int(slots))


@dataclass
class TrialRunner:
    """Feeds units of work (a trial, or a pack of trials trained as one) to Ray and collects
    what comes back, per trial; knows nothing of the warehouse."""

    units: list[list[TrialConfig]]
    storage_uri: str
    max_in_flight: int  # units, not trials
    queue: deque = field(init=False)
    in_flight: dict = field(init=False, default_factory=dict)  # ObjectRef -> list[TrialConfig]

    def __post_init__(self):
        import ray

        from rnnsweep.jobs.entry import run_unit

        self.queue = deque(self.units)
        self._task = ray.remote(run_unit)

    @property
    def busy(self) -> bool:
        return bool(self.queue or self.in_flight)

    @property
    def running_run_ids(self) -> list[str]:
        return [t.run_id for unit in self.in_flight.values() for t in unit]

    def submit_more(self) -> list[str]:
        started = []
        while self.queue and len(self.in_flight) < self.max_in_flight:
            unit = self.queue.popleft()
            first = unit[0]
            options = {
                "num_cpus": first.resources.cpus_per_trial,
                "num_gpus": first.resources.gpus_per_trial,
                "max_retries": first.resources.max_retries,
                "retry_exceptions": False,
            }
            name = f"trial-{first.run_id}" if len(unit) == 1 else f"pack-{first.run_id}+{len(unit) - 1}"
            ref = self._task.options(**options, name=name).remote(unit, self.storage_uri)
            self.in_flight[ref] = unit
            started += [t.run_id for t in unit]
        return started

    def wait(self, timeout: float) -> list[tuple[TrialConfig, AttemptOutcome | None, str | None]]:
        """Trials that ended within `timeout`: (trial, outcome, None) or (trial, None, error)."""
        import ray

        if not self.in_flight:
            time.sleep(min(timeout, 0.05))
            return []
        refs = list(self.in_flight)
        # Wake at the first unit that ends, then take every other one already done, so
        # the queue is topped up at once instead of draining while slower units finish.
        first, _ = ray.wait(refs, num_returns=1, timeout=timeout, fetch_local=False)
        if not first:
            return []
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
        ended = []
        for ref in ready:
            # Fetch before forgetting: an interrupt in between must leave the unit in flight,
            # where cancel_all finds it, not lost between the two.
            unit = self.in_flight[ref]
            try:
                ended += [(t, o, None) for t, o in zip(unit, ray.get(ref), strict=True)]
            except ray.exceptions.RayError as e:
                ended += [(t, None, describe_failure(e)) for t in unit]
            del self.in_flight[ref]
        return ended

    def cancel_all(self) -> list[str]:
        """Stop everything in flight and forget the queue; returns the run_ids that were running."""
        import ray

        cancelled = self.running_run_ids
        refs = list(self.in_flight)
        # A polite cancel first (a KeyboardInterrupt inside the trial): the worker lives, so Ray
        # has nothing to retry. Killing a worker whose task has retries left races Ray's retry
        # path (ray-project/ray#54260) and has aborted the driver itself; only trials that do
        # not stop within the grace period are killed.
        for ref in refs:
            ray.cancel(ref, force=False)
        # Cancelling is asynchronous: wait until the trials have ended, so no chunk lands
        # after the driver's last load and "what was logged" is all in the warehouse.
        stuck = []
        if refs:
            _, stuck = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_SECONDS, fetch_local=False)
        for ref in stuck:
            ray.cancel(ref, force=True)
        if stuck:
            ray.wait(stuck, num_returns=len(stuck), timeout=CANCEL_WAIT_SECONDS, fetch_local=False)
        self.in_flight.clear()
        self.queue.clear()
        return cancelled


def describe_failure(error: Exception) -> str:
    """One line for runs.error: the trial's own exception, or what Ray says happened."""
    import ray

    if isinstance(error, ray.exceptions.RayTaskError):
        cause = error.cause
        if cause is not None and not isinstance(cause, ray.exceptions.UnserializableException):
            return f"{type(cause).__name__}: {cause}".strip()
        # The exception could not be rebuilt here; its traceback text still ends with it.
        return str(error).strip().splitlines()[-1]
    if isinstance(error, ray.exceptions.WorkerCrashedError):
        return "worker died while running the trial (retries exhausted)"
    if isinstance(error, ray.exceptions.NodeDiedError):
        return "node died while running the trial (retries exhausted)"
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
