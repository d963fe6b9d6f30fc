"""An MLflow file store (`mlruns/`): every run of every active experiment, metrics by step, params.

Read with mlflow's own client, `MlflowClient(tracking_uri="file:...")`. MLflow 3 keeps the file
store in maintenance mode and opens one only when MLFLOW_ALLOW_FILE_STORE is set; reading a
store the user points at is what that opt-out is for, so it is set while reading, then put back.

A run is named `<experiment>/<run name>`, with the first 8 characters of MLflow's run id added
where one experiment holds two runs of the same name. Params are text in MLflow; numbers are
read back as numbers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rnnsweep.service.errors import UserError
from rnnsweep.service.importers.source import Source, long_table


def is_store(path: Path) -> bool:
    """An mlruns/ folder: experiments are sub-folders with a meta.yaml."""
    return path.is_dir() and any((child / "meta.yaml").is_file() for child in path.iterdir() if child.is_dir())


def read(path: Path) -> Source:
    try:
        from mlflow.entities import ViewType
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UserError(f"{path}: reading an MLflow store needs mlflow: pip install mlflow-skinny") from None
    rows: dict[str, list] = {"run_id": [], "step": [], "metric": [], "value": []}
    params = {}
    with _file_store_allowed():
        client = MlflowClient(tracking_uri=path.resolve().as_uri())
        experiments = _every_page(lambda token: client.search_experiments(ViewType.ACTIVE_ONLY, page_token=token))
        experiment_names = {e.experiment_id: e.name for e in experiments}
        runs = _every_page(
            lambda token: client.search_runs(
                list(experiment_names), run_view_type=ViewType.ACTIVE_ONLY, page_token=token
            )
        )
        for run, name in zip(runs, _run_names(runs, experiment_names), strict=True):
            params[name] = {key: _typed(text) for key, text in run.data.params.items() if text != "None"}
            for key in sorted(run.data.metrics):
                history = client.get_metric_history(run.info.run_id, key)
                for point in sorted(history, key=lambda m: (m.step, m.timestamp)):
                    rows["run_id"].append(name)
                    rows["step"].append(point.step)
                    rows["metric"].append(key)
                    rows["value"].append(point.value)
    epochs = [None] * len(rows["step"])
    return Source(long_table(rows["run_id"], rows["step"], epochs, rows["metric"], rows["value"]), params)


@contextmanager
def _file_store_allowed() -> Iterator[None]:
    before = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if before is None:
            del os.environ["MLFLOW_ALLOW_FILE_STORE"]
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = before


def _every_page(search) -> list:
    found, token = [], None
    while True:
        page = search(token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def _run_names(runs, experiments: dict[str, str]) -> list[str]:
    plain = [f"{experiments[r.info.experiment_id]}/{r.info.run_name or r.info.run_id}" for r in runs]
    return [
        name if plain.count(name) == 1 else f"{name}-{run.info.run_id[:8]}"
        for name, run in zip(plain, runs, strict=True)
    ]


def _typed(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)
