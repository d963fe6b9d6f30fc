"""Task datasets: the seeds' scenarios as deterministic synthetic generators, plus user files.

Each task returns a `TaskData` of numpy arrays. Generators use only numpy, so they are fast
to test and the driver can validate a user's file without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnsweep.jobs.config import TrialConfig
from rnnsweep.jobs.shapes import TaskKind


@dataclass(frozen=True)
class TaskData:
    x_train: np.ndarray  # (n, seq_len, n_features) float32
    y_train: np.ndarray  # (n,) int64 labels, or (n, target_dim) float32 targets
    x_val: np.ndarray
    y_val: np.ndarray
    kind: TaskKind
    n_outputs: int  # logits (1 for binary), classes, or target dimensions

    @property
    def n_features(self) -> int:
        return self.x_train.shape[2]


def load_task(config: TrialConfig) -> TaskData:
    """The dataset a trial trains on; the same for every trial that shares `[data]`."""
    from rnnsweep.jobs.tasks import events, sequences4, user_file, word_vectors

    if config.task == "file":
        return user_file.make(config.data, config.data_digest)
    makers = {"events": events.make, "sequences4": sequences4.make, "word_vectors": word_vectors.make}
    return makers[config.task](config.data)


def split_rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the train and validation sets of one data seed."""
    train_seq, val_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(train_seq), np.random.default_rng(val_seq)
