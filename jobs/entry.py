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
    import torch

    from rnnsweep.jobs import checkpoint
    from rnnsweep.jobs.train import train

    started_at = time.time()
    node = node_name()
    fs, base = resolve_storage(storage_uri)
    run_id = config.run_id
    attempt = claim_attempt(fs, base, config.sweep, run_id, node)
    log = MetricLog(fs, attempt_dir(base, config.sweep, run_id, attempt), run_id, attempt)
    use_gpu = config.resources.gpus_per_trial > 0 and torch.cuda.is_available()
    saved = checkpoint_path(base, config.sweep, run_id)
    summary = {"run_id": run_id, "attempt": attempt, "node": node, "started_at": started_at}
    try:
        outcome = train(
            config,
            log,
            "cuda" if use_gpu else "cpu",
            save_checkpoint=lambda state: checkpoint.save(fs, saved, state),
            resume=checkpoint.load(fs, saved),  # an earlier attempt of this run died: go on from it
        )
    except Exception as error:
        log.flush()  # a trial that raises keeps what it measured, and says why it ended
        summary |= {"status": "failed", "error": f"{type(error).__name__}: {error}", "chunks": log.chunks_written}
        write_outcome(fs, base, config.sweep, run_id, attempt, summary | {"ended_at": time.time()})
        raise
    log.flush()
    summary |= {
        "status": outcome.status,
        "stop_reason": outcome.stop_reason,
        "steps": outcome.steps,
        "chunks": log.chunks_written,
        "ended_at": time.time(),
        "final": outcome.final,
    }
    # Storage says how the attempt ended too, so a sweep can be read back from storage alone
    # (`rnnsweep sync`), without the driver that ran it.
    write_outcome(fs, base, config.sweep, run_id, attempt, summary)
    return summary


def run_pack(configs: list[TrialConfig], storage_uri: str) -> list[dict]:
    """Train a pack (see rnnsweep.jobs.pack); one summary per member, as run_trial returns."""
    import torch

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
    use_gpu = configs[0].resources.gpus_per_trial > 0 and torch.cuda.is_available()
    try:
        outcomes = train_pack(configs, logs, "cuda" if use_gpu else "cpu")
    except Exception as error:
        for config, log, summary in zip(configs, logs, summaries, strict=True):
            log.flush()
            summary |= {"status": "failed", "error": f"{type(error).__name__}: {error}", "chunks": log.chunks_written}
            write_outcome(
                fs, base, config.sweep, config.run_id, summary["attempt"], summary | {"ended_at": time.time()}
            )
        raise
    for config, log, summary, outcome in zip(configs, logs, summaries, outcomes, strict=True):
        summary |= {
            "status": outcome.status,
            "stop_reason": outcome.stop_reason,
            "steps": outcome.steps,
            "chunks": log.chunks_written,
            "ended_at": time.time(),
            "final": outcome.final,
            "pack_size": len(configs),
        }
        write_outcome(fs, base, config.sweep, config.run_id, summary["attempt"], summary)
    return summaries
