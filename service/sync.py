"""`rnnsweep sync`: rebuild a sweep in a local warehouse from its storage alone.

A sweep's storage (a local path or s3://, gs://, ...) holds everything: its manifest (grid
text and every trial config), each attempt's metric chunks, and each ended attempt's
outcome.json. Syncing registers the sweep, loads every chunk not loaded yet (through the
same exactly-once loader as the driver) and records how each run's latest attempt ended;
runs still training stay `running`. Syncing again changes nothing but what is new.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rnnsweep.jobs.config import TrialConfig
from rnnsweep.jobs.metric_log import list_attempts, read_manifest, resolve_storage
from rnnsweep.jobs.outcome import OutcomeFileError, read_outcomes
from rnnsweep.service.driver import driver_lock
from rnnsweep.service.errors import UserError
from rnnsweep.service.submit import SweepLoader
from rnnsweep.service.warehouse import Warehouse


@dataclass(frozen=True)
class SyncReport:
    sweep: str
    runs: int
    ended: int
    running: int


def sync_sweep(warehouse: Path, sweep: str, storage_uri: str) -> SyncReport:
    from rnnsweep.service.storage import check_storage

    check_storage(storage_uri, write=False)  # one line within a deadline, not minutes of retries
    try:
        fs, base = resolve_storage(storage_uri)
        manifest = read_manifest(fs, base, sweep)
    except (OSError, ValueError) as e:  # pyarrow: ArrowInvalid is a ValueError, bad credentials an OSError
        raise UserError(f"cannot read storage {storage_uri}: {str(e).splitlines()[0]}") from None
    if manifest is None:
        raise UserError(f"no sweep {sweep!r} under {storage_uri} (no manifest.json); check --storage")
    trials = [TrialConfig.model_validate(t) for t in manifest["trials"]]
    with driver_lock(warehouse, sweep):
        with Warehouse.open(warehouse, build_views=True) as wh:
            wh.register_sweep(
                sweep, manifest["grid_path"], manifest["grid_text"], storage_uri, manifest["axes"], trials
            )
        loader = SweepLoader(warehouse, storage_uri, sweep)
        running = []
        for trial in trials:
            attempts = list_attempts(fs, base, sweep, trial.run_id)
            if not attempts:
                continue  # never started
            try:
                outcome = read_outcomes(fs, base, sweep, trial.run_id).get(attempts[-1])
            except OutcomeFileError as e:
                raise UserError(f"cannot sync {sweep}: {e}") from None
            if outcome is None:
                running.append(trial.run_id)
            else:
                loader.ended.append((trial, outcome, None))
        ended = len(loader.ended)
        loader.started = running
        loader.write(running)
    return SyncReport(sweep, len(trials), ended, len(running))
