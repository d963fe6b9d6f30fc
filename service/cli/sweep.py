"""Sweep commands: the ones that start or stop training (submit, resume, cancel, fix).

They are grouped because they drive Ray (or stop what drives it): each turns a grid, or a
sweep stored in the warehouse, into trials trained now, and reports the runs they leave.
`submit --detach` hands the sweep to a cluster instead; cluster.py renders that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rnnsweep.service import reports
from rnnsweep.service.cli.cluster import submit_to_cluster
from rnnsweep.service.cli.options import DEFAULT_WAREHOUSE, FormatOption, QuietOption, WarehouseOption, user_errors
from rnnsweep.service.render import OutputFormat, stderr_console, write_table
from rnnsweep.service.spec import Grid, load_grid
from rnnsweep.service.storage import absolute_storage, grid_storage

RESULT_ROWS_SHOWN = 20  # in the table after a sweep; csv/json get every row

app = typer.Typer()

StorageOption = Annotated[
    Optional[str],
    typer.Option(help="Where metric logs go: a path or a pyarrow URI (default: beside the warehouse)."),
]

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
    storage: StorageOption = None,
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
    with user_errors():
        spec = load_grid(grid, allow_large=yes)
        if dry_run:
            _show_grid(spec, fmt)
            return
        storage_uri = grid_storage(spec, warehouse, storage)
        if detach:
            submit_to_cluster(spec, warehouse, storage_uri, address, max_in_flight, pack=not no_pack)
        else:
            _run_and_report(spec, warehouse, storage_uri, address, num_cpus, max_in_flight, not no_pack, fmt, quiet)


def _show_grid(spec: Grid, fmt: OutputFormat) -> None:
    """The dry run: the expanded grid on stdout, its size and axes on stderr."""
    write_table(reports.grid_table(spec), fmt)
    axes = ", ".join(f"{k} ({len(v)})" for k, v in spec.axes.items()) or "none"
    stderr_console().print(f"{len(spec.trials)} trials, axes: {axes}. Dry run: nothing submitted.", highlight=False)


def _run_and_report(
    spec: Grid,
    warehouse: Path,
    storage_uri: str,
    address: str | None,
    num_cpus: int | None,
    max_in_flight: int | None,
    pack: bool,
    fmt: OutputFormat,
    quiet: bool,
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
    storage: Annotated[
        Optional[str],
        typer.Option(help="Move the sweep's metric logs here from now on (a path or a pyarrow URI); checked first."),
    ] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    fmt: FormatOption = OutputFormat.table,
    quiet: QuietOption = False,
) -> None:
    """Train only what a sweep is missing (pending, failed, cancelled or interrupted runs), from its stored grid."""
    from rnnsweep.service.submit import correct_storage, stored_grid

    with user_errors():
        spec, storage_uri = stored_grid(warehouse, sweep)
        if storage:
            storage_uri = correct_storage(warehouse, sweep, absolute_storage(storage))
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


@app.command(
    epilog="Example: rnnsweep fix quickstart   (writes quickstart-fix.toml; add --submit to train it and compare)"
)
def fix(
    sweep: Annotated[str, typer.Argument(help="The sweep whose diagnosed runs to follow up.", show_default=False)],
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Where the follow-up grid goes (default: SWEEP-fix.toml beside the grid)."),
    ] = None,
    submit: Annotated[
        bool, typer.Option("--submit", help="Train the follow-up grid now and print before -> after per run.")
    ] = False,
    address: AddressOption = None,
    num_cpus: NumCpusOption = None,
    max_in_flight: MaxInFlightOption = None,
    no_pack: NoPackOption = False,
    storage: StorageOption = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    fmt: FormatOption = OutputFormat.table,
    quiet: QuietOption = False,
) -> None:
    """Turn each fix of the runs not labelled healthy into a follow-up trial: a grid of \\[\\[trial]]
    tables, each recording the run it fixes. Advice that is no config change is listed, with why."""
    from rnnsweep.service.fix import before_after, fix_summary, plan_fix, write_fix_grid

    with user_errors():
        plan = plan_fix(warehouse, sweep, output)
        console = stderr_console()
        if not plan.follow_ups:
            for item in plan.listed:
                console.print(f"{item.label} run {item.run_id}: {item.advice}: {item.why}", highlight=False)
            console.print(f"sweep {sweep}: no fix is a config change; no grid written", highlight=False)
            return
        spec = write_fix_grid(plan)
        runs = len({f.fixes for f in plan.follow_ups})
        console.print(
            f"wrote {plan.path}: follow-up trials {len(plan.follow_ups)}, for runs {runs}"
            + (f"; advice not tried, listed at its end: {len(plan.listed)}" if plan.listed else ""),
            highlight=False,
        )
        if not submit:
            typer.echo(plan.text, nl=False)
            return
        from rnnsweep.service.submit import run_sweep

        report = run_sweep(
            spec,
            warehouse,
            grid_storage(spec, warehouse, storage),
            address,
            num_cpus,
            max_in_flight,
            show_progress=not quiet,
            pack=not no_pack,
        )
        table = before_after(warehouse, plan)
        write_table(table, fmt)
        console.print(reports.summary_line(report), highlight=False)
        console.print(fix_summary(table), highlight=False)
