"""How an attempt ended: the typed record that crosses back from a worker.

A Ray task returns one `AttemptOutcome` per trial it trained (one, or a pack's members),
and writes the same record to storage as `<run>/attempt-NNN/outcome.json`, so a sweep can
be read back from storage alone (`rnnsweep sync`). The driver validates what it reads: a
malformed outcome.json is one clear line naming the file, never a KeyError somewhere later.

Pydantic only: the driver imports this without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict, ValidationError

from rnnsweep.jobs.metric_log import attempt_dir, list_attempts, write_atomically

Status = Literal["finished", "stopped", "failed"]


class AttemptOutcome(BaseModel):
    """One attempt of one run, as it ended."""

    # NaN and Inf in `final` are values (a run that went non-finite), written as JSON's NaN/Infinity.
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")

    run_id: str
    attempt: int
    status: Status  # finished; stopped (went non-finite, or early stop); failed (raised, or the worker died)
    node: str | None = None  # host:ray-node; None when only Ray saw how it ended
    started_at: float | None = None
    ended_at: float | None = None
    steps: int | None = None  # optimizer steps taken; None when it failed before training
    chunks: int = 0  # metric chunks this attempt wrote: the driver checks they all landed
    stop_reason: str = ""
    error: str | None = None
    final: dict[str, float] = {}  # the last evaluation's metrics
    pack_size: int | None = None  # trials trained in one fused model, this one included; None: alone


@dataclass(frozen=True)
class TrainOutcome:
    """How a trial's training ended, as the loop (or a user's entrypoint) reports it to entry.py."""

    status: str  # "finished", or "stopped": the loss or gradient went non-finite, or it diverged (early stop)
    stop_reason: str
    steps: int
    final: dict[str, float]  # the last evaluation's metrics


class OutcomeFileError(ValueError):
    """An outcome.json that is not an AttemptOutcome; the message names the file."""


def outcome_path(base: str, sweep: str, run_id: str, attempt: int) -> str:
    return f"{attempt_dir(base, sweep, run_id, attempt)}/outcome.json"


def write_outcome(fs: pafs.FileSystem, base: str, sweep: str, outcome: AttemptOutcome) -> None:
    path = outcome_path(base, sweep, outcome.run_id, outcome.attempt)
    write_atomically(fs, path, outcome.model_dump_json(exclude_none=True).encode())


def read_outcome(fs: pafs.FileSystem, path: str) -> AttemptOutcome:
    with fs.open_input_file(path) as f:
        payload = f.read()
    try:
        return AttemptOutcome.model_validate_json(payload)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise OutcomeFileError(f"{path}: {where}: {first['msg']}") from None


def read_outcomes(fs: pafs.FileSystem, base: str, sweep: str, run_id: str) -> dict[int, AttemptOutcome]:
    """attempt -> its outcome, for the attempts of a run that wrote one."""
    outcomes = {}
    for attempt in list_attempts(fs, base, sweep, run_id):
        path = outcome_path(base, sweep, run_id, attempt)
        if fs.get_file_info(path).type == pafs.FileType.File:
            outcomes[attempt] = read_outcome(fs, path)
    return outcomes
