"""Build tests/corpus/shapes/: labelled runs in the shapes issue 13 names, trained by rnnsweep's
own code like make_corpus.py (whose helpers it reuses), labels from the injected fault.

Run from the repository root:  python tests/corpus/make_shapes.py   (a few minutes)

- `lm-*`: a language-model-like task with many classes (24 symbols; the next symbol of a
  Markov chain whose every symbol has one likely successor, p = 0.8), exported as epoch-level
  logs of loss only, starting after epoch 1: with 32,768 sequences the first epoch does most of
  the learning, which a "best loss >= 90 % of the first" rule reads as "did not learn".
  Faults: shuffled training labels and zeroed inputs (constant_output), strong coupled L2
  (l2_collapsed).
- `late-*`: the quickstart's event detector (bidirectional LSTM, Adam, weighted BCE) at an lr
  whose loss jumps in the last epochs (diverged), epoch-level with accuracy.
- `slow-*`: the same detector at lr 3e-4, still at chance after its epochs while its loss
  falls: healthy (no fault), trap `slow_at_chance`.

Manifestation checks (losses and scores only, never a detector's logic): make_corpus.py's
for diverged (final-epoch train loss >= 1.5x its best half-epoch mean); for the lm task,
healthy = final val accuracy >= 0.5 (chance 1/24), constant_output = its healthy twin learned
and it ended <= 0.1, l2_collapsed = 0.1 below its twin; slow_at_chance = final balanced
accuracy <= 0.6 and the last epoch's mean train loss below the first's.

Outputs (shapes/): metrics.parquet (rich), metrics_minimal.parquet (epoch-level, after epoch
1; loss only for lm-*), params.parquet, labels.parquet, with make_corpus.py's schemas.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_corpus import (  # noqa: E402
    EVENTS,
    LABELS_SCHEMA,
    Curves,
    check_diverged,
    curves,
    metrics_table,
    minimal_table,
    train,
    trial,
    write,
)

from rnnsweep.jobs.config import DataConfig, TrialConfig  # noqa: E402

HERE = Path(__file__).resolve().parent / "shapes"
SYMBOLS, SEQ_LEN = 24, 8
QUICKSTART = DataConfig(n_train=2048, n_val=512, seq_len=40, positive_rate=0.05)


def lm_arrays(folder: Path, seed: int, fault: str = "") -> Path:
    """Next-symbol prediction on a Markov chain: symbol s is followed by (5s + 7) % 24 with
    p = 0.8, else by a uniform symbol. x: the previous SEQ_LEN symbols one-hot; y: the next."""
    rng = np.random.default_rng(seed)

    def split(n):
        seq = np.empty((n, SEQ_LEN + 1), dtype=np.int64)
        seq[:, 0] = rng.integers(SYMBOLS, size=n)
        for t in range(1, SEQ_LEN + 1):
            likely = (5 * seq[:, t - 1] + 7) % SYMBOLS
            seq[:, t] = np.where(rng.random(n) < 0.8, likely, rng.integers(SYMBOLS, size=n))
        return np.eye(SYMBOLS, dtype=np.float32)[seq[:, :-1]], seq[:, -1]

    x, y = split(32768)
    x_val, y_val = split(512)
    if fault == "shuffled_labels":
        y = np.random.default_rng(12345).permutation(y)
    elif fault == "zeroed_inputs":
        x, x_val = np.zeros_like(x), np.zeros_like(x_val)
    path = folder / f"lm-{seed}-{fault or 'clean'}.npz"
    np.savez(path, x=x, y=y, x_val=x_val, y_val=y_val)
    return path


def lm_trial(path: Path, **kw) -> TrialConfig:
    base = trial("sequences4", DataConfig(), epochs=kw.pop("epochs", 4), **kw)
    return TrialConfig.model_validate({**base.model_dump(), "task": "file", "data": {"path": str(path)}})


def score(c: Curves) -> float:
    return c.score if np.isfinite(c.score) else -np.inf


def check(label: str, trap: str, c: Curves, twin: Curves | None) -> tuple[bool, str]:
    if label == "diverged":
        return check_diverged(c, twin)
    if trap == "slow_at_chance":
        first, last = c.epoch_means[0], c.epoch_means[-1]
        return score(
            c
        ) <= 0.6 and last < first, f"final val balanced acc {c.score:.3f}; train loss {first:.4g} -> {last:.4g}"
    if label == "healthy":
        return score(c) >= 0.5, f"final val acc {c.score:.3f} (learned: >= 0.5)"
    if label == "constant_output":
        return twin.score >= 0.5 and score(c) <= 0.1, f"final val acc {c.score:.3f} vs twin {twin.score:.3f}"
    return twin.score - score(c) >= 0.1, f"final val acc {c.score:.3f} vs twin {twin.score:.3f} (needs a drop >= 0.1)"


def runs(folder: Path) -> list[tuple[str, str, str, str, TrialConfig, TrialConfig | None]]:
    """(run_id, label, fault, trap, config, twin)."""
    clean = {seed: lm_arrays(folder, seed) for seed in (0, 1, 2)}
    healthy = lm_trial(clean[0], lr=3e-3, seed=0)
    return [
        ("lm-healthy-01", "healthy", "none", "none", healthy, None),
        ("lm-healthy-02", "healthy", "none", "none", lm_trial(clean[1], cell="lstm", lr=3e-3, seed=1), None),
        ("lm-healthy-03", "healthy", "none", "none", lm_trial(clean[2], opt="rmsprop", lr=1e-3, seed=2), None),
        ("lm-constant_output-01", "constant_output", "shuffled_labels", "none",
         lm_trial(lm_arrays(folder, 0, "shuffled_labels"), lr=3e-3, seed=0), healthy),
        ("lm-constant_output-02", "constant_output", "zeroed_inputs", "none",
         lm_trial(lm_arrays(folder, 0, "zeroed_inputs"), lr=3e-3, seed=0), healthy),
        ("lm-l2_collapsed-01", "l2_collapsed", "strong_l2_0.1", "none", lm_trial(clean[0], lr=3e-3, seed=0, wd=0.1), healthy),
        ("lm-l2_collapsed-02", "l2_collapsed", "strong_l2_0.5", "none", lm_trial(clean[0], lr=3e-3, seed=0, wd=0.5), healthy),
        ("late-diverged-01", "diverged", "adam_lr_0.003_late_jump", "none",
         trial("events", QUICKSTART, cell="lstm", hidden=48, bi=True, lr=3e-3, wd=1e-3), None),
        ("late-diverged-02", "diverged", "adam_lr_0.03", "none",
         trial("events", QUICKSTART, cell="lstm", hidden=48, bi=True, lr=3e-2), None),
        ("slow-healthy-01", "healthy", "none", "slow_at_chance",
         trial("events", QUICKSTART, cell="lstm", hidden=48, bi=True, lr=3e-4), None),
        ("slow-healthy-02", "healthy", "none", "slow_at_chance",
         trial("events", EVENTS, cell="lstm", hidden=32, bi=True, lr=2e-4, epochs=4), None),
    ]  # fmt: skip


def params_row(run_id: str, config: TrialConfig) -> dict:
    lm = config.task == "file"
    return {
        "run_id": run_id, "task": "classification", "n_classes": SYMBOLS if lm else 2,
        "optimizer": config.optimizer.name, "lr": config.optimizer.lr, "weight_decay": config.optimizer.weight_decay,
        "beta1": config.optimizer.betas[0], "cell": config.model.cell, "epochs": config.epochs,
    }  # fmt: skip


def main() -> None:
    metrics, minimal, params, labels = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="rnnsweep-shapes-") as tmp:
        folder, cache = Path(tmp), {}

        def trained(config):
            if config.run_id not in cache:
                cache[config.run_id] = train(config, folder / "storage")
            return cache[config.run_id]

        for run_id, label, fault, trap, config, twin in runs(folder):
            kind = "binary" if config.task == "events" else "multiclass"
            table = trained(config)
            twin_curves = curves(trained(twin), kind, twin) if twin is not None else None
            ok, note = check(label, trap, curves(table, kind, config), twin_curves)
            print(f"{run_id:24s} {label:16s} {'ok ' if ok else 'NOT'} {note}", flush=True)
            labels.append(
                {"run_id": run_id, "label": label, "fault": fault, "trap": trap, "manifested": ok, "note": note}
            )
            metrics.append(metrics_table(run_id, table))
            reduced = minimal_table(run_id, table, kind)
            if config.task == "file":  # a language model's log: loss only
                reduced = reduced.filter(pc.is_in(reduced["metric"], pa.array(["train_loss", "val_loss"])))
            minimal.append(reduced)
            params.append(params_row(run_id, config))
    HERE.mkdir(exist_ok=True)
    write(pa.concat_tables(metrics), "metrics.parquet", HERE)
    write(pa.concat_tables(minimal), "metrics_minimal.parquet", HERE)
    write(pa.Table.from_pylist(params), "params.parquet", HERE)
    write(pa.Table.from_pylist(labels, schema=LABELS_SCHEMA), "labels.parquet", HERE)


if __name__ == "__main__":
    main()
