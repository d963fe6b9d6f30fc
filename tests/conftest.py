"""Shared fixtures: tiny trial configs, grid files written to tmp_path, a local Ray."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rnnsweep.jobs.config import DataConfig, ModelConfig, TrialConfig

TINY_DATA = {"n_train": 64, "n_val": 32, "seq_len": 12, "n_features": 3, "positive_rate": 0.1}


def tiny_trial(task: str = "events", **sections) -> TrialConfig:
    """A trial small enough to train in well under a second."""
    data = {**TINY_DATA, **sections.pop("data", {})}
    model = {"hidden": 8, **sections.pop("model", {})}
    top = {"sweep": "t", "task": task, "seed": 0, "epochs": 1, **sections.pop("top", {})}
    return TrialConfig(**top, data=DataConfig(**data), model=ModelConfig(**model), **sections)


def run_trial(config: TrialConfig, storage: str):
    """One trial alone through the Ray task body, in this process; its AttemptOutcome."""
    from rnnsweep.jobs.entry import run_unit

    [outcome] = run_unit([config], storage)
    return outcome


@pytest.fixture
def write_grid(tmp_path: Path):
    """write_grid(text) -> path of a grid.toml holding that text."""

    def write(text: str, name: str = "grid.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture(scope="module")
def local_ray():
    """A real local Ray with 2 CPUs, started once per test module and always shut down."""
    ray = pytest.importorskip("ray")
    # address="local": always a fresh Ray of its own, never a cluster someone started on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()
