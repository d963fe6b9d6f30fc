"""Your own sequences, from an .npz or a .parquet file (task = "file", data.path = ...).

NPZ: arrays `x` (n, seq_len, n_features), floats, and `y`: integer class labels (n,)
for classification, or float targets (n,) / (n, target_dim) for regression. Optional
`x_val`, `y_val` give the validation split; without them `data.val_fraction` of the rows
is held out (fixed by `data.seed`).

Parquet: one row per sequence; column `x` a list of time steps, each a list of features
(list<list<double>>); column `y` an integer label or a list of floats; optional column
`split` with values "train" / "val".

Two classes train with BCE (positive class weighted by `training.pos_weight`), more with
cross-entropy, float targets with MSE. The dtype decides: float `y` is always regression, even
when every value is 0.0 or 1.0 (labels saved as floats, e.g. by pandas): a float column can
hold targets that happen to be 0/1, so it is never guessed at; store class labels as integers.
Every check runs before any training starts and a problem is reported as
`<file>: <array>: <problem>`.

A trial's config carries the sha256 of the file it was validated against (`data_digest`, part
of its run_id); a worker that reads different contents refuses to train on them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from rnnsweep.jobs.config import DataConfig
from rnnsweep.jobs.tasks import TaskData, TaskKind

MAX_CLASSES = 100_000  # a label of 10**9 would make a head (and a check) of 10**9 classes


class DataFileError(ValueError):
    """A user data file that cannot be trained on; the message names file, key and problem."""

    def __init__(self, path: str, key: str, problem: str):
        super().__init__(f"{path}: {key}: {problem}")
        self.path, self.key, self.problem = path, key, problem

    def __reduce__(self):  # crosses the Ray boundary intact, message and all
        return type(self), (self.path, self.key, self.problem)


def file_digest(path: str) -> str:
    """sha256 of a data file's contents, read in blocks."""
    digest = hashlib.sha256()
    if not Path(path).is_file():
        raise DataFileError(path, "data.path", "no such file")
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    except OSError as e:
        raise DataFileError(path, "data.path", f"cannot read ({e.strerror or e})") from None
    return digest.hexdigest()


def read_arrays(path: str) -> dict[str, np.ndarray]:
    file = Path(path)
    if not file.is_file():
        raise DataFileError(path, "data.path", "no such file")
    if file.suffix == ".npz":
        try:
            with np.load(file, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as e:
            raise DataFileError(path, "data.path", f"not a readable .npz file ({e})") from None
    if file.suffix == ".parquet":
        return _read_parquet(path)
    raise DataFileError(path, "data.path", "must end in .npz or .parquet")


def _read_parquet(path: str) -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise DataFileError(path, "data.path", f"not a readable Parquet file ({e})") from None
    for column in ("x", "y"):
        if column not in table.column_names:
            raise DataFileError(path, column, "missing column")
    try:
        x = np.array(table.column("x").to_pylist(), dtype=np.float64)
        y = np.array(table.column("y").to_pylist())
    except (TypeError, ValueError):
        raise DataFileError(path, "x", "rows must all have the same seq_len and n_features") from None
    if "split" not in table.column_names:
        return {"x": x, "y": y}
    split = np.array(table.column("split").to_pylist(), dtype=object)
    unknown = set(split) - {"train", "val"}
    if unknown:
        raise DataFileError(path, "split", f"values must be 'train' or 'val' (got {sorted(map(str, unknown))})")
    return {"x": x[split == "train"], "y": y[split == "train"], "x_val": x[split == "val"], "y_val": y[split == "val"]}


def _check_x(path: str, key: str, x: np.ndarray) -> None:
    if x.dtype.kind not in "fiu":
        raise DataFileError(path, key, f"must hold numbers (got dtype {x.dtype})")
    if x.ndim != 3:
        raise DataFileError(path, key, f"must have shape (n, seq_len, n_features) (got {x.shape})")
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise DataFileError(path, key, f"is empty (shape {x.shape})")
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise DataFileError(path, key, f"{int(bad.sum())} NaN/Inf values (first in sequence {row})")


def _kind_of(path: str, key: str, y: np.ndarray) -> TaskKind:
    if y.dtype.kind in "iub":
        if y.ndim != 1:
            raise DataFileError(path, key, f"integer labels must have shape (n,) (got {y.shape})")
        return "multiclass"
    if y.dtype.kind == "f":
        if y.ndim not in (1, 2):
            raise DataFileError(path, key, f"targets must have shape (n,) or (n, target_dim) (got {y.shape})")
        if y.ndim == 2 and y.shape[1] == 0:
            raise DataFileError(path, key, f"targets have no dimensions (shape {y.shape}); target_dim must be >= 1")
        if not np.isfinite(y).all():
            raise DataFileError(path, key, f"{int((~np.isfinite(y)).sum())} NaN/Inf values")
        return "regression"
    raise DataFileError(path, key, f"must be integer labels or float targets (got dtype {y.dtype})")


def _check_pair(path: str, suffix: str, x: np.ndarray, y: np.ndarray) -> TaskKind:
    _check_x(path, f"x{suffix}", x)
    kind = _kind_of(path, f"y{suffix}", y)
    if len(y) != len(x):
        raise DataFileError(path, f"y{suffix}", f"has {len(y)} rows but x{suffix} has {len(x)}")
    return kind


def _split(config: DataConfig, x: np.ndarray, y: np.ndarray):
    order = np.random.default_rng(config.seed).permutation(len(x))
    n_val = max(1, round(len(x) * config.val_fraction))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def load(config: DataConfig) -> TaskData:
    """Read and check a user data file; raises DataFileError naming the first problem."""
    path = config.path
    arrays = read_arrays(path)
    for key in ("x", "y"):
        if key not in arrays:
            raise DataFileError(path, key, "missing array")
    kind = _check_pair(path, "", arrays["x"], arrays["y"])
    x, y = arrays["x"], arrays["y"]
    if "x_val" in arrays or "y_val" in arrays:
        if "x_val" not in arrays or "y_val" not in arrays:
            raise DataFileError(
                path, "x_val" if "x_val" not in arrays else "y_val", "missing array (x_val and y_val come together)"
            )
        if _check_pair(path, "_val", arrays["x_val"], arrays["y_val"]) != kind:
            raise DataFileError(path, "y_val", "must be the same kind (labels or targets) as y")
        x_train, y_train, x_val, y_val = x, y, arrays["x_val"], arrays["y_val"]
        if x_val.shape[1:] != x_train.shape[1:]:
            raise DataFileError(path, "x_val", f"steps/features {x_val.shape[1:]} differ from x's {x_train.shape[1:]}")
        if kind == "regression" and y_val.shape[1:] != y_train.shape[1:]:
            raise DataFileError(path, "y_val", f"target shape {y_val.shape[1:]} differs from y's {y_train.shape[1:]}")
    else:
        if len(x) < 2:
            raise DataFileError(path, "x", "needs at least 2 sequences to hold one out for validation")
        x_train, y_train, x_val, y_val = _split(config, x, y)

    if kind == "regression":
        y_train, y_val = (a.reshape(len(a), -1).astype(np.float32) for a in (y_train, y_val))
        n_outputs = y_train.shape[1]
    else:
        y_train, y_val = y_train.astype(np.int64), y_val.astype(np.int64)
        n_classes = int(max(y_train.max(), y_val.max())) + 1
        if min(y_train.min(), y_val.min()) < 0:
            raise DataFileError(path, "y", "class labels must be 0, 1, ..., n_classes-1 (found a negative label)")
        if n_classes > MAX_CLASSES:
            raise DataFileError(
                path,
                "y",
                f"class labels must be 0..n_classes-1 with at most {MAX_CLASSES:,} classes (largest: {n_classes - 1})",
            )
        missing = sorted(set(range(n_classes)) - set(np.unique(y_train).tolist()))
        if missing:
            raise DataFileError(
                path,
                "y",
                f"class labels must be 0..{n_classes - 1} with every class in the training split; missing {missing}",
            )
        if n_classes < 2:
            raise DataFileError(path, "y", "needs at least 2 classes")
        kind, n_outputs = ("binary", 1) if n_classes == 2 else ("multiclass", n_classes)
    return TaskData(x_train.astype(np.float32), y_train, x_val.astype(np.float32), y_val, kind, n_outputs)


def make(config: DataConfig, digest: str = "") -> TaskData:
    """A worker's read: the file must still hold what the sweep was validated (and identified) with."""
    if digest and file_digest(config.path) != digest:
        raise DataFileError(
            config.path, "data.path", "contents changed since the sweep was submitted; submit the grid again"
        )
    return load(config)
