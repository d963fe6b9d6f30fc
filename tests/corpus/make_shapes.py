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

`--holdout` builds the HELD-OUT twin instead, into shapes_holdout/ (run ids `ho-*`): the same
shapes, faults families and checks, made after the rules were revised on shapes/ and never to be
used for tuning. What differs: data and trial seeds (101+), vocabularies of 16 and 32 symbols
(other successor maps and p), other sequence counts and lengths, LSTM where shapes/ used a GRU
and back, an Elman RNN, other fault strengths (L2 0.05, 0.3) and corruptions (inputs scaled by
1e-6, constant inputs), other lrs, data and cells for the late divergence and the slow
learners, and healthy event detectors that plateau early (trap `early_plateau`, checked like
make_corpus.py's healthy runs: final balanced accuracy >= 0.8).
`--only REGEX` trains and prints the matching runs (of either set) and writes nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_corpus import (  # noqa: E402
    EVENTS,
    INPUT_FAULTS,
    LABELS_SCHEMA,
    Curves,
    check_diverged,
    check_healthy,
    curves,
    metrics_table,
    minimal_table,
    train,
    trial,
    write,
)

from rnnsweep.jobs.config import DataConfig, TrialConfig  # noqa: E402

HERE = Path(__file__).resolve().parent / "shapes"
HOLDOUT = Path(__file__).resolve().parent / "shapes_holdout"
SYMBOLS, SEQ_LEN = 24, 8
QUICKSTART = DataConfig(n_train=2048, n_val=512, seq_len=40, positive_rate=0.05)
N_CLASSES: dict[str, int] = {}  # lm array file -> its vocabulary (params.parquet's n_classes)


def lm_arrays(
    folder: Path,
    seed: int,
    fault: str = "",
    *,
    symbols: int = SYMBOLS,
    seq_len: int = SEQ_LEN,
    n_train: int = 32768,
    n_val: int = 512,
    successor: tuple[int, int] = (5, 7),
    p: float = 0.8,
) -> Path:
    """Next-symbol prediction on a Markov chain: symbol s is followed by (a s + b) % symbols
    (successor = (a, b), a prime to symbols) with probability p, else by a uniform symbol.
    x: the previous seq_len symbols one-hot; y: the next. Defaults: shapes/ (24 symbols, 5s + 7,
    p = 0.8). Faults: shuffled training labels, or one of make_corpus.py's INPUT_FAULTS on the
    inputs of both splits."""
    rng = np.random.default_rng(seed)
    a, b = successor

    def split(n):
        seq = np.empty((n, seq_len + 1), dtype=np.int64)
        seq[:, 0] = rng.integers(symbols, size=n)
        for t in range(1, seq_len + 1):
            likely = (a * seq[:, t - 1] + b) % symbols
            seq[:, t] = np.where(rng.random(n) < p, likely, rng.integers(symbols, size=n))
        return np.eye(symbols, dtype=np.float32)[seq[:, :-1]], seq[:, -1]

    x, y = split(n_train)
    x_val, y_val = split(n_val)
    if fault == "shuffled_labels":
        y = np.random.default_rng(12345).permutation(y)
    elif fault:
        x, _ = INPUT_FAULTS[fault](x, y, None)
        x_val, _ = INPUT_FAULTS[fault](x_val, y_val, None)
        x, x_val = x.astype(np.float32), x_val.astype(np.float32)
    stem = f"lm-{seed}" if symbols == SYMBOLS else f"lm{symbols}-{seed}"
    path = folder / f"{stem}-{fault or 'clean'}.npz"
    np.savez(path, x=x, y=y, x_val=x_val, y_val=y_val)
    N_CLASSES[str(path)] = symbols
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
    if label == "healthy" and c.kind == "binary":  # an event detector: make_corpus.py's check
        return check_healthy(c, twin)
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


# ---------------------------------------------------------------------------------------
# The held-out twin (`--holdout`, written to shapes_holdout/). Made after the rules were revised
# on shapes/ and never to be used for tuning: only the manifestation checks above were looked at
# while its configurations were chosen.

LM16 = {"symbols": 16, "seq_len": 6, "n_train": 24576, "n_val": 768, "successor": (3, 5), "p": 0.85}
LM32 = {"symbols": 32, "seq_len": 10, "n_train": 20480, "n_val": 640, "successor": (7, 3), "p": 0.75}
LM32_SHORT = {"symbols": 32, "seq_len": 5, "n_train": 28672, "n_val": 640, "successor": (9, 4), "p": 0.8}
HO_QUICKSTART = DataConfig(seed=111, n_train=2560, n_val=640, seq_len=36, positive_rate=0.06)
HO_EVENTS = DataConfig(seed=112, n_train=1280, n_val=320, seq_len=32, positive_rate=0.08)
HO_EVENTS_EASY = DataConfig(seed=113, n_train=1536, n_val=384, seq_len=28, positive_rate=0.35, noise=0.1)


def holdout_runs(folder: Path) -> list[tuple[str, str, str, str, TrialConfig, TrialConfig | None]]:
    """(run_id, label, fault, trap, config, twin), like runs()."""
    clean16 = lm_arrays(folder, 101, **LM16)
    clean32 = lm_arrays(folder, 102, **LM32)
    h16 = lm_trial(clean16, cell="lstm", lr=5e-3, seed=101)
    h32 = lm_trial(clean32, hidden=48, lr=2e-3, epochs=3, seed=102)
    return [
        ("ho-lm-healthy-01", "healthy", "none", "none", h16, None),
        ("ho-lm-healthy-02", "healthy", "none", "none", h32, None),
        ("ho-lm-healthy-03", "healthy", "none", "none",
         lm_trial(lm_arrays(folder, 103, **LM32_SHORT), cell="lstm", opt="rmsprop", lr=2e-3, seed=103), None),
        ("ho-lm-healthy-04", "healthy", "none", "none",
         lm_trial(lm_arrays(folder, 104, **LM16), cell="rnn", lr=3e-3, clip=1.0, epochs=5, seed=104), None),
        ("ho-lm-constant_output-01", "constant_output", "inputs_scaled_1e-6", "none",
         lm_trial(lm_arrays(folder, 101, "inputs_scaled_1e-6", **LM16), cell="lstm", lr=5e-3, seed=101), h16),
        ("ho-lm-constant_output-02", "constant_output", "constant_inputs", "none",
         lm_trial(lm_arrays(folder, 102, "constant_inputs", **LM32), hidden=48, lr=2e-3, epochs=3, seed=102), h32),
        ("ho-lm-l2_collapsed-01", "l2_collapsed", "strong_l2_0.05", "none",
         lm_trial(clean16, cell="lstm", lr=5e-3, seed=101, wd=0.05), h16),
        ("ho-lm-l2_collapsed-02", "l2_collapsed", "strong_l2_0.3", "none",
         lm_trial(clean32, hidden=48, lr=2e-3, epochs=3, seed=102, wd=0.3), h32),
        ("ho-late-diverged-01", "diverged", "adam_lr_0.004_late_jump", "none",
         trial("events", HO_QUICKSTART, hidden=40, bi=True, lr=4e-3, wd=2e-3, seed=111), None),
        ("ho-late-diverged-02", "diverged", "adam_lr_0.05", "none",
         trial("events", HO_QUICKSTART, cell="lstm", hidden=56, bi=True, lr=5e-2, seed=112), None),
        ("ho-late-diverged-03", "diverged", "adam_lr_0.04", "none",
         trial("events", HO_EVENTS, cell="lstm", hidden=32, bi=True, lr=4e-2, epochs=10, seed=113), None),
        ("ho-slow-healthy-01", "healthy", "none", "slow_at_chance",
         trial("events", HO_QUICKSTART, hidden=48, bi=True, lr=1e-4, epochs=6, seed=114), None),
        ("ho-slow-healthy-02", "healthy", "none", "slow_at_chance",
         trial("events", HO_EVENTS, cell="lstm", hidden=40, bi=True, lr=1.5e-4, epochs=5, seed=115), None),
        ("ho-plateau-healthy-01", "healthy", "none", "early_plateau",
         trial("events", HO_EVENTS_EASY, hidden=32, bi=True, lr=1e-2, pos_weight=2.0, epochs=10, seed=116), None),
        ("ho-plateau-healthy-02", "healthy", "none", "early_plateau",
         trial("events", HO_EVENTS_EASY, cell="lstm", hidden=24, lr=8e-3, pos_weight=1.5, epochs=10, seed=117), None),
    ]  # fmt: skip


def params_row(run_id: str, config: TrialConfig) -> dict:
    lm = config.task == "file"
    return {
        "run_id": run_id, "task": "classification", "n_classes": N_CLASSES[config.data.path] if lm else 2,
        "optimizer": config.optimizer.name, "lr": config.optimizer.lr, "weight_decay": config.optimizer.weight_decay,
        "beta1": config.optimizer.betas[0], "cell": config.model.cell, "epochs": config.epochs,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--holdout", action="store_true", help="the held-out twin, into shapes_holdout/ (never tune on it)"
    )
    parser.add_argument("--only", help="train and print just the run_ids matching this regex; write nothing")
    args = parser.parse_args(argv)
    out = HOLDOUT if args.holdout else HERE
    started = time.monotonic()
    metrics, minimal, params, labels = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="rnnsweep-shapes-") as tmp:
        folder, cache = Path(tmp), {}

        def trained(config):
            if config.run_id not in cache:
                cache[config.run_id] = train(config, folder / "storage")
            return cache[config.run_id]

        for run_id, label, fault, trap, config, twin in (holdout_runs if args.holdout else runs)(folder):
            if args.only and not re.search(args.only, run_id):
                continue
            t0 = time.monotonic()
            kind = "binary" if config.task == "events" else "multiclass"
            table = trained(config)
            twin_curves = curves(trained(twin), kind, twin) if twin is not None else None
            ok, note = check(label, trap, curves(table, kind, config), twin_curves)
            print(f"{run_id:28s} {label:16s} {'ok ' if ok else 'NOT'} {time.monotonic() - t0:5.1f}s {note}", flush=True)
            labels.append(
                {"run_id": run_id, "label": label, "fault": fault, "trap": trap, "manifested": ok, "note": note}
            )
            metrics.append(metrics_table(run_id, table))
            reduced = minimal_table(run_id, table, kind)
            if config.task == "file":  # a language model's log: loss only
                reduced = reduced.filter(pc.is_in(reduced["metric"], pa.array(["train_loss", "val_loss"])))
            minimal.append(reduced)
            params.append(params_row(run_id, config))
    print(f"{len(labels)} runs in {time.monotonic() - started:.0f}s; not manifested: "
          f"{[r['run_id'] for r in labels if not r['manifested']] or 'none'}")  # fmt: skip
    if args.only:
        return
    out.mkdir(exist_ok=True)
    write(pa.concat_tables(metrics), "metrics.parquet", out)
    write(pa.concat_tables(minimal), "metrics_minimal.parquet", out)
    write(pa.Table.from_pylist(params), "params.parquet", out)
    write(pa.Table.from_pylist(labels, schema=LABELS_SCHEMA), "labels.parquet", out)


if __name__ == "__main__":
    main()
