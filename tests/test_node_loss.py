"""A node lost mid-sweep: a real multi-node Ray on one machine (a head with no CPUs and two
1-CPU worker nodes, ray.cluster_utils.Cluster). One worker node is removed, not gracefully,
while trials run on it; the sweep finishes on the other node, every run finished, one row
per (run, step, metric), no gaps."""

from __future__ import annotations

import threading
import time

import pytest

from rnnsweep.service.query import run_query
from rnnsweep.service.spec import load_grid
from rnnsweep.service.submit import run_sweep
from tests.test_faults import GRID, assert_invariants, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


def test_the_sweep_finishes_on_the_nodes_that_are_left(cluster, tmp_path):
    ray_cluster, (doomed, survivor) = cluster
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(GRID)
    spec = load_grid(grid_file)
    warehouse = tmp_path / "wh.duckdb"

    outcome = {}

    def sweep():
        outcome["report"] = run_sweep(spec, warehouse, str(tmp_path / "logs"), show_progress=False)

    driver = threading.Thread(target=sweep)
    driver.start()
    doomed_prefix = doomed.node_id[:8]
    # wait until the doomed node has started a trial (its id is in the attempt marker) ...
    wait_for(lambda: any(doomed_prefix in p.read_text() for p in (tmp_path / "logs").rglob("started.json")), every=0.1)
    time.sleep(1.0)  # ... and is in the middle of it
    ray_cluster.remove_node(doomed, allow_graceful=False)
    driver.join(timeout=240)
    assert not driver.is_alive()

    assert outcome["report"].counts == {"finished": 6}
    assert_invariants(warehouse, finished=6)
    nodes = {r["node"].rpartition(":")[2] for r in run_query(warehouse, "select node from runs").to_pylist()}
    assert survivor.node_id[:8] in nodes  # the rest ran on the node that stayed
    retried = run_query(warehouse, "select count(*) as n from runs where attempts > 1").to_pylist()[0]["n"]
    assert retried >= 1  # the trial that was on the lost node ran again
