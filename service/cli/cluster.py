"""Cluster commands: the ones for sweeps whose metric logs are written somewhere else (sync, attach),
and what `submit --detach` says after handing a sweep to a cluster's job server.

They are grouped because they bring a sweep running away from this machine into this warehouse:
its storage (often object storage) is the sweep's record, the local warehouse a copy synced from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rnnsweep.service import reports
from rnnsweep.service.cli.options import DEFAULT_WAREHOUSE, FormatOption, QuietOption, WarehouseOption, user_errors
from rnnsweep.service.render import OutputFormat, stderr_console, write_table
from rnnsweep.service.spec import Grid
from rnnsweep.service.storage import sweep_storage

app = typer.Typer()


def submit_to_cluster(
    spec: Grid, warehouse: Path, storage_uri: str, address: str | None, max_in_flight: int | None, pack: bool
) -> None:
    """`submit --detach`: run the sweep as a Ray Job on the cluster, and say how to follow it."""
    from rnnsweep.service.detach import submit_detached

    job, new = submit_detached(spec, warehouse, storage_uri, address, max_in_flight, pack=pack)
    said = "submitted as" if new else "already running as"
    stderr_console().print(
        f"sweep {spec.name} {said} Ray job {job.job_id}; follow it: rnnsweep attach {spec.name}", highlight=False
    )


@app.command(epilog="Example: rnnsweep sync l2-vs-lr --storage s3://my-bucket/rnnsweep")
def sync(
    sweep: Annotated[str, typer.Argument(help="The sweep to bring into this warehouse.", show_default=False)],
    storage: Annotated[
        Optional[str],
        typer.Option(
            help="The sweep's storage (path or URI; default: where this warehouse last saw it, else beside it)."
        ),
    ] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Load a sweep's metric logs from its storage (e.g. written by a cluster) into this warehouse; again any time."""
    from rnnsweep.service.sync import sync_sweep

    with user_errors():
        uri = sweep_storage(warehouse, sweep, storage)
        report = sync_sweep(warehouse, sweep, uri)
        stderr_console().print(
            f"synced {report.sweep} from {uri}: {report.runs} runs, {report.ended} ended, {report.running} running",
            highlight=False,
        )
        write_table(reports.sweep_runs(warehouse, sweep), fmt)


@app.command(epilog="Example: rnnsweep attach l2-vs-lr   (after rnnsweep submit grid.toml --detach --address ...)")
def attach(
    sweep: Annotated[str, typer.Argument(help="A sweep submitted with --detach.", show_default=False)],
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    fmt: FormatOption = OutputFormat.table,
    quiet: QuietOption = False,
) -> None:
    """Follow a detached sweep to its end, syncing its metrics into this warehouse as they land."""
    from rnnsweep.service.detach import attach as follow
    from rnnsweep.service.detach import detached_job
    from rnnsweep.service.progress import SweepProgress

    with user_errors():
        try:
            job = detached_job(warehouse, sweep)  # before the progress bar: a wrong name is one line
            with SweepProgress(sweep, total=0, enabled=not quiet) as progress:
                status, tail = follow(warehouse, sweep, job, progress=lambda r: progress.show_sync(r))
        except KeyboardInterrupt:
            # Loads are transactional per chunk, so stopping mid-sync loses nothing.
            stderr_console().print(
                f"stopped following; the sweep goes on on the cluster: rnnsweep attach {sweep}", highlight=False
            )
            raise typer.Exit(130) from None
        stderr_console().print(
            f"Ray job ended {status}" + (f"; its last lines:\n{tail}" if tail else ""), highlight=False
        )
        write_table(reports.sweep_runs(warehouse, sweep), fmt)
        if status != "SUCCEEDED":
            raise typer.Exit(1)
