"""What a trial measures besides its loss: the signals the diagnosis rules read.

Per evaluation: the task's scores, weight norm, largest singular value of every recurrent
matrix (Pascanu, Mikolov & Bengio 2013: below 1 memory fades geometrically, which is how L2
on W_hh kills an RNN), spread of predictions across the validation set (zero spread =
constant output), and the size of the last update relative to the weights.

Every instrument takes tensors with a leading member axis (M, ...) and returns one value per
member, as a tensor left on the device: the loop reads them back together, once per
evaluation. A trial alone is M = 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def weight_norms(parameters: list[torch.Tensor]) -> torch.Tensor:
    """||theta|| per member; each parameter is (M, ...)."""
    return torch.stack([p.detach().pow(2).flatten(1).sum(1) for p in parameters]).sum(0).sqrt()


def sigma_max(w: torch.Tensor) -> torch.Tensor:
    """Largest singular value of each member's matrix (M, rows, cols) -> (M,); NaN for a member
    whose weights are not finite, where the SVD would fail every member at once."""
    w = w.detach().float()
    finite = torch.isfinite(w).flatten(1).all(1)
    sigma = torch.linalg.matrix_norm(torch.where(finite[:, None, None], w, torch.zeros_like(w)), ord=2)
    return torch.where(finite, sigma, torch.full_like(sigma, math.nan))


def recurrent_sigmas(recurrent: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """sigma_max_hh_l0, sigma_max_hh_l0_reverse, sigma_max_hh.encoder.l0, ... from each W_hh
    (M, G*H, H) by its name (jobs.model.recurrent_weights), and sigma_max_hh, the largest."""
    sigmas = {name.replace("weight_", "sigma_max_"): sigma_max(w) for name, w in recurrent.items()}
    if sigmas:  # a user's model may have no recurrent layer at all
        sigmas["sigma_max_hh"] = torch.stack(list(sigmas.values())).amax(0)
    return sigmas


def prediction_std(outputs: torch.Tensor, kind: str) -> torch.Tensor:
    """Std across validation samples of what each member predicts, averaged over outputs.

    `outputs` is (M, N, O). Probabilities for classifiers (so a saturated constant classifier
    reads 0), raw outputs for regression.
    """
    if kind == "binary":
        predictions = torch.sigmoid(outputs)
    elif kind == "multiclass":
        predictions = torch.softmax(outputs, dim=-1)
    else:
        predictions = outputs
    if predictions.shape[1] < 2:
        return predictions.new_zeros(predictions.shape[0])
    return predictions.std(dim=1).mean(-1)


def target_std(y: torch.Tensor, kind: str) -> float:
    """The spread pred_std is measured against: of labels (one-hot for multiclass) or targets."""
    if kind == "multiclass":
        y = torch.nn.functional.one_hot(y, int(y.max()) + 1)
    y = y.float().reshape(len(y), -1)
    return y.std(dim=0).mean().item() if len(y) > 1 else 0.0


def snapshot(parameters: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach().clone() for p in parameters]


def update_ratios(before: list[torch.Tensor], after: list[torch.Tensor]) -> torch.Tensor:
    """||theta_after - theta_before|| / ||theta_before|| per member, for one optimizer step."""
    delta = torch.stack([(a.detach() - b).pow(2).flatten(1).sum(1) for a, b in zip(after, before, strict=True)])
    size = torch.stack([b.pow(2).flatten(1).sum(1) for b in before])
    return delta.sum(0).sqrt() / size.sum(0).sqrt().clamp_min(1e-12)


def task_scores(outputs: torch.Tensor, y: torch.Tensor, kind: str, prefix: str) -> dict[str, float]:
    """One member's quality scores on (N, O) outputs; balanced accuracy for binary tasks,
    where 1:100 labels make plain accuracy reward a model that never fires."""
    if kind == "binary":
        predicted = outputs.squeeze(-1) > 0
        actual = y.bool()
        tp = (predicted & actual).sum().item()
        tn = (~predicted & ~actual).sum().item()
        positives, negatives = actual.sum().item(), (~actual).sum().item()
        rates = [
            r for r in (tp / positives if positives else None, tn / negatives if negatives else None) if r is not None
        ]
        predicted_positive = predicted.sum().item()
        precision = tp / predicted_positive if predicted_positive else 0.0
        recall = tp / positives if positives else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {f"{prefix}_acc": sum(rates) / len(rates), f"{prefix}_recall": recall, f"{prefix}_f1": f1}
    if kind == "multiclass":
        return {f"{prefix}_acc": (outputs.argmax(-1) == y).float().mean().item()}
    residual = ((outputs - y) ** 2).sum().item()
    total = ((y - y.mean(dim=0)) ** 2).sum().item()
    cosine = nn.functional.cosine_similarity(outputs, y, dim=-1).mean().item()
    return {f"{prefix}_r2": 1 - residual / total if total else 0.0, f"{prefix}_cosine": cosine}
