"""Seed 000: detect a rare event in multivariate sequences.

The event is what the seed's hand-written state machine detects: the sum of channel 0 over
a window of WINDOW steps crosses THRESHOLD. Positive sequences get a burst on channel 0
lasting 10 to 20 steps (the seed's "sometimes 10, sometimes 20 time steps"); negatives get
decoys: weak bursts on channel 0 and strong bursts on the other channels, so the model has
to learn which channel and how much. Every sequence satisfies the rule for its label
(rows that noise pushed to the other side are drawn again, a bounded number of times), so
labels are true by definition and the positive rate is exact. Loss: BCE with the positive class weighted
(`training.pos_weight`); metric: balanced accuracy, since plain accuracy rewards "never".
"""

from __future__ import annotations

import numpy as np

from rnnsweep.jobs.config import DataConfig, events_class_sizes
from rnnsweep.jobs.shapes import KIND, input_channels, output_size
from rnnsweep.jobs.tasks import TaskData, split_rngs

WINDOW = 10
THRESHOLD = 5.0
BURST_STEPS = (10, 20)
EVENT_AMPLITUDE = (0.8, 1.2)  # per step on channel 0: a window sum of 8 to 12
DECOY_AMPLITUDE = (0.1, 0.3)  # per step on channel 0: at most 3, well under the threshold
MAX_DRAWS = 1000  # redraw rounds per class before the data is declared impossible to draw


def windowed_max(channel: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Largest sum over `window` consecutive steps, per sequence. channel: (n, seq_len)."""
    window = min(window, channel.shape[1])
    cumsum = np.cumsum(channel, axis=1, dtype=np.float64)
    cumsum = np.concatenate([np.zeros((channel.shape[0], 1)), cumsum], axis=1)
    return (cumsum[:, window:] - cumsum[:, :-window]).max(axis=1)


def label(x: np.ndarray) -> np.ndarray:
    return (windowed_max(x[:, :, 0]) > THRESHOLD).astype(np.int64)


def _add_burst(x: np.ndarray, rows: np.ndarray, channel: int, amplitude: tuple, rng) -> None:
    """One burst of 10-20 steps in each of `rows`, at a random place, on one channel (in place)."""
    seq_len = x.shape[1]
    for row in rows:
        length = min(int(rng.integers(BURST_STEPS[0], BURST_STEPS[1] + 1)), seq_len)
        start = int(rng.integers(0, seq_len - length + 1))
        x[row, start : start + length, channel] += rng.uniform(*amplitude)


def _draw(n: int, positive: bool, config: DataConfig, rng) -> np.ndarray:
    """n sequences of one class; rows the rule labels otherwise (noise can push a decoy over
    the threshold) are drawn again, so the positive rate is exactly what was asked for.

    At most MAX_DRAWS rounds: where seq_len and noise make a class (almost) impossible, a
    ValueError says so instead of drawing forever.
    """
    channels = input_channels("events", config)
    kept = [np.empty((0, config.seq_len, channels))]  # n = 0 (no negatives asked for) is an empty class
    for _ in range(MAX_DRAWS):
        if n <= 0:
            return np.concatenate(kept)
        x = rng.normal(0.0, config.noise, size=(n, config.seq_len, channels))
        if positive:
            _add_burst(x, np.arange(n), 0, EVENT_AMPLITUDE, rng)
        else:
            _add_burst(x, np.arange(n // 2), 0, DECOY_AMPLITUDE, rng)
        for channel in range(1, channels):
            _add_burst(x, np.flatnonzero(rng.random(n) < 0.5), channel, EVENT_AMPLITUDE, rng)
        x = x[label(x) == int(positive)]
        kept.append(x)
        n -= len(x)
    if n <= 0:
        return np.concatenate(kept)
    kind = "positive" if positive else "negative"
    raise ValueError(
        f"events: {n} {kind} sequences still missing after {MAX_DRAWS} draws: with data.seq_len = "
        f"{config.seq_len} and data.noise = {config.noise:g} the rule almost never labels a sequence {kind}; "
        "lengthen the sequences or lower the noise"
    )


def generate(n: int, config: DataConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n_positive, _ = events_class_sizes(n, config.positive_rate)
    x = np.concatenate([_draw(n_positive, True, config, rng), _draw(n - n_positive, False, config, rng)])
    y = np.r_[np.ones(n_positive, np.int64), np.zeros(n - n_positive, np.int64)]
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order]


def make(config: DataConfig) -> TaskData:
    train_rng, val_rng = split_rngs(config.seed)
    x_train, y_train = generate(config.n_train, config, train_rng)
    x_val, y_val = generate(config.n_val, config, val_rng)
    return TaskData(x_train, y_train, x_val, y_val, KIND["events"], output_size("events", config))
