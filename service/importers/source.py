"""What every reader returns: runs as one long Arrow table, plus the params the source holds."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

# The metric names are still the source's; `epoch` may be null where the source has none
# (importer.py fills it) and `value` may be null where a writer stored NaN as null.
LONG_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("step", pa.int64()),
        ("epoch", pa.int64()),
        ("metric", pa.string()),
        ("value", pa.float64()),
    ]
)


@dataclass(frozen=True)
class Source:
    metrics: pa.Table  # LONG_SCHEMA
    params: dict[str, dict] = field(default_factory=dict)  # run_id -> {name: value}


def long_table(run_ids: list[str], steps: list[int], epochs: list, metrics: list[str], values: list) -> pa.Table:
    return pa.table([run_ids, steps, epochs, metrics, values], schema=LONG_SCHEMA)
