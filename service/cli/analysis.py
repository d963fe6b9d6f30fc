"""Analysis commands: the ones that read what the warehouse holds, never training anything
(status, query, diagnose, thresholds, report), and `import`, which brings runs logged elsewhere
in to be read the same way.

They are grouped because each answers "what happened to my runs?" from the warehouse alone:
no Ray, no torch, and every table they print can go out as csv, json or parquet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import pyarrow as pa
import typer

from rnnsweep.service import reports
from rnnsweep.service.cli.options import DEFAULT_WAREHOUSE, FormatOption, WarehouseOption, user_errors
from rnnsweep.service.importers import SourceFormat
from rnnsweep.service.render import OutputFormat, stderr_console, write_table

app = typer.Typer()

ThresholdOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a threshold, NAME=VALUE (repeatable); `rnnsweep thresholds` lists them."),
]


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
        Optional[Path], typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds before the query is stopped, writing its result included.", min=0.1)
    ] = 60.0,
) -> None:
    """Run read-only SQL on the warehouse (tables sweeps, runs, metrics; views run_params, run_results, ...).

    A table shows the first 1,000 rows; csv, json and parquet stream every row."""
    from rnnsweep.service.query import TABLE_ROWS, stream_query

    with user_errors():
        if sql == "-":
            sql = typer.get_text_stream("stdin").read()
        printed = stream_query(warehouse, sql, fmt, output, timeout=timeout)
        if printed.more:
            stderr_console().print(
                f"showing the first {TABLE_ROWS:,} rows; for all of them: -f csv -o FILE.csv (or json, parquet)",
                highlight=False,
            )


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
        _show_diagnosis(table, diagnosis.label_counts(table), fmt)


def _show_diagnosis(table: pa.Table, counts: pa.Table, fmt: OutputFormat) -> None:
    """A table shows the columns people read, counts below; csv, json, parquet get every column, counts on stderr."""
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
    source: Annotated[
        Path,
        typer.Argument(
            help="The logs: a long table (run_id, step, epoch, metric, value), a wide CSV/Parquet (Keras or Lightning "
            "CSVLogger), a folder of those, a TensorBoard log dir or an MLflow mlruns/ folder.",
            show_default=False,
        ),
    ],
    sweep: Annotated[str, typer.Option(help="Name of the sweep these runs go into.", show_default=False)],
    params: Annotated[
        Optional[Path],
        typer.Option(
            help="Hyper-parameters: run_id plus any columns (lr, weight_decay, task, n_classes, ...); "
            "they override what the source holds. target_std, the regression targets' standard deviation, "
            "lets a log of loss only be judged against predicting their mean."
        ),
    ] = None,
    source_format: Annotated[
        Optional[SourceFormat],
        typer.Option("--format", help="How to read SOURCE (default: told by the path and the file's columns)."),
    ] = None,
    map_: Annotated[
        Optional[list[str]],
        typer.Option(
            "--map",
            help="Read a metric NAME as a canonical one, NAME=CANONICAL (repeatable), e.g. --map val_ce=val_loss.",
        ),
    ] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Load runs logged elsewhere so they can be diagnosed and queried; importing twice changes nothing."""
    from rnnsweep.service.importer import import_runs

    with user_errors():
        report = import_runs(warehouse, source, params, sweep, source_format, map_ or [])
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
    from rnnsweep.service.query import check_output
    from rnnsweep.service.report_html import write_report

    with user_errors():
        check_output(output, warehouse)
        size = write_report(warehouse, sweep, output, parse_assignments(set_ or []))
        stderr_console().print(f"wrote {output} ({size / 1024:.0f} KiB); it works offline", highlight=False)
