"""Metric names as other tools write them, read as rnnsweep's canonical ones.

One table, matched case-insensitively after any `--map name=canonical` the user gives; a name
in neither is kept as it is (it lands in `metrics` and can be queried, the rules just don't
read it). Add a row here when a tool's name is missing; README "Diagnose logs you already
have" shows the table.
"""

from __future__ import annotations

import difflib

import pyarrow as pa
import pyarrow.compute as pc

from rnnsweep.service.errors import UserError

CANONICAL_METRICS = ("train_loss", "val_loss", "train_acc", "val_acc", "grad_norm", "weight_norm", "pred_std", "lr")

# canonical name -> the names it is written as elsewhere (lower case; the canonical name itself matches too)
ALIASES = {
    "train_loss": (
        "loss",  # Keras CSVLogger / History, MLflow Keras autolog
        "epoch_loss",  # Keras TensorBoard callback
        "train/epoch_loss",  # ... its train/ folder (see tensorboard.py)
        "train_loss_epoch",  # Lightning self.log(on_step=True, on_epoch=True)
        "training_loss",
        "loss/train",  # TensorBoard tutorials
        "train/loss",
    ),
    "val_loss": (
        "validation/epoch_loss",
        "val_loss_epoch",
        "valid_loss",
        "validation_loss",
        "loss/val",
        "loss/valid",
        "loss/validation",
        "val/loss",
        "validation/loss",
    ),
    "train_acc": (
        "accuracy",
        "acc",
        "epoch_accuracy",
        "train/epoch_accuracy",
        "train_acc_epoch",
        "train_accuracy",
        "accuracy/train",
        "acc/train",
        "train/accuracy",
        "train/acc",
    ),
    "val_acc": (
        "val_accuracy",
        "validation/epoch_accuracy",
        "val_acc_epoch",
        "valid_acc",
        "validation_accuracy",
        "accuracy/val",
        "accuracy/validation",
        "acc/val",
        "val/accuracy",
        "val/acc",
    ),
    "grad_norm": ("gradient_norm", "grad_norm/total", "grad_2.0_norm_total"),  # the last: Lightning grad_norm()
    "weight_norm": ("param_norm",),
    "lr": ("learning_rate", "epoch_learning_rate", "train/epoch_learning_rate", "lr-adam", "lr-adamw", "lr-sgd"),
}
METRIC_NAMES = {alias: canonical for canonical, aliases in ALIASES.items() for alias in (canonical, *aliases)}


def parse_name_map(items: list[str]) -> dict[str, str]:
    """["loss2=val_loss", ...] -> {"loss2": "val_loss"}; a target must be canonical (or the name itself: keep it)."""
    mapping = {}
    for item in items:
        name, sep, target = (part.strip() for part in item.partition("="))
        if not sep or not name or not target:
            raise UserError(f"--map {item!r}: expected NAME=CANONICAL, e.g. --map val_ce=val_loss")
        if target not in CANONICAL_METRICS and target != name:
            close = difflib.get_close_matches(target, CANONICAL_METRICS, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UserError(
                f"--map {item!r}: {target!r} is not a canonical name ({hint}one of {', '.join(CANONICAL_METRICS)}; "
                f"{name}={name} keeps a name as it is)"
            )
        mapping[name] = target
    return mapping


def canonical_names(metrics: pa.Table, label: str, user_map: dict[str, str]) -> pa.Table:
    """`metrics` with its metric column renamed; one line if two names of one run become the same name."""
    found = metrics.column("metric").unique().to_pylist()
    for name in user_map:
        if name not in found:
            shown = ", ".join(sorted(found)[:12]) + (", ..." if len(found) > 12 else "")
            raise UserError(f"{label}: --map {name}=...: no metric {name!r} here (it has {shown})")
    renamed = [user_map.get(name) or METRIC_NAMES.get(name.lower(), name) for name in found]
    canonical = pc.take(pa.array(renamed, pa.string()), pc.index_in(metrics.column("metric"), pa.array(found)))
    pairs = pa.table({"run_id": metrics.column("run_id"), "canonical": canonical, "metric": metrics.column("metric")})
    seen: dict[tuple[str, str], str] = {}
    for pair in pairs.group_by(["run_id", "canonical", "metric"], use_threads=False).aggregate([]).to_pylist():
        key = (pair["run_id"], pair["canonical"])
        if key in seen:
            first, second = sorted((seen[key], pair["metric"]))
            raise UserError(
                f"{label}: run {pair['run_id']!r}: {first!r} and {second!r} both read as {pair['canonical']!r}; "
                f"keep one as it is with --map {second}={second}"
            )
        seen[key] = pair["metric"]
    return metrics.set_column(metrics.schema.get_field_index("metric"), "metric", canonical)
