"""The `rnnsweep` command: a thin shell over the library.

Each command parses its options, calls one library function and renders the result. Data goes to
stdout (table, csv, json, parquet); progress and errors go to stderr. A user error prints
`error: ...` lines and exits non-zero; a traceback means a bug.
Heavy imports (ray, torch) happen inside the functions that need them, so `--help` is instant.

The commands live in three modules, merged here into one flat command list (`rnnsweep submit`,
not `rnnsweep sweep submit`): sweep.py trains (submit, resume, cancel), cluster.py brings sweeps
run elsewhere into this warehouse (sync, attach), analysis.py reads the warehouse (status, query,
diagnose, thresholds, import, report). options.py holds what they share.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated, Optional

import typer

from rnnsweep.service.cli import analysis, cluster, sweep

app = typer.Typer(
    help="Run grids of RNN training configurations on Ray, land every metric in DuckDB, query them with SQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for commands in (sweep.app, cluster.app, analysis.app):  # in this order in `rnnsweep --help`
    app.add_typer(commands)  # no name: its commands join the top level


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


def main() -> None:
    app()
