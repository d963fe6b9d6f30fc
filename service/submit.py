"""`rnnsweep submit`: register a grid's runs, train the missing ones on Ray, load their metrics.

The loop, every second or so: hand Ray more trials (bounded in flight), collect the ones
that ended, and in one short write window load new metric chunks and record outcomes. A
run is finished only once every chunk its last attempt wrote is in the warehouse.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rnnsweep.jobs.config import TrialConfig
from rnnsweep.jobs.metric_log import list_attempts, list_chunks, resolve_storage, write_manifest
from rnnsweep.jobs.outcome import AttemptOutcome, read_outcomes, write_outcome
from rnnsweep.service.driver import driver_lock
from rnnsweep.service.errors import UserError
from rnnsweep.service.progress import SweepProgress
from rnnsweep.service.spec import Grid
from rnnsweep.service.warehouse import DONE_STATUSES, Warehouse

LOAD_EVERY_SECONDS = 2.0  # how often metrics land while trials run
SETTLE_QUIET_SECONDS = 1.0  # after a cancel: no new chunk for this long means the workers are gone
SETTLE_LIMIT_SECONDS = 15.0
OUTCOME_BATCH_SECONDS = 0.5  # ended runs wait at most this long to be recorded, so short
# trials share one write window instead of opening the warehouse once each


@dataclass(frozen=True)
class SweepReport:
    sweep: str
    trials: int
    skipped: int  # finished earlier, not run again
    counts: dict[str, int]  # status -> runs of this grid
    seconds: float


def outcome_of(trial: TrialConfig, outcome: AttemptOutcome | None, error: str | None, attempts: int) -> dict:
    """The runs-table update for a trial that ended: from its attempt's outcome (the Ray task's,
    or outcome.json in storage), or from Ray's error when the task never returned one."""
    if outcome is not None:
        return {
            "run_id": trial.run_id,
            "status": outcome.status,
            "attempt": outcome.attempt,
            "node": outcome.node,
            "started_at": outcome.started_at,
            "ended_at": outcome.ended_at,
            "steps": outcome.steps,
            "stop_reason": outcome.stop_reason or None,
            "error": outcome.error,
        }
    return {
        "run_id": trial.run_id,
        "status": "failed",
        "attempt": max(attempts - 1, 0),
        "node": None,
        "started_at": None,
        "ended_at": time.time(),
        "steps": None,
        "stop_reason": None,
        "error": error,
    }


class SweepLoader:
    """The driver's write side: short write windows that load chunks and record outcomes."""

    def __init__(self, warehouse: Path, storage_uri: str, sweep: str):
        self.warehouse, self.sweep = warehouse, sweep
        self.fs, self.base = resolve_storage(storage_uri)
        self.started: list[str] = []
        self.ended: list[tuple[TrialConfig, AttemptOutcome | None, str | None]] = []
        self.last_load = 0.0

    def due(self) -> bool:
        waited = time.monotonic() - self.last_load
        return waited >= LOAD_EVERY_SECONDS or (bool(self.ended) and waited >= OUTCOME_BATCH_SECONDS)

    def settle(
        self, run_ids: list[str], quiet: float = SETTLE_QUIET_SECONDS, limit: float = SETTLE_LIMIT_SECONDS
    ) -> None:
        """Wait until no new chunk of these runs appears for `quiet` seconds (at most `limit`).

        A cancelled task is reported gone before its worker is: one may still write a chunk.
        """
        deadline, last, since = time.monotonic() + limit, None, time.monotonic()
        while time.monotonic() < deadline:
            current = [len(list_chunks(self.fs, self.base, self.sweep, run_id)) for run_id in run_ids]
            if current != last:
                last, since = current, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.2)

    def write(self, running: list[str], cancelled: list[str] = ()) -> list[dict]:
        """Load every new chunk of these runs and record what ended; returns the outcomes."""
        ended, self.ended = self.ended, []
        started, self.started = self.started, []
        touched = sorted(set(running) | {t.run_id for t, _, _ in ended} | set(cancelled))
        chunks = [c for run_id in touched for c in list_chunks(self.fs, self.base, self.sweep, run_id)]
        with Warehouse.open(self.warehouse) as wh:
            wh.mark_running(started)
            wh.load_chunks(self.fs, chunks)
            loaded = wh.loaded_chunks([t.run_id for t, _, _ in ended])
            outcomes = []
            for trial, attempt, error in ended:
                attempts = len({c.attempt for c in chunks if c.run_id == trial.run_id})
                outcome = outcome_of(trial, attempt, error, attempts)
                if attempt is None:
                    self._record_in_storage(trial, outcome)
                if attempt is not None and attempt.status != "failed":
                    have = sum(1 for r, a, _ in loaded if r == trial.run_id and a == attempt.attempt)
                    if have != attempt.chunks:
                        outcome |= {
                            "status": "failed",
                            "error": f"metric log incomplete: {have} of {attempt.chunks} chunks loaded",
                        }
                outcomes.append(outcome)
            wh.record_outcomes(outcomes)
            wh.mark_cancelled(list(cancelled))
        self.last_load = time.monotonic()
        return outcomes

    def _record_in_storage(self, trial: TrialConfig, outcome: dict) -> None:
        """A failure only Ray saw (worker or node died, retries spent) goes into storage too, on
        the run's last attempt, so `rnnsweep sync` elsewhere does not show the run running forever."""
        attempts = list_attempts(self.fs, self.base, self.sweep, trial.run_id)
        if attempts and attempts[-1] not in read_outcomes(self.fs, self.base, self.sweep, trial.run_id):
            failed = AttemptOutcome(
                run_id=trial.run_id,
                attempt=attempts[-1],
                status="failed",
                ended_at=outcome["ended_at"],
                error=outcome["error"],
            )
            write_outcome(self.fs, self.base, self.sweep, failed)


def publish_manifest(grid: Grid, storage_uri: str) -> None:
    """Describe the sweep in its storage, so `rnnsweep sync` can rebuild it anywhere."""
    fs, base = resolve_storage(storage_uri)
    manifest = {
        "name": grid.name,
        "grid_path": str(grid.path.resolve()),
        "grid_text": grid.text,
        "axes": list(grid.axes),
        "trials": [t.model_dump(mode="json") for t in grid.trials],
    }
    write_manifest(fs, base, grid.name, manifest)


def run_sweep(
    grid: Grid,
    warehouse: Path,
    storage_uri: str,
    address: str | None = None,
    num_cpus: int | None = None,
    max_in_flight: int | None = None,
    show_progress: bool = True,
    pack: bool = True,
) -> SweepReport:
    from rnnsweep.service.packing import plan_packs
    from rnnsweep.service.scheduler import TrialRunner, check_fits, ray_session, task_slots
    from rnnsweep.service.storage import check_storage

    began = time.monotonic()
    # Storage first: a sweep whose logs cannot be written is never registered (no pending runs,
    # no bad path stored) and nothing trains.
    try:
        check_storage(storage_uri)
    except UserError as e:
        raise UserError(f"{e}; --storage gives other storage") from None
    with driver_lock(warehouse, grid.name):
        with Warehouse.open(warehouse, build_views=True) as wh:
            if "import" in wh.sweep_sources(grid.name):
                raise UserError(
                    f"sweep {grid.name!r} holds imported runs; trained and imported runs never share a sweep: "
                    "set [sweep] name to another name"
                )
            statuses = wh.register_sweep(
                grid.name, str(grid.path.resolve()), grid.text, storage_uri, list(grid.axes), grid.trials
            )
        publish_manifest(grid, storage_uri)
        todo = [t for t in grid.trials if statuses[t.run_id] not in DONE_STATUSES]
        counts = Counter(statuses[t.run_id] for t in grid.trials if statuses[t.run_id] in DONE_STATUSES)
        skipped = sum(counts.values())
        if todo:
            with ray_session(address, num_cpus, todo[0].code):
                check_fits(todo)
                slots = task_slots(todo)
                # Twice what runs at once by default: workers never idle, the queue stays short.
                runner = TrialRunner(plan_packs(todo, slots, pack), storage_uri, max_in_flight or 2 * slots)
                loader = SweepLoader(warehouse, storage_uri, grid.name)
                with SweepProgress(grid.name, len(grid.trials), enabled=show_progress) as progress:
                    if skipped:
                        progress.log(
                            f"{skipped} of {len(grid.trials)} runs finished earlier; running the other {len(todo)}"
                        )
                    try:
                        while runner.busy:
                            loader.started += runner.submit_more()
                            loader.ended += runner.wait(timeout=0.5)
                            if loader.due():
                                counts.update(o["status"] for o in loader.write(runner.running_run_ids))
                            progress.update(
                                sum(counts.values()), len(runner.in_flight), counts["failed"], counts["stopped"]
                            )
                        counts.update(o["status"] for o in loader.write([]))
                    except KeyboardInterrupt:
                        cancelled = runner.cancel_all()
                        loader.settle(cancelled)
                        loader.write([], cancelled=cancelled)
                        progress.log(
                            f"interrupted: {len(cancelled)} running trials cancelled, their metrics so far kept"
                        )
                        raise
    return SweepReport(grid.name, len(grid.trials), skipped, dict(counts), time.monotonic() - began)


STORED_GRID = "select grid_path, grid_text, storage_uri from sweeps where name = $sweep"
LEFTOVERS = "select run_id from runs where sweep = $sweep and status in ('pending', 'running')"


def stored_grid(warehouse: Path, sweep: str) -> tuple[Grid, str]:
    """The sweep's grid as it was submitted (validated again), and its storage URI."""
    import tomllib

    from rnnsweep.service.query import run_query
    from rnnsweep.service.spec import build_grid

    rows = run_query(warehouse, STORED_GRID, {"sweep": sweep}).to_pylist()
    if not rows:
        raise UserError(f"no sweep named {sweep!r} in {warehouse}; `rnnsweep status` lists them")
    row = rows[0]
    if not row["grid_text"]:
        raise UserError(f"sweep {sweep!r} was imported, not trained by rnnsweep: there is nothing to resume")
    grid = build_grid(tomllib.loads(row["grid_text"]), Path(row["grid_path"]), row["grid_text"], allow_large=True)
    return grid, row["storage_uri"]


def correct_storage(warehouse: Path, sweep: str, storage_uri: str) -> str:
    """Store other storage for a sweep (one a bad --storage left behind), once it is checked."""
    from rnnsweep.service.storage import check_storage

    check_storage(storage_uri)
    with driver_lock(warehouse, sweep), Warehouse.open(warehouse) as wh:
        wh.set_sweep_storage(sweep, storage_uri)
    return storage_uri


def cancel_sweep(warehouse: Path, sweep: str) -> tuple[bool, int]:
    """Stop a sweep: interrupt its driver if one runs, then mark what is left cancelled.

    Returns (whether a driver was interrupted, runs marked cancelled here). Metrics logged
    so far stay in the warehouse.
    """
    from rnnsweep.service.driver import interrupt_driver
    from rnnsweep.service.query import run_query

    _, storage_uri = stored_grid(warehouse, sweep)  # the sweep exists and is rnnsweep's own
    interrupted = interrupt_driver(warehouse, sweep)
    with driver_lock(warehouse, sweep):
        # Runs no driver accounts for any more (it died, or never started them): load what
        # they logged, then mark them cancelled.
        leftovers = run_query(warehouse, LEFTOVERS, {"sweep": sweep}).column("run_id").to_pylist()
        SweepLoader(warehouse, storage_uri, sweep).write([], cancelled=leftovers)
    return interrupted, len(leftovers)
