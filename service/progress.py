"""The live progress bar of a sweep, on stderr (stdout stays clean for results)."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rnnsweep.service.render import stderr_console


class SweepProgress:
    """Runs done / total, with running, failed and stopped counts, elapsed time and ETA."""

    def __init__(self, sweep: str, total: int, enabled: bool = True):
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[states]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=stderr_console(),
            disable=not enabled,
        )
        self._task = self._progress.add_task(sweep, total=total, states="")

    def __enter__(self) -> SweepProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def update(self, done: int, running: int, failed: int, stopped: int) -> None:
        states = f"running {running} · failed {failed} · stopped {stopped}"
        self._progress.update(self._task, completed=done, states=states)

    def show_sync(self, report) -> None:
        """Progress of a detached sweep, from what the last sync found in storage."""
        self._progress.update(self._task, total=report.runs, completed=report.ended, states=f"running {report.running}")

    def log(self, message: str) -> None:
        self._progress.console.print(message)
