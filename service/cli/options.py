"""What every command module shares: the option types declared once, and `user_errors`, which
turns an expected mistake (a UserError) into `error: ...` lines on stderr and a non-zero exit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from rnnsweep.service.errors import UserError
from rnnsweep.service.render import OutputFormat, stderr_console

DEFAULT_WAREHOUSE = Path("rnnsweep-data/warehouse.duckdb")

WarehouseOption = Annotated[
    Path,
    typer.Option("--warehouse", "-w", envvar="RNNSWEEP_WAREHOUSE", help="DuckDB warehouse file.", show_default=True),
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
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
