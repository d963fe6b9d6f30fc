"""Where a sweep's metric logs go: the storage URI `submit` trains into and `sync` reads from.

A local path is made absolute here, because workers (and a detached sweep's driver, a Ray Job)
run in other directories; a URI (s3://, gs://, ...) passes through as given.

`check_storage` proves a storage usable before anything is registered or trained: it resolves
the URI, then writes and deletes a small probe object (or, for `sync`, lists the base), all
within STORAGE_CHECK_SECONDS. Object-store clients retry for minutes by default (GCS with no
credentials never gives up), so every network call of the check runs under that deadline and
any failure is one line naming the storage.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rnnsweep.service import reports
from rnnsweep.service.errors import UserError
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


STORAGE_CHECK_SECONDS = 20.0  # a reachable bucket answers in well under a second
PROBE_NAME = ".rnnsweep-probe-"  # + a random suffix: concurrent checks never collide


def check_storage(uri: str, write: bool = True) -> None:
    """Raise UserError (one line) unless the storage resolves and, with `write`, takes a probe
    object that can be deleted again; never takes much longer than STORAGE_CHECK_SECONDS."""
    deadline = STORAGE_CHECK_SECONDS
    outcome: list[BaseException | None] = []
    worker = threading.Thread(target=lambda: outcome.append(_try(uri, write, deadline)), daemon=True)
    worker.start()
    worker.join(deadline)
    if not outcome:  # the client is still waiting: it is left to finish (or not) in its daemon thread
        raise UserError(
            f"storage {uri}: no answer within {deadline:g} s; check the bucket name, network and credentials"
        )
    if outcome[0] is not None:
        raise UserError(f"storage {uri}: {_first_line(outcome[0])}")


def _try(uri: str, write: bool, deadline: float) -> BaseException | None:
    try:
        _probe(uri, write, deadline)
    except UserError as e:
        return e
    except Exception as e:  # pyarrow raises OSError, ArrowInvalid (a ValueError) and others
        return e
    return None


def _probe(uri: str, write: bool, deadline: float) -> None:
    import pyarrow.fs as pafs

    if "://" not in uri or uri.startswith("file://"):
        _probe_local(Path(urlsplit(uri).path if "://" in uri else uri), write)
        return
    fs, base = pafs.FileSystem.from_uri(_with_retry_limit(uri, deadline))
    if not write:
        fs.get_file_info(base)
        return
    probe = f"{base.rstrip('/')}/{PROBE_NAME}{uuid.uuid4().hex[:12]}"
    with fs.open_output_stream(probe) as f:
        f.write(b"rnnsweep storage check\n")
    fs.delete_file(probe)


def _probe_local(folder: Path, write: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise UserError("is a file, not a folder; give a folder (or a URI) for metric logs")
    if not write:
        if not folder.is_dir():
            raise UserError("no such folder")
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f"{PROBE_NAME}{uuid.uuid4().hex[:12]}"
        probe.write_bytes(b"rnnsweep storage check\n")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write there ({e.strerror or e})") from None


def _with_retry_limit(uri: str, deadline: float) -> str:
    """gs:// retries transient errors (a missing credential counts) for 15 minutes unless told
    otherwise; its URI takes the limit as a query parameter. Half the deadline leaves it time to
    give its own (more useful) error. Other schemes are left as given: s3:// gives up in seconds."""
    parts = urlsplit(uri)
    if parts.scheme not in ("gs", "gcs"):
        return uri
    query = dict(parse_qsl(parts.query))
    query.setdefault("retry_limit_seconds", str(max(1, int(deadline / 2))))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    line = text.splitlines()[0]
    if "Unrecognized filesystem type" in line:
        return "not a storage pyarrow knows; give a local folder or an s3://, gs:// or hdfs:// URI"
    if "libjvm" in line:
        return "hdfs:// needs Java (libjvm) and Hadoop's libhdfs on this machine; none was found"
    if len(line) > 300:  # cloud clients explain at length: keep whole sentences
        line = line[:300].rsplit(". ", 1)[0] + "."
    return line
