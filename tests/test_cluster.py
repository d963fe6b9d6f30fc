"""The same grid on a cluster: a real multi-node Ray on this machine (a head with no CPUs
and two 1-CPU worker nodes, with its job server), metric logs on a real S3-compatible
server (moto's, on loopback), and a sweep that runs detached as a Ray Job.

Nodes and the S3 server inherit this process's environment: PATH (so a Ray Job finds the
`rnnsweep` command, as an image would provide it) and S3 credentials are set first."""

from __future__ import annotations

import json
import os
import random
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rnnsweep.service.cli import app
from rnnsweep.service.query import run_query

pytestmark = [pytest.mark.ray, pytest.mark.slow]

GRID = """
[sweep]
name = "{name}"
task = "events"
epochs = 3
{storage}
[data]
n_train = 512
n_val = 128
seq_len = 24
positive_rate = 0.1
[model]
cell = "gru"
hidden = 16
[optimizer]
lr = [0.001, 0.002, 0.003, 0.004]
[training]
batch_size = 32
"""
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class LocalCluster:
    gcs: str  # for --address (a driver here)
    jobs: str  # the job server, for --detach
    workers: tuple[str, str]  # node ids
    s3: str  # endpoint host:port
    head_warehouse: Path  # RNNSWEEP_WAREHOUSE on every node, as deploy/Dockerfile sets it


def free_port() -> int:
    """A free port outside the kernel's ephemeral range (32768+) and Ray's worker ports (10002-19999):
    a port from bind(0) can be handed to one of the head's own processes before the dashboard
    binds it (seen on CI: "address already in use", and the whole cluster fails to start)."""
    for port in random.sample(range(20000, 30000), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-29999")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("ray.job_submission")
    moto_server = pytest.importorskip("moto.server")
    from ray.cluster_utils import Cluster

    saved = dict(os.environ)
    os.environ.update(S3_ENV)
    head_warehouse = tmp_path_factory.mktemp("head") / "warehouse.duckdb"
    os.environ["RNNSWEEP_WAREHOUSE"] = str(head_warehouse)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    s3 = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    s3.start()
    ray_cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": True, "dashboard_port": free_port()}
    )
    workers = tuple(ray_cluster.add_node(num_cpus=1).node_id for _ in range(2))
    ray_cluster.wait_for_nodes()
    host, port = s3.get_host_and_port()
    try:
        yield LocalCluster(
            ray_cluster.address, f"http://{ray_cluster.head_node.webui_url}", workers, f"{host}:{port}", head_warehouse
        )
    finally:
        ray_cluster.shutdown()
        s3.stop()
        os.environ.clear()
        os.environ.update(saved)


def write_grid(folder: Path, name: str, storage: str = "") -> Path:
    path = folder / "grid.toml"
    path.write_text(GRID.format(name=name, storage=f'storage = "{storage}"' if storage else ""))
    return path


def invoke(*args) -> object:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result


def runs(warehouse: Path) -> list[dict]:
    return run_query(warehouse, "select run_id, status, node, steps from runs order by run_id").to_pylist()


def test_a_sweep_through_address_runs_on_both_nodes(cluster, tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    invoke("submit", write_grid(tmp_path, "two-nodes"), "--address", cluster.gcs, "-w", warehouse, "-q", "-f", "csv")
    done = runs(warehouse)
    assert [r["status"] for r in done] == ["finished"] * 4
    nodes = {r["node"].rpartition(":")[2] for r in done}  # node = host:ray-node-id-prefix
    assert nodes == {node[:8] for node in cluster.workers}  # trials ran on both worker nodes
    assert run_query(
        warehouse, "select count(*) - count(distinct (run_id, step, metric)) as d from metrics"
    ).to_pylist() == [{"d": 0}]


def test_a_detached_sweep_runs_as_a_ray_job_and_attach_follows_it(cluster, tmp_path):
    warehouse, storage = tmp_path / "wh.duckdb", tmp_path / "shared-logs"
    grid = write_grid(tmp_path, "detached")
    first = invoke("submit", grid, "--detach", "--address", cluster.jobs, "--storage", storage, "-w", warehouse)
    assert "submitted as Ray job rnnsweep-detached-" in first.stderr
    job_id = first.stderr.split("Ray job ")[1].split(";")[0]
    again = invoke("submit", grid, "--detach", "--address", cluster.jobs, "--storage", storage, "-w", warehouse)
    assert f"already running as Ray job {job_id}" in again.stderr  # deterministic id: no second job

    followed = invoke("attach", "detached", "-w", warehouse, "-q", "-f", "json")
    assert "Ray job ended SUCCEEDED" in followed.stderr
    assert {r["status"] for r in json.loads(followed.stdout)} == {"finished"}
    assert len(runs(warehouse)) == 4 and all(r["steps"] == 48 for r in runs(warehouse))
    status = invoke("status", "detached", "-w", warehouse)
    assert f"Ray job {job_id} on {cluster.jobs}: SUCCEEDED" in status.stderr

    # The job ended, so submitting again starts a new job; it syncs first and trains nothing twice.
    rerun = invoke("submit", grid, "--detach", "--address", cluster.jobs, "--storage", storage, "-w", warehouse)
    assert f"submitted as Ray job {job_id}-2;" in rerun.stderr
    assert "Ray job ended SUCCEEDED" in invoke("attach", "detached", "-w", warehouse, "-q").stderr
    attempts = sorted(p.name for p in (storage / "detached").glob("*/*") if p.is_dir())
    assert len(attempts) == 4 and len(runs(warehouse)) == 4  # one attempt per run, from the first job
    assert not cluster.head_warehouse.exists()  # jobs work in scratch, never in the head's own warehouse


def test_logs_on_s3_sync_into_a_fresh_warehouse_from_storage_alone(cluster, tmp_path):
    import pyarrow.fs as pafs

    admin = pafs.S3FileSystem(
        endpoint_override=cluster.s3, scheme="http", region="us-east-1", allow_bucket_creation=True
    )
    admin.create_dir("rnnsweep-test")
    uri = f"s3://rnnsweep-test/logs?endpoint_override={cluster.s3}&scheme=http&region=us-east-1"
    trained = tmp_path / "trained.duckdb"
    invoke("submit", write_grid(tmp_path, "on-s3", storage=uri), "--address", cluster.gcs, "-w", trained, "-q")
    assert {r["status"] for r in runs(trained)} == {"finished"}
    objects = admin.get_file_info(pafs.FileSelector("rnnsweep-test/logs/on-s3", recursive=True))
    assert sum(1 for o in objects if o.path.endswith(".arrow")) >= 4 and not (tmp_path / "logs").exists()

    fresh = tmp_path / "laptop.duckdb"  # knows nothing but the storage URI
    synced = invoke("sync", "on-s3", "--storage", uri, "-w", fresh)
    assert (
        "synced on-s3 from s3://rnnsweep-test/logs" in synced.stderr and "4 runs, 4 ended, 0 running" in synced.stderr
    )
    count = "select count(*) as n, sum(value) filter (where metric = 'train_loss') as s from metrics"
    assert run_query(fresh, count).to_pylist() == run_query(trained, count).to_pylist()
    assert [(r["run_id"], r["status"]) for r in runs(fresh)] == [(r["run_id"], r["status"]) for r in runs(trained)]
    invoke("sync", "on-s3", "--storage", uri, "-w", fresh)  # again: nothing new, nothing doubled
    assert run_query(fresh, count).to_pylist() == run_query(trained, count).to_pylist()
