"""What fixes a trial's tensor shapes: each task's input channels and outputs, and so which
trials can train as one fused model.

Imports pydantic configs only: the driver sizes and groups packs without torch, and the task
generators (jobs/tasks) build their arrays from the same facts.
"""

from __future__ import annotations

from typing import Literal

from rnnsweep.jobs.config import DataConfig, TaskName, TrialConfig

GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # gate blocks per cell: W_ih is (GATES * hidden, inputs)

TaskKind = Literal["binary", "multiclass", "regression"]
KIND: dict[str, TaskKind] = {"events": "binary", "sequences4": "multiclass", "word_vectors": "regression"}
# word_vectors reads a word one one-hot character per step: 26 letters and the `$` pad.
WORD_CHARACTERS = "abcdefghijklmnopqrstuvwxyz$"
SEQUENCES4_CLASSES = ("sine", "square", "sawtooth", "triangle")  # in label order


def input_channels(task: TaskName, data: DataConfig) -> int:
    """Channels per time step of a task's sequences. A `file` task's are its file's: not known here."""
    if task == "word_vectors":
        return len(WORD_CHARACTERS)
    if task in ("events", "sequences4"):
        return data.n_features
    raise ValueError(f"the {task!r} task's input channels are read from its data, not from its config")


def output_size(task: TaskName, data: DataConfig) -> int:
    """Outputs of the model's head: one logit (binary), one per class, or the target's dimensions."""
    if task == "events":
        return 1
    if task == "sequences4":
        return len(SEQUENCES4_CLASSES)
    if task == "word_vectors":
        return data.target_dim
    raise ValueError(f"the {task!r} task's outputs are read from its data, not from its config")


def pack_key(config: TrialConfig) -> str | None:
    """Trials with the same key can share a pack; None: this trial always trains alone.

    Members share task and data, model, epochs, evaluations, batch size, the optimizer's kind
    and resources; lr, betas, momentum, weight decay (and where it applies), clipping, lr
    schedule, class weight, seed and early stop may differ.
    """
    if config.model.layers > 1 and config.model.dropout > 0:
        return None  # dropout masks would differ from the unfused run's
    if config.model.factory or config.entrypoint:
        return None  # your own model or loop: only the built-in model fuses
    identity = config.model_dump(mode="json", include={"task", "epochs", "evals_per_epoch", "data", "model"})
    identity |= {
        "batch_size": config.training.batch_size,
        "optimizer": config.optimizer.name,
        "resources": config.resources.model_dump(mode="json"),
    }
    return repr(sorted(identity.items()))
