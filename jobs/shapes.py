"""What fixes a trial's tensor shapes, so which trials can train as one fused model.

Imports pydantic configs only: the driver groups trials into packs without torch.
"""

from __future__ import annotations

from rnnsweep.jobs.config import TrialConfig

GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # gate blocks per cell: W_ih is (GATES * hidden, inputs)


def pack_key(config: TrialConfig) -> str | None:
    """Trials with the same key can share a pack; None: this trial always trains alone.

    Members share task and data, model, epochs, evaluations, batch size, the optimizer's kind
    and resources; lr, betas, momentum, weight decay (and where it applies), clipping, lr
    schedule, class weight, seed and early stop may differ.
    """
    if config.model.layers > 1 and config.model.dropout > 0:
        return None  # dropout masks would differ from the unfused run's
    identity = config.model_dump(mode="json", include={"task", "epochs", "evals_per_epoch", "data", "model"})
    identity |= {
        "batch_size": config.training.batch_size,
        "optimizer": config.optimizer.name,
        "resources": config.resources.model_dump(mode="json"),
    }
    return repr(sorted(identity.items()))
