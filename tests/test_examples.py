"""The example grids reproduce their forum threads: each runs on a real local Ray and the
diagnosis must show the seed's failure next to its fix (examples/seed00*_*.toml, examples/*/grid.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnsweep.service.diagnose import diagnose
from rnnsweep.service.query import run_query
from rnnsweep.service.spec import load_grid
from rnnsweep.service.submit import run_sweep

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.usefixtures("local_ray")]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def labels_by(tmp_path, grid_file: str, columns: str) -> dict[tuple, str]:
    grid = load_grid(EXAMPLES / grid_file)
    warehouse = tmp_path / "wh.duckdb"
    report = run_sweep(grid, warehouse, str(tmp_path / "logs"), show_progress=False)
    assert report.counts == {"finished": len(grid.trials)}
    labels = {r["run_id"]: r["label"] for r in diagnose(warehouse, grid.name).to_pylist()}
    params = run_query(warehouse, f"select run_id, {columns} from run_params").to_pylist()
    return {tuple(p[c.strip()] for c in columns.split(",")): labels[p["run_id"]] for p in params}


def test_seed000_strong_l2_collapses_the_detector_weaker_l2_learns(tmp_path):
    found = labels_by(tmp_path, "seed000_l2_event_detector.toml", "weight_decay, weight_decay_on")
    assert found == {
        (0.1, "all"): "l2_collapsed",
        (0.1, "non_recurrent"): "l2_collapsed",  # the output layer decays instead
        (0.01, "all"): "healthy",
        (0.01, "non_recurrent"): "healthy",
        (0.001, "all"): "healthy",
        (0.001, "non_recurrent"): "healthy",
    }


def test_seed001_a_too_high_lr_loses_the_signal_clipping_or_a_lower_lr_keeps_it(tmp_path):
    found = labels_by(tmp_path, "seed001_word_vectors.toml", "lr, clip_grad_norm")
    # lr 0.1: the loss jumps in the first steps and the output goes flat: a divergence whose wreck
    # is the thread's constant output (the evidence says both)
    assert found == {
        (0.1, 0.0): "diverged",
        (0.1, 1.0): "healthy",
        (0.003, 0.0): "healthy",
        (0.003, 1.0): "healthy",
    }


def test_seed002_high_lr_with_beta1_half_rises_again_a_lower_lr_fixes_it(tmp_path):
    found = labels_by(tmp_path, "seed002_loss_rises.toml", "lr, beta1")
    # (0.1, 0.9) is left out: at lr 0.1 Adam is chaotic, and whether that run recovers
    # depends on float rounding (packed and unpacked runs part ways after ~30 steps).
    del found[(0.1, 0.9)]
    assert found == {(0.1, 0.5): "diverged", (0.01, 0.5): "healthy", (0.01, 0.9): "healthy"}


def test_seed001_with_its_authors_own_model_loses_the_signal_at_a_high_lr(tmp_path):
    """The thread's own stacked model (examples/seed001_user_model/models.py) as a factory."""
    found = labels_by(tmp_path, "seed001_user_model/grid.toml", "lr, clip_grad_norm")
    assert found == {
        (0.1, 0.0): "diverged",
        (0.1, 1.0): "diverged",  # with this model, clipping alone is not enough
        (0.003, 0.0): "healthy",
        (0.003, 1.0): "healthy",
    }


def test_a_hand_written_loop_runs_as_an_entrypoint_and_is_diagnosed(tmp_path):
    found = labels_by(tmp_path, "own_loop/grid.toml", "run_id")
    assert set(found.values()) == {"healthy"}
