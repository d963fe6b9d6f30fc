"""Checkpoints: how a retried attempt picks up where a dead one left off.

Saved whenever the loop writes metric chunks, so the checkpoint and the metric log always
agree: every row up to the checkpoint's step is in a chunk. One file per run, shared by its
attempts and replaced atomically (`<storage>/<sweep>/<run_id>/checkpoint.pt`), for a trial
alone and for each member of a pack alike. A file holds one member's state: its model and
optimizer, random generators, its place in the epoch's batch order and what it saw since the
last evaluation, so the resumed curve is the one the run would have drawn uninterrupted. A
member that already ended (went non-finite, or stopped early) leaves its outcome instead,
so a retried pack does not train it again.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

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
        # Tensors and plain values only: a checkpoint in shared storage must not be able to run code.
        return torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)


@dataclass(frozen=True)
class CheckpointStore:
    """The checkpoint files of a unit's members, by position in the unit."""

    fs: pafs.FileSystem
    paths: list[str]

    def load(self) -> list[dict | None]:
        return [load(self.fs, path) for path in self.paths]

    def save(self, states: dict[int, dict]) -> None:
        for position, state in states.items():
            save(self.fs, self.paths[position], state)
