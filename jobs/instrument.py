"""What a trial measures besides its loss: the signals the diagnosis rules read.

Per evaluation: weight norm, largest singular value of every recurrent matrix (Pascanu,
Mikolov & Bengio 2013: below 1 memory fades geometrically, which is how L2 on W_hh kills an
RNN), spread of predictions across the validation set (zero spread = constant output), and
the size of the last update relative to the weights.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnsweep.jobs.model import recurrent_weights


def weight_norm(model: nn.Module) -> float:
    return torch.sqrt(sum(p.detach().pow(2).sum() for p in model.parameters())).item()


def recurrent_sigma_max(model: nn.Module) -> dict[str, float]:
    """sigma_max_hh_l0, sigma_max_hh_l0_reverse, ... and sigma_max_hh, the largest of them."""
    sigmas = {
        name.replace("weight_", "sigma_max_"): torch.linalg.matrix_norm(w.detach().float(), ord=2).item()
        for name, w in recurrent_weights(model).items()
    }
    sigmas["sigma_max_hh"] = max(sigmas.values())
    return sigmas


def prediction_std(outputs: torch.Tensor, kind: str) -> float:
    """Std across validation samples of what the model predicts, averaged over outputs.

    Probabilities for classifiers (so a saturated constant classifier reads 0), raw
    outputs for regression.
    """
    if kind == "binary":
        predictions = torch.sigmoid(outputs)
    elif kind == "multiclass":
        predictions = torch.softmax(outputs, dim=-1)
    else:
        predictions = outputs
    if predictions.shape[0] < 2:
        return 0.0
    return predictions.std(dim=0).mean().item()


def target_std(y: torch.Tensor, kind: str) -> float:
    """The spread pred_std is measured against: of labels (one-hot for multiclass) or targets."""
    if kind == "multiclass":
        y = torch.nn.functional.one_hot(y, int(y.max()) + 1)
    y = y.float().reshape(len(y), -1)
    return y.std(dim=0).mean().item() if len(y) > 1 else 0.0


def snapshot(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def update_ratio(before: list[torch.Tensor], model: nn.Module) -> float:
    """||theta_after - theta_before|| / ||theta_before|| for one optimizer step."""
    delta = sum((p.detach() - b).pow(2).sum() for p, b in zip(model.parameters(), before, strict=True))
    size = sum(b.pow(2).sum() for b in before)
    return (torch.sqrt(delta) / torch.sqrt(size).clamp_min(1e-12)).item()
