"""The body of every Ray task: claim an attempt per trial, train, write the metric logs, report back.

A unit of work is one trial alone or a pack of trials of one shape (service/packing.py); the
same body trains both (jobs/loop.py). What comes back to the driver is one `AttemptOutcome`
per trial; the metrics themselves travel through the metric log (Arrow chunks in storage),
which the warehouse loads exactly once.
"""

from __future__ import annotations

import socket
import time

from rnnsweep.jobs.config import TrialConfig
from rnnsweep.jobs.metric_log import MetricLog, attempt_dir, checkpoint_path, claim_attempt, resolve_storage
from rnnsweep.jobs.outcome import AttemptOutcome, write_outcome


def node_name() -> str:
    """host:ray-node-id-prefix, so trials on two nodes of one machine stay apart."""
    host = socket.gethostname()
    try:
        import ray

        if ray.is_initialized():
            return f"{host}:{ray.get_runtime_context().get_node_id()[:8]}"
    except ImportError:  # running outside Ray (tests, a plain loop)
        pass
    return host


def device_for(config: TrialConfig) -> str:
    import torch

    return "cuda" if config.resources.gpus_per_trial > 0 and torch.cuda.is_available() else "cpu"


def train_unit(configs: list[TrialConfig], logs: list[MetricLog], checkpoints):
    """rnnsweep's own loop, or a user's entrypoint (which is always a unit of one)."""
    if configs[0].entrypoint:
        from rnnsweep.jobs.run import run_entrypoint

        [config], [log] = configs, logs
        return [run_entrypoint(config, log, checkpoints)]
    from rnnsweep.jobs.loop import train

    return train(configs, logs, device_for(configs[0]), checkpoints)


def run_unit(configs: list[TrialConfig], storage_uri: str) -> list[AttemptOutcome]:
    """Train a unit (a trial alone, or a pack), resuming from checkpoints an earlier attempt
    left; one outcome per trial, in order. Storage says how each attempt ended too, so a
    sweep can be read back from storage alone (`rnnsweep sync`), without the driver that ran it."""
    from rnnsweep.jobs.checkpoint import CheckpointStore

    started_at, node = time.time(), node_name()
    fs, base = resolve_storage(storage_uri)
    attempts = [claim_attempt(fs, base, c.sweep, c.run_id, node) for c in configs]
    logs = [
        MetricLog(fs, attempt_dir(base, c.sweep, c.run_id, a), c.run_id, a)
        for c, a in zip(configs, attempts, strict=True)
    ]
    checkpoints = CheckpointStore(fs, [checkpoint_path(base, c.sweep, c.run_id) for c in configs])

    def outcome(i: int, **ended) -> AttemptOutcome:
        logs[i].flush()
        record = AttemptOutcome(
            run_id=configs[i].run_id,
            attempt=attempts[i],
            node=node,
            started_at=started_at,
            ended_at=time.time(),
            chunks=logs[i].chunks_written,
            pack_size=len(configs) if len(configs) > 1 else None,
            **ended,
        )
        write_outcome(fs, base, configs[i].sweep, record)
        return record

    try:
        results = train_unit(configs, logs, checkpoints)
    except Exception as error:  # a trial that raises keeps what it measured, and storage says why
        for i in range(len(configs)):
            outcome(i, status="failed", error=f"{type(error).__name__}: {error}")
        raise
    return [
        outcome(i, status=r.status, stop_reason=r.stop_reason, steps=r.steps, final=r.final)
        for i, r in enumerate(results)
    ]
