"""Detached sweeps: `rnnsweep submit --detach` hands the sweep to a Ray cluster as a Ray Job
(its driver runs on the cluster, so the sweep goes on when your laptop sleeps); `rnnsweep
attach` follows it, syncing its metric logs from storage into the local warehouse.

The job's submission id is deterministic (sweep name and a hash of grid and storage), so
submitting the same sweep twice finds the job already running instead of starting another.
Storage must be reachable from the cluster and from here (s3://, gs://, or a shared path).
"""

from __future__ import annotations

import hashlib
import shlex
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from rnnsweep.service.driver import driver_lock
from rnnsweep.service.errors import UserError
from rnnsweep.service.query import run_query
from rnnsweep.service.spec import Grid
from rnnsweep.service.warehouse import Warehouse

LATEST_JOB = (
    "select job_id, address, storage_uri from sweep_jobs where sweep = $sweep order by submitted_at desc limit 1"
)
ACTIVE = ("PENDING", "RUNNING")


@dataclass(frozen=True)
class DetachedJob:
    job_id: str
    address: str
    storage_uri: str


def _client(address: str):
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise UserError("--detach needs Ray's job client: pip install 'rnnsweep[cluster]'") from None
    try:
        return JobSubmissionClient(address)
    except (OSError, RuntimeError, ValueError) as e:  # requests' ConnectionError is an OSError
        raise UserError(f"cannot reach the Ray job server at {address}: {str(e).splitlines()[0]}") from None


def job_status(client, job_id: str) -> str | None:
    """The job's status name (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED), None if unknown to Ray."""
    try:
        return str(client.get_job_status(job_id).value)
    except RuntimeError as e:
        if "does not exist" in str(e):
            return None
        raise
    except OSError as e:  # the tunnel closed, the laptop slept: the job itself goes on
        raise UserError(
            f"lost the Ray job server ({str(e).splitlines()[0][:200]}); the sweep goes on: "
            "`rnnsweep attach` again once it is reachable"
        ) from None


def submission_id(grid: Grid, storage_uri: str) -> str:
    digest = hashlib.sha256(f"{grid.text}\n{storage_uri}".encode()).hexdigest()[:10]
    return f"rnnsweep-{grid.name}-{digest}"


def submit_detached(
    grid: Grid,
    warehouse: Path,
    storage_uri: str,
    address: str | None,
    max_in_flight: int | None = None,
    pack: bool = True,
) -> tuple[DetachedJob, bool]:
    """Submit the sweep as a Ray Job; returns the job and whether it was newly submitted.

    What a cluster could not run is refused first, before the job server is contacted or anything written.
    """
    from rnnsweep.service.submit import publish_manifest

    if not address:
        raise UserError(
            "--detach needs --address: the cluster's job server, e.g. http://127.0.0.1:8265 through `ray dashboard`"
        )
    if "://" not in storage_uri and not address.startswith(("http://127.0.0.1", "http://localhost")):
        raise UserError(
            f"--detach needs storage the cluster can write and you can read: pass --storage s3://... "
            f"(or [sweep] storage); {storage_uri} is a path on this machine"
        )
    _check_data_paths_travel(grid)
    if grid.trials[0].code:
        raise UserError(
            f"{grid.path}: sweep.code: a detached sweep cannot take your own code yet; submit it with "
            "--address and without --detach, which ships the code folder to the cluster's workers"
        )
    client = _client(address)
    base_id = submission_id(grid, storage_uri)
    job_id, n = base_id, 1
    while (status := job_status(client, job_id)) is not None:
        if status in ACTIVE:
            return DetachedJob(job_id, address, storage_uri), False
        n += 1  # a finished or failed job keeps its id: this submission takes the next
        job_id = f"{base_id}-{n}"
    with driver_lock(warehouse, grid.name), Warehouse.open(warehouse, build_views=True) as wh:
        wh.register_sweep(grid.name, str(grid.path.resolve()), grid.text, storage_uri, list(grid.axes), grid.trials)
        publish_manifest(grid, storage_uri)
        with tempfile.TemporaryDirectory() as folder:
            # Named after the sweep: a grid without [sweep] name takes its file's name.
            (Path(folder) / job_grid_file(grid)).write_text(grid.text)
            entrypoint = job_entrypoint(grid, job_id, storage_uri, max_in_flight, pack)
            try:
                _submit_job(
                    client,
                    entrypoint=entrypoint,
                    submission_id=job_id,
                    runtime_env={"working_dir": folder},
                    metadata={"rnnsweep_sweep": grid.name},
                )
            except (OSError, RuntimeError) as e:
                raise UserError(f"the Ray job server at {address} refused the job: {str(e).splitlines()[0]}") from None
        wh.record_job(job_id, grid.name, address, storage_uri)
    return DetachedJob(job_id, address, storage_uri), True


AGENT_WAIT_SECONDS = 30.0  # a job server just started may have no agent to run jobs yet


def _submit_job(client, **job) -> None:
    """Submit, waiting out the job server's own "no available agent ... try again later": on a
    cluster that has just started (or is busy) its agent registers a few seconds after the server."""
    deadline = time.monotonic() + AGENT_WAIT_SECONDS
    while True:
        try:
            client.submit_job(**job)
            return
        except RuntimeError as e:
            if "try again later" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def job_grid_file(grid: Grid) -> str:
    """What the grid is called in the job: the sweep's name, which is also its default name."""
    return f"{grid.name}.toml"


def _check_data_paths_travel(grid: Grid) -> None:
    """The job re-reads the grid on the head, away from this grid file: a relative data.path would not resolve there."""
    given = tomllib.loads(grid.text).get("data", {}).get("path", [])
    for path in [given] if isinstance(given, str) else given:
        if path and not Path(path).is_absolute():
            raise UserError(
                f"{grid.path}: data.path: {path!r} is relative to this grid file; a detached sweep needs an "
                "absolute path that exists on every worker (see deploy/README.md)"
            )


def job_entrypoint(
    grid: Grid, job_id: str, storage_uri: str, max_in_flight: int | None = None, pack: bool = True
) -> str:
    """The job's shell command.

    It works in a scratch folder of its own, copying the grid out of Ray's working_dir first:
    Ray may clean that directory up while the job runs (seen with Ray 2.60). Storage is the
    sweep's record, so the job syncs from it before it submits (a resubmitted sweep trains
    only what storage does not hold as ended) and removes its scratch warehouse when done.
    The warehouse is named, not taken from RNNSWEEP_WAREHOUSE: the image points that at the
    head's long-lived warehouse, which a RayCluster's own driver may hold."""
    scratch = f'"${{TMPDIR:-/tmp}}/rnnsweep-jobs/{job_id}"'
    storage = shlex.quote(storage_uri)
    return (
        f"mkdir -p {scratch} && cp {job_grid_file(grid)} {scratch}/ && cd {scratch} && "
        f"rnnsweep sync {grid.name} --storage {storage} -w warehouse.duckdb --format csv > /dev/null && "
        f"rnnsweep submit {job_grid_file(grid)} --storage {storage} -w warehouse.duckdb --quiet --format csv"
        + (f" --max-in-flight {max_in_flight}" if max_in_flight else "")
        + ("" if pack else " --no-pack")
        + "; "
        f"code=$?; cd / && rm -rf {scratch}; exit $code"
    )


def latest_job(warehouse: Path, sweep: str) -> DetachedJob | None:
    if not warehouse.exists():
        return None
    rows = run_query(warehouse, LATEST_JOB, {"sweep": sweep}).to_pylist()
    return DetachedJob(**rows[0]) if rows else None


def describe_job(job: DetachedJob) -> str:
    """One line on where the job stands, or why that is unknown; never raises."""
    try:
        status = job_status(_client(job.address), job.job_id)
    except (UserError, RuntimeError) as e:
        status = f"unreachable ({str(e).splitlines()[0]})"
    return f"Ray job {job.job_id} on {job.address}: {status or 'unknown to this cluster'}"


def detached_job(warehouse: Path, sweep: str) -> DetachedJob:
    """The sweep's latest Ray job, or one line saying it has none."""
    job = latest_job(warehouse, sweep)
    if job is None:
        raise UserError(
            f"sweep {sweep!r} was not submitted with --detach from this warehouse; `rnnsweep status` lists sweeps"
        )
    return job


def attach(warehouse: Path, sweep: str, job: DetachedJob, poll: float = 2.0, progress=None) -> tuple[str, str]:
    """Follow a detached sweep until its job ends, syncing as it goes; returns (status, last log lines)."""
    from rnnsweep.service.sync import sync_sweep

    client = _client(job.address)
    while True:
        status = job_status(client, job.job_id)
        if status is None:
            raise UserError(
                f"Ray job {job.job_id} is unknown to {job.address} (a new cluster?); `rnnsweep resume {sweep}` runs what is missing"
            )
        report = sync_sweep(warehouse, sweep, job.storage_uri)
        if progress is not None:
            progress(report)
        if status not in ACTIVE:
            tail = "" if status == "SUCCEEDED" else "\n".join(client.get_job_logs(job.job_id).strip().splitlines()[-5:])
            return status, tail
        time.sleep(poll)
