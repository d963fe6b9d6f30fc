"""Pathology-aware early stop (`training.early_stop = "diverged"`): end a trial once its
training loss has clearly diverged, so its slot goes to the rest of the sweep.

The rule, at every evaluation, on the mean training loss of the steps since the previous
one (a "window"): the window is at least `factor` times the best window so far AND no
better than the first window (everything learned is lost), for `patience` evaluations in a
row. Tuned on the stored curves of tests/corpus, checked on tests/corpus/holdout: no healthy
run is stopped, and the margin is double. No healthy run there has two windows in a row back
at or above its first (so patience 2 alone is enough with any factor > 1), and none reaches
2x its best while at or above its first (so factor 2 alone is enough with patience 1; the
closest, one noisy window of `healthy-09`, is 1.59x). Without the first-window condition,
factor 2 and patience 2 would stop 7 healthy runs (noisy ones near a loss of 0).
tests/test_early_stop.py replays the rule over both corpora.

Non-finite losses are not this watch's business (the loop stops at once on them); a
non-finite window is ignored.

Stdlib only: imported by the training loop (`jobs/loop.py`), which feeds each member's
`TrainLossWindow` every step and its watch the window's mean at every evaluation.
"""

from __future__ import annotations

import math

FACTOR = 2.0  # the window is at least this many times the best window so far
PATIENCE = 2  # ... for this many evaluations in a row


class TrainLossWindow:
    """The mean training loss of the steps since the last evaluation: what the watch judges."""

    def __init__(self):
        self.total, self.steps = 0.0, 0

    def add(self, train_loss: float) -> None:
        self.total += train_loss
        self.steps += 1

    def close(self) -> float | None:
        """The window's mean (None when no step was taken in it), and start the next one."""
        mean = self.total / self.steps if self.steps else None
        self.total, self.steps = 0.0, 0
        return mean

    def state(self) -> dict:
        return {"total": self.total, "steps": self.steps}

    def restore(self, state: dict) -> None:
        self.total, self.steps = state["total"], state["steps"]


class DivergenceWatch:
    """Feed it, at every evaluation, the mean training loss over the steps since the last evaluation."""

    def __init__(self, factor: float = FACTOR, patience: int = PATIENCE):
        if not factor > 1:
            raise ValueError(f"factor must be > 1, got {factor}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.factor, self.patience = factor, patience
        self.first: float | None = None  # the first window: where training started
        self.best: float | None = None  # the lowest window so far
        self.streak = 0  # evaluations in a row that met the rule

    def observe(self, window_loss: float) -> str | None:
        """A stop reason (one human-readable line, e.g. 'diverged: train loss 3.4x its best (0.21) for 3 evaluations') when the run has clearly diverged, else None."""
        if not math.isfinite(window_loss):
            return None
        if self.first is None:
            self.first = window_loss
        self.best = window_loss if self.best is None else min(self.best, window_loss)
        diverged = window_loss >= self.factor * self.best and window_loss >= self.first
        self.streak = self.streak + 1 if diverged else 0
        if self.streak < self.patience:
            return None
        ratio = window_loss / self.best if self.best > 0 else math.inf
        return (
            f"diverged: train loss {window_loss:.3g} is {ratio:.3g}x its best ({self.best:.3g}) and no lower than "
            f"at its first evaluation ({self.first:.3g}), for {self.streak} evaluations in a row"
        )

    def state(self) -> dict:
        """What a checkpoint keeps, so a resumed attempt watches on from the same point."""
        return {"first": self.first, "best": self.best, "streak": self.streak}

    def restore(self, state: dict) -> None:
        self.first, self.best, self.streak = state["first"], state["best"], state["streak"]


def watch_for(training_config) -> DivergenceWatch | None:
    """The watch a trial's `training` section asks for; None when training.early_stop == "off"."""
    if training_config.early_stop == "off":
        return None
    return DivergenceWatch()
