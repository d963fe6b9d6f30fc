"""Metric log: how a trial's metrics leave the worker, and the layout the warehouse reads.

A trial writes its metrics in chunks of Arrow record batches (the IPC file format), one
file per (run, attempt, chunk):

    <storage>/<sweep>/<run_id>/attempt-000/started.json
    <storage>/<sweep>/<run_id>/attempt-000/chunk-00000.arrow
    ...
    <storage>/<sweep>/<run_id>/attempt-000/outcome.json   (how the attempt ended)
    <storage>/<sweep>/<run_id>/checkpoint.pt     (training state at the last chunk)
    <storage>/<sweep>/manifest.json              (grid text and every trial config)

A chunk appears under its final name only when it is complete (write to a temporary name,
fsync, rename; on object stores a PUT is atomic), so a worker killed mid-write leaves no
half chunk behind, and a crash loses at most the chunk being written. Ray may run a task
more than once; each run claims a fresh attempt number, so two attempts never write the
same file, and the warehouse keeps one row per (run, step, metric).

This module imports pyarrow only: the driver uses the same layout to find chunks.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs

CHUNK_STEPS = 250  # write a chunk (and a checkpoint) at least this many steps apart: a crash loses at most one
CHUNK_SECONDS = 10.0  # ... or this often, so a running sweep can be watched
SCHEMA_VERSION = 1
METRIC_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("attempt", pa.int32(), nullable=False),
        pa.field("chunk", pa.int32(), nullable=False),
        pa.field("step", pa.int64(), nullable=False),  # optimizer steps taken so far
        pa.field("epoch", pa.int32(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=True),  # NaN and Inf are values
    ],
    metadata={"rnnsweep.metric_schema": str(SCHEMA_VERSION)},
)

_ATTEMPT_DIR = re.compile(r"^attempt-(\d{3,})$")
_CHUNK_FILE = re.compile(r"^chunk-(\d{5,})\.arrow$")


def resolve_storage(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and base path for a local path or a URI (s3://, gs://, file://)."""
    if "://" not in uri:
        uri = os.path.abspath(uri)
    return pafs.FileSystem.from_uri(uri)


def attempt_dir(base: str, sweep: str, run_id: str, attempt: int) -> str:
    return f"{base}/{sweep}/{run_id}/attempt-{attempt:03d}"


def checkpoint_path(base: str, sweep: str, run_id: str) -> str:
    """One per run, shared by its attempts (see rnnsweep.jobs.checkpoint)."""
    return f"{base}/{sweep}/{run_id}/checkpoint.pt"


@dataclass(frozen=True)
class ChunkFile:
    run_id: str
    attempt: int
    chunk: int
    path: str


def list_chunks(fs: pafs.FileSystem, base: str, sweep: str, run_id: str) -> list[ChunkFile]:
    """Every complete chunk of a run, all attempts, in (attempt, chunk) order."""
    run_dir = f"{base}/{sweep}/{run_id}"
    selector = pafs.FileSelector(run_dir, recursive=True, allow_not_found=True)
    chunks = []
    for info in fs.get_file_info(selector):
        if info.type != pafs.FileType.File:
            continue
        parent, _, name = info.path.rpartition("/")
        attempt_match = _ATTEMPT_DIR.match(parent.rpartition("/")[2])
        chunk_match = _CHUNK_FILE.match(name)
        if attempt_match and chunk_match:  # *.tmp and markers are not chunks
            chunks.append(ChunkFile(run_id, int(attempt_match[1]), int(chunk_match[1]), info.path))
    return sorted(chunks, key=lambda c: (c.attempt, c.chunk))


def read_chunk(fs: pafs.FileSystem, path: str) -> pa.Table:
    with fs.open_input_file(path) as f:
        return pa.ipc.open_file(f).read_all()


def chunk_schema_version(table: pa.Table) -> int | None:
    """The metric schema version a chunk says it was written with; None if it does not say."""
    raw = (table.schema.metadata or {}).get(b"rnnsweep.metric_schema")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def write_atomically(fs: pafs.FileSystem, path: str, payload: bytes) -> None:
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    else:  # object stores publish an object only once its upload completes
        with fs.open_output_stream(path) as f:
            f.write(payload)


def list_attempts(fs: pafs.FileSystem, base: str, sweep: str, run_id: str) -> list[int]:
    """Attempt numbers a run has claimed, in order (an attempt may have written nothing else)."""
    selector = pafs.FileSelector(f"{base}/{sweep}/{run_id}", recursive=False, allow_not_found=True)
    return sorted(int(m[1]) for info in fs.get_file_info(selector) if (m := _ATTEMPT_DIR.match(info.base_name)))


def claim_attempt(fs: pafs.FileSystem, base: str, sweep: str, run_id: str, node: str) -> int:
    """Take the next attempt number for a run and leave a marker saying who took it."""
    attempt = max(list_attempts(fs, base, sweep, run_id), default=-1) + 1
    directory = attempt_dir(base, sweep, run_id, attempt)
    fs.create_dir(directory, recursive=True)
    marker = {"attempt": attempt, "node": node, "started_at": time.time(), "pid": os.getpid()}
    write_atomically(fs, f"{directory}/started.json", json.dumps(marker).encode())
    return attempt


def manifest_path(base: str, sweep: str) -> str:
    """The sweep's own description in storage: grid text and every resolved trial config."""
    return f"{base}/{sweep}/manifest.json"


def write_manifest(fs: pafs.FileSystem, base: str, sweep: str, manifest: dict) -> None:
    fs.create_dir(f"{base}/{sweep}", recursive=True)
    write_atomically(fs, manifest_path(base, sweep), json.dumps(manifest).encode())


def read_manifest(fs: pafs.FileSystem, base: str, sweep: str) -> dict | None:
    path = manifest_path(base, sweep)
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_file(path) as f:
        return json.loads(f.read())


def chunk_due(steps_since: int, flushed_at: float) -> bool:
    """Whether the next chunk is due, `steps_since` steps after the last one written at `flushed_at` (monotonic)."""
    return steps_since >= CHUNK_STEPS or time.monotonic() - flushed_at >= CHUNK_SECONDS


@dataclass
class MetricLog:
    """Buffers one attempt's metric rows and writes them out as numbered chunks."""

    fs: pafs.FileSystem
    directory: str
    run_id: str
    attempt: int
    chunks_written: int = 0
    _rows: dict[str, list] = field(default_factory=lambda: {"step": [], "epoch": [], "metric": [], "value": []})

    @property
    def pending_rows(self) -> int:
        return len(self._rows["step"])

    def add(self, step: int, epoch: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self._rows["step"].append(step)
            self._rows["epoch"].append(epoch)
            self._rows["metric"].append(name)
            self._rows["value"].append(float(value))

    def flush(self) -> None:
        """Write buffered rows as the next chunk; nothing to write, nothing written."""
        n = self.pending_rows
        if n == 0:
            return
        table = pa.table(
            {
                "run_id": pa.array([self.run_id] * n, pa.string()),
                "attempt": pa.array([self.attempt] * n, pa.int32()),
                "chunk": pa.array([self.chunks_written] * n, pa.int32()),
                "step": pa.array(self._rows["step"], pa.int64()),
                "epoch": pa.array(self._rows["epoch"], pa.int32()),
                "metric": pa.array(self._rows["metric"], pa.string()),
                "value": pa.array(self._rows["value"], pa.float64()),
            },
            schema=METRIC_SCHEMA,
        )
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, METRIC_SCHEMA) as writer:
            writer.write_table(table)
        path = f"{self.directory}/chunk-{self.chunks_written:05d}.arrow"
        write_atomically(self.fs, path, sink.getvalue().to_pybytes())
        self.chunks_written += 1
        for column in self._rows.values():
            column.clear()
