"""Where a sweep's metric logs go: the storage URI `submit` trains into and `sync` reads from.

A local path is made absolute here, because workers (and a detached sweep's driver, a Ray Job)
run in other directories; a URI (s3://, gs://, ...) passes through as given.
"""

from __future__ import annotations

from pathlib import Path

from rnnsweep.service import reports
from rnnsweep.service.spec import Grid


def default_storage(warehouse: Path) -> str:
    """Beside the warehouse, so a sweep run with no storage named keeps its logs next to its metrics."""
    return str((warehouse.parent / "logs").resolve())


def absolute_storage(uri: str | None) -> str | None:
    """A local storage path made absolute: workers (and a Ray Job's driver) run in other directories."""
    return uri if not uri or "://" in uri else str(Path(uri).expanduser().resolve())


def grid_storage(grid: Grid, warehouse: Path, given: str | None = None) -> str:
    """Where a grid's sweep writes: the storage given, else the grid's [sweep] storage, else beside the warehouse."""
    return absolute_storage(given or grid.storage) or default_storage(warehouse)


def sweep_storage(warehouse: Path, sweep: str, given: str | None = None) -> str:
    """Where a sweep is read from: the storage given, else where this warehouse last saw it, else beside it."""
    return absolute_storage(given) or reports.stored_storage(warehouse, sweep) or default_storage(warehouse)
