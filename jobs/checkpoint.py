"""Trial checkpoints: how a retried attempt picks up where a dead one left off.

Saved whenever a metric chunk is written, so the checkpoint and the metric log always agree:
every row up to the checkpoint's step is in a chunk. One file per run, shared by its
attempts and replaced atomically (`<storage>/<sweep>/<run_id>/checkpoint.pt`). A new attempt
restores model, optimizer, schedule, random generators and its place in the epoch's batch
order, so the resumed curve is the one the run would have drawn uninterrupted.
"""

from __future__ import annotations

import io

import pyarrow.fs as pafs
import torch

from rnnsweep.jobs.metric_log import write_atomically


def save(fs: pafs.FileSystem, path: str, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomically(fs, path, buffer.getvalue())


def load(fs: pafs.FileSystem, path: str) -> dict | None:
    """The last checkpoint, or None when the run never wrote one."""
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_file(path) as f:
        return torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=False)
