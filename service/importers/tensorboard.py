"""TensorBoard event files: a log dir, one run per folder holding event files, scalars by tag.

Read with tensorboard's own reader (`plugin_event_accumulator.EventAccumulator`), keeping every
event rather than its default sample of 500 per tag, and purging what a restarted writer
overwrote, as TensorBoard itself shows it. A run is named by its folder's path below the log
dir. Two writers' layouts fold into one run:
- Keras's TensorBoard callback writes `train/` and `validation/` side by side: one run, named
  after their parent, with tags read as `train/epoch_loss`, `validation/epoch_loss`, ...
- torch's `SummaryWriter.add_hparams` writes into a new sub-folder: its hparams are the parent
  run's params, and its scalars (the metric_dict, logged once at step 0) are skipped.
"""

from __future__ import annotations

from pathlib import Path

from rnnsweep.service.errors import UserError
from rnnsweep.service.importers.source import Source, long_table

EVENT_FILES = "events.out.tfevents.*"
KERAS_FOLDERS = ("train", "validation")


def is_event_file(path: Path) -> bool:
    return path.is_file() and path.name.startswith("events.out.tfevents.")


def holds_event_files(folder: Path) -> bool:
    return next(folder.rglob(EVENT_FILES), None) is not None


def read(path: Path) -> Source:
    try:
        from tensorboard.backend.event_processing import plugin_event_accumulator as tb
    except ImportError:
        raise UserError(f"{path}: reading TensorBoard event files needs tensorboard: pip install tensorboard") from None
    if is_event_file(path):  # one file: one run, named after its folder
        root, folders = path.parent, [path]
    else:
        root, folders = path, sorted({p.parent for p in path.rglob(EVENT_FILES) if p.is_file()})
    rows: dict[str, list] = {"run_id": [], "step": [], "metric": [], "value": []}
    params: dict[str, dict] = {}
    for folder in folders:
        events = tb.EventAccumulator(str(folder), size_guidance=tb.STORE_EVERYTHING_SIZE_GUIDANCE)
        events.Reload()
        hparams, scalars = _hparams(events), _scalars(events)
        owner, prefix = (folder.parent, f"{folder.name}/") if _is_keras_half(folder, root) else (folder, "")
        if hparams and folder.parent in folders and _one_point_per_tag(scalars):  # add_hparams' own sub-folder
            params.setdefault(_run_name(folder.parent, root), {}).update(hparams)
            continue
        run = _run_name(owner, root)
        params.setdefault(run, {}).update(hparams)
        for tag, step, value in scalars:
            rows["run_id"].append(run)
            rows["step"].append(step)
            rows["metric"].append(prefix + tag)
            rows["value"].append(value)
    epochs = [None] * len(rows["step"])
    return Source(long_table(rows["run_id"], rows["step"], epochs, rows["metric"], rows["value"]), params)


def _is_keras_half(folder: Path, root: Path) -> bool:
    return folder != root and folder.name in KERAS_FOLDERS and folder.is_dir()


def _one_point_per_tag(scalars: list[tuple[str, int, float]]) -> bool:
    tags = [tag for tag, _, _ in scalars]
    return len(tags) == len(set(tags))


def _run_name(folder: Path, root: Path) -> str:
    return root.resolve().name if folder == root or folder.is_file() else folder.relative_to(root).as_posix()


def _scalars(events) -> list[tuple[str, int, float]]:
    from tensorboard.util import tensor_util

    if "scalars" not in events.ActivePlugins():
        return []
    return [
        (tag, event.step, float(tensor_util.make_ndarray(event.tensor_proto).item()))
        for tag in events.PluginTagToContent("scalars")
        for event in events.Tensors(tag)
    ]


def _hparams(events) -> dict:
    """The hparams of a session start (written by add_hparams, Lightning, Keras' hparams plugin)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    if "hparams" not in events.ActivePlugins():
        return {}
    found = {}
    for content in events.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.WhichOneof("data") == "session_start_info":
            for name, value in data.session_start_info.hparams.items():
                kind = value.WhichOneof("kind")
                if kind in ("number_value", "string_value", "bool_value"):
                    found[name] = getattr(value, kind)
    return found
