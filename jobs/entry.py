"""The body of one Ray task: claim an attempt, train, write the metric log, report back.
`run_trial` trains one trial; `run_pack` trains several of one shape as one fused model.

What comes back to the driver is a small summary; the metrics themselves travel through the
metric log (Arrow chunks in storage), which the warehouse loads exactly once.
"""

from __future__ import annotations

import socket
import time

from rnnsweep.jobs.config import TrialConfig
from rnnsweep.jobs.metric_log import (
    MetricLog,
    attempt_dir,
    checkpoint_path,
    claim_attempt,
    resolve_storage,
    write_outcome,
)


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


def run_trial(config: TrialConfig, storage_uri: str) -> dict:
    from rnnsweep.jobs import checkpoint
    from rnnsweep.jobs.train import train

    started_at = time.time()
    node = node_name()
    fs, base = resolve_storage(storage_uri)
    run_id = config.run_id
    attempt = claim_attempt(fs, base, config.sweep, run_id, node)
    log = MetricLog(fs, attempt_dir(base, config.sweep, run_id, attempt), run_id, attempt)
    saved = checkpoint_path(base, config.sweep, run_id)
    summary = {"run_id": run_id, "attempt": attempt, "node": node, "started_at": started_at}
    try:
        outcome = train(
            config,
            log,
            device_for(config),
            save_checkpoint=lambda state: checkpoint.save(fs, saved, state),
            resume=checkpoint.load(fs, saved),  # an earlier attempt of this run died: go on from it
        )
    except Exception as error:
        record_failure(fs, base, config, log, summary, error)
        raise
    return record_end(fs, base, config, log, summary, outcome)


def device_for(config: TrialConfig) -> str:
    import torch

    return "cuda" if config.resources.gpus_per_trial > 0 and torch.cuda.is_available() else "cpu"


def record_failure(fs, base: str, config: TrialConfig, log: MetricLog, summary: dict, error: Exception) -> None:
    """A trial that raises keeps what it measured, and storage says why it ended."""
    log.flush()
    summary |= {"status": "failed", "error": f"{type(error).__name__}: {error}", "chunks": log.chunks_written}
    write_outcome(fs, base, config.sweep, config.run_id, summary["attempt"], summary | {"ended_at": time.time()})


def record_end(fs, base: str, config: TrialConfig, log: MetricLog, summary: dict, outcome, **extra) -> dict:
    """Complete the attempt's summary (what the driver gets back) and write it beside its chunks.

    Storage says how the attempt ended too, so a sweep can be read back from storage alone
    (`rnnsweep sync`), without the driver that ran it."""
    log.flush()
    summary |= {
        "status": outcome.status,
        "stop_reason": outcome.stop_reason,
        "steps": outcome.steps,
        "chunks": log.chunks_written,
        "ended_at": time.time(),
        "final": outcome.final,
        **extra,
    }
    write_outcome(fs, base, config.sweep, config.run_id, summary["attempt"], summary)
    return summary


def run_pack(configs: list[TrialConfig], storage_uri: str) -> list[dict]:
    """Train a pack (see rnnsweep.jobs.pack); one summary per member, as run_trial returns."""
    from rnnsweep.jobs.pack import train_pack

    started_at = time.time()
    node = node_name()
    fs, base = resolve_storage(storage_uri)
    attempts = [claim_attempt(fs, base, c.sweep, c.run_id, node) for c in configs]
    logs = [
        MetricLog(fs, attempt_dir(base, c.sweep, c.run_id, a), c.run_id, a)
        for c, a in zip(configs, attempts, strict=True)
    ]
    summaries = [
        {"run_id": c.run_id, "attempt": a, "node": node, "started_at": started_at}
        for c, a in zip(configs, attempts, strict=True)
    ]
    try:
        outcomes = train_pack(configs, logs, device_for(configs[0]))
    except Exception as error:
        for config, log, summary in zip(configs, logs, summaries, strict=True):
            record_failure(fs, base, config, log, summary, error)
        raise
    return [
        record_end(fs, base, config, log, summary, outcome, pack_size=len(configs))
        for config, log, summary, outcome in zip(configs, logs, summaries, outcomes, strict=True)
    ]
