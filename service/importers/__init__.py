"""Readers for the shapes logs come in, chosen by looking at the path (or `--format`).

| format        | path                                                              | module         |
|---------------|-------------------------------------------------------------------|----------------|
| `long`        | a .csv / .parquet with `metric` and `value` columns               | long.py        |
| `wide`        | a .csv / .parquet with `step` or `epoch`, one column per metric   | wide.py        |
| (either)      | a folder of such files: one run per file, named by its path       | here           |
| `tensorboard` | a log dir holding event files (or one event file)                 | tensorboard.py |
| `mlflow`      | an MLflow file store (`mlruns/`)                                  | mlflow.py      |

Each returns a `Source`: the runs as one long Arrow table with the source's own metric names,
and any params the source holds. Naming, checking and loading are the importer's, once for all.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import pyarrow as pa

from rnnsweep.service.errors import UserError
from rnnsweep.service.importers import long, mlflow, tensorboard, wide
from rnnsweep.service.importers.files import column_names, table_files
from rnnsweep.service.importers.source import Source


class SourceFormat(str, Enum):
    long = "long"
    wide = "wide"
    tensorboard = "tensorboard"
    mlflow = "mlflow"


def read_source(path: Path, fmt: SourceFormat | None = None) -> Source:
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    fmt = fmt or _looks_like(path)
    if fmt is SourceFormat.tensorboard:
        if not (tensorboard.is_event_file(path) or path.is_dir() and tensorboard.holds_event_files(path)):
            raise UserError(f"{path}: no TensorBoard event files (events.out.tfevents.*) here")
        return tensorboard.read(path)
    if fmt is SourceFormat.mlflow:
        if not mlflow.is_store(path):
            raise UserError(f"{path}: not an MLflow file store (an mlruns/ folder of experiments)")
        return mlflow.read(path)
    if path.is_dir():
        return _read_folder(path, fmt)
    return _read_file(path, fmt, path.stem)


def _looks_like(path: Path) -> SourceFormat | None:
    """tensorboard or mlflow by their files; None for tables, whose shape each file's header tells."""
    if tensorboard.is_event_file(path) or path.is_dir() and tensorboard.holds_event_files(path):
        return SourceFormat.tensorboard
    if mlflow.is_store(path):
        return SourceFormat.mlflow
    return None


def _read_file(path: Path, fmt: SourceFormat | None, run_id: str) -> Source:
    if fmt is SourceFormat.long or fmt is None and long.is_long(column_names(path)):
        return long.read(path)
    return wide.read(path, run_id)


def _read_folder(folder: Path, fmt: SourceFormat | None) -> Source:
    """One run per file, named by its path below the folder without the suffix; where every file
    has the same name (Lightning's version_0/metrics.csv, version_1/metrics.csv), by its folder."""
    files = table_files(folder)
    if not files:
        raise UserError(
            f"{folder}: no .csv or .parquet files, TensorBoard event files or MLflow runs here; "
            "pass a file, a log dir or an mlruns/ folder"
        )
    same_name = len({f.name for f in files}) == 1
    tables, owner = [], {}
    for file in files:
        relative = file.relative_to(folder)
        named_by_folder = same_name and relative.parent != Path(".")
        run_id = (relative.parent if named_by_folder else relative.with_suffix("")).as_posix()
        metrics = _read_file(file, fmt, run_id).metrics
        for run in metrics.column("run_id").unique().to_pylist():
            if run in owner:
                raise UserError(f"{file}: run {run!r} is also in {owner[run]}; one run per file")
            owner[run] = file
        tables.append(metrics)
    return Source(pa.concat_tables(tables))
