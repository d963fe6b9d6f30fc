"""The `rnnsweep` command: a thin shell over the library.

Each command parses its options, calls one function and renders the result. Data goes to
stdout (table, csv, json, parquet); progress and errors go to stderr. A user error prints
`error: ...` lines and exits non-zero; a traceback means a bug.
Heavy imports (ray, torch) happen inside the functions that need them, so `--help` is instant.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Optional

import typer

from rnnsweep.service import reports
from rnnsweep.service.errors import UserError
from rnnsweep.service.render import OutputFormat, stderr_console, write_table

DEFAULT_WAREHOUSE = Path("rnnsweep-data/warehouse.duckdb")
RESULT_ROWS_SHOWN = 20  # in the table after a sweep; csv/json get every row

app = typer.Typer(
    help="Run grids of RNN training configurations on Ray, land every metric in DuckDB, query them with SQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

WarehouseOption = Annotated[
    Path,
    typer.Option("--warehouse", "-w", envvar="RNNSWEEP_WAREHOUSE", help="DuckDB warehouse file.", show_default=True),
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
AddressOption = Annotated[
    Optional[str], typer.Option(help="Ray cluster address (e.g. ray://head:10001); default: start a local Ray.")
]
NumCpusOption = Annotated[Optional[int], typer.Option(help="CPUs for the local Ray (default: all).", min=1)]
MaxInFlightOption = Annotated[
    Optional[int],
    typer.Option(help="Most Ray tasks (trials or packs) queued at once (default: 2x what runs at once).", min=1),
]
NoPackOption = Annotated[
    bool,
    typer.Option(
        "--no-pack", help="Train every trial in its own Ray task, never fused with others of its shape into a pack."
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except UserError as e:
        console = stderr_console()
        for line in str(e).splitlines():
            console.print(f"error: {line}", markup=False, highlight=False)
        raise typer.Exit(e.exit_code) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rnnsweep {version('rnnsweep')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    pass


@app.command(epilog="Example: rnnsweep submit examples/quickstart.toml   (add --dry-run to see the grid first)")
def submit(
    grid: Annotated[Path, typer.Argument(help="The grid file (TOML).", show_default=False)],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the expanded grid; submit nothing, write nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Allow grids of more than 10,000 trials.")] = False,
    address: AddressOption = None,
    num_cpus: NumCpusOption = None,
    max_in_flight: MaxInFlightOption = None,
    no_pack: NoPackOption = False,
    storage: Annotated[
        Optional[str],
        typer.Option(help="Where metric logs go: a path or a pyarrow URI (default: beside the warehouse)."),
    ] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    fmt: FormatOption = OutputFormat.table,
    quiet: QuietOption = False,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Run the sweep as a Ray Job on the cluster at --address (its job server, http://HEAD:8265) and return.",
        ),
    ] = False,
) -> None:
    """Expand GRID into trials and train the ones not finished yet on Ray; metrics land in the warehouse."""
    from rnnsweep.service.spec import load_grid

    with user_errors():
        spec = load_grid(grid, allow_large=yes)
        if dry_run:
            write_table(reports.grid_table(spec), fmt)
            axes = ", ".join(f"{k} ({len(v)})" for k, v in spec.axes.items()) or "none"
            stderr_console().print(
                f"{len(spec.trials)} trials, axes: {axes}. Dry run: nothing submitted.", highlight=False
            )
            return
        storage_uri = absolute_storage(storage or spec.storage) or default_storage(warehouse)
        if detach:
            if not address:
                raise UserError(
                    "--detach needs --address: the cluster's job server, e.g. http://127.0.0.1:8265 through `ray dashboard`"
                )
            from rnnsweep.service.detach import submit_detached

            job, new = submit_detached(spec, warehouse, storage_uri, address, max_in_flight, pack=not no_pack)
            said = "submitted as" if new else "already running as"
            stderr_console().print(
                f"sweep {spec.name} {said} Ray job {job.job_id}; follow it: rnnsweep attach {spec.name}",
                highlight=False,
            )
            return
        _run_and_report(spec, warehouse, storage_uri, address, num_cpus, max_in_flight, not no_pack, fmt, quiet)


def default_storage(warehouse: Path) -> str:
    return str((warehouse.parent / "logs").resolve())


def absolute_storage(uri: str | None) -> str | None:
    """A local storage path made absolute: workers (and a Ray Job's driver) run in other directories."""
    return uri if not uri or "://" in uri else str(Path(uri).expanduser().resolve())


def _run_and_report(
    spec, warehouse: Path, storage_uri: str, address, num_cpus, max_in_flight, pack: bool, fmt, quiet
) -> None:
    """Train what is missing of a grid, then print its runs best-first and a summary."""
    from rnnsweep.service.submit import run_sweep

    report = run_sweep(
        spec, warehouse, storage_uri, address, num_cpus, max_in_flight, show_progress=not quiet, pack=pack
    )
    results = reports.sweep_results(warehouse, spec)
    labels = reports.label_summary(results)
    if fmt is OutputFormat.table and results.num_rows > RESULT_ROWS_SHOWN:
        results = results.slice(0, RESULT_ROWS_SHOWN)
        stderr_console().print(
            f"best {RESULT_ROWS_SHOWN} runs by validation loss; `rnnsweep status {spec.name}` lists all",
            highlight=False,
        )
    write_table(results, fmt)
    stderr_console().print(reports.summary_line(report), highlight=False)
    if labels:
        stderr_console().print(
            f"labels: {labels}; `rnnsweep diagnose {spec.name}` gives evidence and fixes", highlight=False
        )


@app.command(epilog="Example: rnnsweep resume quickstart   (after a crash, Ctrl-C or rnnsweep cancel)")
def resume(
    sweep: Annotated[str, typer.Argument(help="The sweep to finish.", show_default=False)],
    address: AddressOption = None,
    num_cpus: NumCpusOption = None,
    max_in_flight: MaxInFlightOption = None,
    no_pack: NoPackOption = False,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    fmt: FormatOption = OutputFormat.table,
    quiet: QuietOption = False,
) -> None:
    """Train only what a sweep is missing (pending, failed, cancelled or interrupted runs), from its stored grid."""
    from rnnsweep.service.submit import stored_grid

    with user_errors():
        spec, storage_uri = stored_grid(warehouse, sweep)
        _run_and_report(spec, warehouse, storage_uri, address, num_cpus, max_in_flight, not no_pack, fmt, quiet)


@app.command(epilog="Example: rnnsweep cancel quickstart   (then rnnsweep resume quickstart to go on)")
def cancel(
    sweep: Annotated[str, typer.Argument(help="The sweep to stop.", show_default=False)],
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Stop a sweep: its running trials are cancelled, what they logged is kept."""
    from rnnsweep.service.submit import cancel_sweep

    with user_errors():
        interrupted, marked = cancel_sweep(warehouse, sweep)
        what = "interrupted its driver" if interrupted else "no driver was running it"
        stderr_console().print(f"sweep {sweep}: {what}; {marked} more runs marked cancelled", highlight=False)


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
        uri = absolute_storage(storage) or reports.stored_storage(warehouse, sweep) or default_storage(warehouse)
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


@app.command(epilog="Example: rnnsweep status   or   rnnsweep status l2-vs-lr")
def status(
    sweep: Annotated[Optional[str], typer.Argument(help="A sweep's name: list its runs.", show_default=False)] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Sweeps and their runs by state (pending, running, finished, failed, stopped, cancelled)."""
    with user_errors():
        write_table(reports.sweep_runs(warehouse, sweep) if sweep else reports.sweeps(warehouse), fmt)
        if sweep:
            from rnnsweep.service.detach import describe_job, latest_job

            job = latest_job(warehouse, sweep)
            if job is not None:
                stderr_console().print(describe_job(job), highlight=False)


@app.command(
    epilog='Example: rnnsweep query "select cell, lr, weight_decay, min(value) as best_val_loss '
    "from metrics join run_params using (run_id) where metric = 'val_loss' group by all order by 4\""
)
def query(
    sql: Annotated[str, typer.Argument(help="One SQL statement; '-' reads it from stdin.", show_default=False)],
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    fmt: FormatOption = OutputFormat.table,
    output: Annotated[
        Optional[str], typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds before the query is stopped.", min=0.1)] = 60.0,
) -> None:
    """Run read-only SQL on the warehouse (tables sweeps, runs, metrics; views run_params, run_results, ...)."""
    from rnnsweep.service.query import run_query

    with user_errors():
        if sql == "-":
            sql = typer.get_text_stream("stdin").read()
        write_table(run_query(warehouse, sql, timeout=timeout), fmt, output)


ThresholdOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a threshold, NAME=VALUE (repeatable); `rnnsweep thresholds` lists them."),
]


@app.command(epilog="Example: rnnsweep diagnose quickstart   or   rnnsweep diagnose --set overfit_val_rise=0.3 -f csv")
def diagnose(
    sweep: Annotated[
        Optional[str], typer.Argument(help="Only this sweep's runs (default: all).", show_default=False)
    ] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    fmt: FormatOption = OutputFormat.table,
    set_: ThresholdOption = None,
) -> None:
    """Label every run healthy, overfitting, l2_collapsed, diverged or constant_output, with evidence and a fix."""
    from rnnsweep.service import diagnose as diagnosis

    with user_errors():
        table = diagnosis.diagnose(warehouse, sweep, diagnosis.parse_assignments(set_ or []))
        counts = diagnosis.label_counts(table)
        if fmt is OutputFormat.table:
            write_table(table.select(["run_id", "label", "confidence", "onset_step", "evidence", "fix"]), fmt)
            write_table(counts, fmt)
        else:
            write_table(table, fmt)
            summary = " · ".join(f"{r['label']} {r['runs']}" for r in counts.to_pylist())
            stderr_console().print(f"{table.num_rows} runs: {summary}", highlight=False)


@app.command(epilog="Example: rnnsweep thresholds --set overfit_val_rise=0.25   (--reset overfit_val_rise to undo)")
def thresholds(
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    fmt: FormatOption = OutputFormat.table,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Keep NAME=VALUE for this warehouse (repeatable).")
    ] = None,
    reset: Annotated[Optional[list[str]], typer.Option("--reset", help="Back to the default (repeatable).")] = None,
) -> None:
    """The diagnosis thresholds: value, default, where the value comes from, what it means."""
    from rnnsweep.service import diagnose as diagnosis

    with user_errors():
        if set_ or reset:
            diagnosis.set_thresholds(warehouse, diagnosis.parse_assignments(set_ or []), reset or [])
        write_table(diagnosis.thresholds(warehouse), fmt)


@app.command(
    "import",
    epilog="Example: rnnsweep import runs.csv --params params.csv --sweep my-old-runs   (then: rnnsweep diagnose my-old-runs)",
)
def import_(
    metrics: Annotated[
        Path,
        typer.Argument(
            help="Long metrics table: run_id, step, epoch, metric, value (.csv or .parquet).", show_default=False
        ),
    ],
    sweep: Annotated[str, typer.Option(help="Name of the sweep these runs go into.", show_default=False)],
    params: Annotated[
        Optional[Path],
        typer.Option(help="Hyper-parameters: run_id plus any columns (lr, weight_decay, task, n_classes, ...)."),
    ] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Load runs logged elsewhere so they can be diagnosed and queried; importing twice changes nothing."""
    from rnnsweep.service.importer import import_runs

    with user_errors():
        report = import_runs(warehouse, metrics, params, sweep)
        stderr_console().print(
            f"imported {report.runs} runs ({report.rows:,} metric rows) into sweep {report.sweep}", highlight=False
        )


@app.command(epilog="Example: rnnsweep report quickstart -o report.html")
def report(
    sweep: Annotated[str, typer.Argument(help="The sweep to report on.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path("report.html"),
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    set_: ThresholdOption = None,
) -> None:
    """One self-contained HTML file: label heat map, loss curves by label, every run's evidence and fix."""
    from rnnsweep.service.diagnose import parse_assignments
    from rnnsweep.service.report_html import write_report

    with user_errors():
        size = write_report(warehouse, sweep, output, parse_assignments(set_ or []))
        stderr_console().print(f"wrote {output} ({size / 1024:.0f} KiB); it works offline", highlight=False)


def main() -> None:
    app()
