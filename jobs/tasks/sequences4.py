"""Seed 002: classify sequences into 4 kinds, with cross-entropy.

The kinds are waveforms (sine, square, sawtooth, triangle) with random frequency, phase and
amplitude, on every input channel with its own phase, plus Gaussian noise. Frequency ranges
overlap, so the model must tell shapes apart, not just count zero crossings.
"""

from __future__ import annotations

import numpy as np

from rnnsweep.jobs.config import DataConfig
from rnnsweep.jobs.shapes import KIND, SEQUENCES4_CLASSES, input_channels, output_size
from rnnsweep.jobs.tasks import TaskData, split_rngs

CLASSES = SEQUENCES4_CLASSES  # the waveforms below, in label order
CYCLES = (1.5, 4.0)  # periods per sequence


def _waveform(kind: int, phase: np.ndarray) -> np.ndarray:
    """phase in cycles; each wave has period 1 and amplitude 1."""
    frac = phase % 1.0
    if kind == 0:
        return np.sin(2 * np.pi * phase)
    if kind == 1:
        return np.where(frac < 0.5, 1.0, -1.0)
    if kind == 2:
        return 2.0 * frac - 1.0
    return 1.0 - 4.0 * np.abs(frac - 0.5)


def generate(n: int, config: DataConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, len(CLASSES), size=n)
    t = np.linspace(0.0, 1.0, config.seq_len, endpoint=False)
    cycles = rng.uniform(*CYCLES, size=(n, 1, 1))
    channels = input_channels("sequences4", config)
    offsets = rng.uniform(0.0, 1.0, size=(n, 1, channels))
    amplitude = rng.uniform(0.5, 1.5, size=(n, 1, 1))
    phase = cycles * t[None, :, None] + offsets
    x = np.empty((n, config.seq_len, channels))
    for kind in range(len(CLASSES)):
        rows = y == kind
        x[rows] = _waveform(kind, phase[rows])
    x = amplitude * x + rng.normal(0.0, config.noise, size=x.shape)
    return x.astype(np.float32), y.astype(np.int64)


def make(config: DataConfig) -> TaskData:
    train_rng, val_rng = split_rngs(config.seed)
    x_train, y_train = generate(config.n_train, config, train_rng)
    x_val, y_val = generate(config.n_val, config, val_rng)
    return TaskData(x_train, y_train, x_val, y_val, KIND["sequences4"], output_size("sequences4", config))
