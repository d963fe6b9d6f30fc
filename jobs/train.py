"""The training loop: one trial, top to bottom, instrumented.

Metrics (long format, one row per step and metric; see README "Warehouse tables"):
  every optimizer step   train_loss, grad_norm (before clipping), lr
  every evaluation       val_loss, the task's scores (val_acc = balanced accuracy for binary
                         tasks, accuracy for multiclass; val_r2 and val_cosine for regression),
                         train_acc over the batches since the last evaluation, weight_norm,
                         sigma_max_hh*, pred_std, update_ratio
  at a non-finite loss   the NaN/Inf itself and nonfinite = 1, then the trial stops
  at an early stop       early_stopped = 1 beside that evaluation's metrics, then the trial
                         stops (training.early_stop = "diverged", see jobs/early_stop.py)
Evaluation also runs once at step 0, so every curve has its untrained baseline; step 0 also
logs target_std, the spread of the validation labels/targets that pred_std is compared with,
and n_classes for classifiers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from rnnsweep.jobs import instrument
from rnnsweep.jobs.config import TrialConfig
from rnnsweep.jobs.early_stop import watch_for
from rnnsweep.jobs.metric_log import MetricLog
from rnnsweep.jobs.model import SequenceModel, make_optimizer
from rnnsweep.jobs.tasks import TaskData, load_task

CHUNK_STEPS = 250  # write a metric chunk at least this often (a crash loses at most one)
CHUNK_SECONDS = 10.0  # ... or this often, so a running sweep can be watched
EVAL_BATCH = 1024


@dataclass(frozen=True)
class TrainOutcome:
    status: str  # "finished", or "stopped": the loss or gradient went non-finite, or it diverged (early stop)
    stop_reason: str
    steps: int
    final: dict[str, float]  # the last evaluation's metrics


def make_loss(data: TaskData, config: TrialConfig, device: torch.device) -> nn.Module:
    if data.kind == "binary":
        return nn.BCEWithLogitsLoss(pos_weight=torch.tensor([config.training.pos_weight], device=device))
    if data.kind == "multiclass":
        return nn.CrossEntropyLoss()
    return nn.MSELoss()


def targets_for_loss(y: torch.Tensor, kind: str) -> torch.Tensor:
    return y.float().unsqueeze(-1) if kind == "binary" else y


def task_scores(outputs: torch.Tensor, y: torch.Tensor, kind: str, prefix: str) -> dict[str, float]:
    """The task's quality scores; balanced accuracy for binary tasks, where 1:100 labels
    make plain accuracy reward a model that never fires."""
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


@torch.no_grad()
def evaluate(model, loss_fn, x_val, y_val, kind: str) -> dict[str, float]:
    model.eval()
    outputs = torch.cat([model(x_val[i : i + EVAL_BATCH]) for i in range(0, len(x_val), EVAL_BATCH)])
    model.train()
    metrics = {"val_loss": loss_fn(outputs, targets_for_loss(y_val, kind)).item()}
    if torch.isfinite(outputs).all():
        metrics |= task_scores(outputs, y_val, kind, "val")
    metrics["pred_std"] = instrument.prediction_std(outputs, kind)
    metrics["weight_norm"] = instrument.weight_norm(model)
    metrics |= instrument.recurrent_sigma_max(model)
    return metrics


def lr_factor(config: TrialConfig, steps_per_epoch: int):
    """Multiplier of the base lr at a given step (LambdaLR), per `training.lr_schedule`."""
    total = config.epochs * steps_per_epoch
    every = config.training.lr_step_epochs * steps_per_epoch
    schedule, gamma = config.training.lr_schedule, config.training.lr_gamma
    if schedule == "cosine":
        return lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    if schedule == "step":
        return lambda step: gamma ** (step // every)
    return lambda step: 1.0


def eval_points(steps_per_epoch: int, evals_per_epoch: int) -> set[int]:
    """Batch indices within an epoch after which to evaluate (the last always included)."""
    n = min(evals_per_epoch, steps_per_epoch)
    return {round(steps_per_epoch * (j + 1) / n) - 1 for j in range(n)}


def train(
    config: TrialConfig,
    log: MetricLog,
    device: str = "cpu",
    save_checkpoint: Callable[[dict], None] | None = None,
    resume: dict | None = None,
) -> TrainOutcome:
    """Train one trial, logging as it goes; with `resume` (a saved checkpoint), carry on from
    it exactly. `save_checkpoint` receives the state each time a metric chunk is written."""
    # 1. Reproducibility and threads: one trial per `cpus_per_trial` cores.
    torch.manual_seed(config.seed)
    torch.set_num_threads(max(1, int(config.resources.cpus_per_trial)))
    dev = torch.device(device)

    # 2. Data: the same for every trial of the sweep (data.seed); batch order from the trial seed.
    data = load_task(config)
    x_train, x_val = torch.from_numpy(data.x_train).to(dev), torch.from_numpy(data.x_val).to(dev)
    y_train, y_val = torch.from_numpy(data.y_train).to(dev), torch.from_numpy(data.y_val).to(dev)
    order = torch.Generator().manual_seed(config.seed)

    # 3. Model, loss, optimizer, schedule.
    model = SequenceModel(data.n_features, data.n_outputs, config.model).to(dev)
    loss_fn = make_loss(data, config, dev)
    optimizer = make_optimizer(model, config.optimizer)
    batch = config.training.batch_size
    steps_per_epoch = math.ceil(len(x_train) / batch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, steps_per_epoch))
    evaluate_after = eval_points(steps_per_epoch, config.evals_per_epoch)
    clip = config.training.clip_grad_norm if config.training.clip_grad_norm > 0 else math.inf
    watch = watch_for(config.training)  # early stop; None when off
    window_loss, window_steps = 0.0, 0  # train loss summed since the last evaluation, for the watch

    # 4. Start: a baseline evaluation, or the state a dead attempt saved.
    if resume is None:
        step, first_epoch, first_index, permutation, seen_outputs, seen_targets = 0, 1, 0, None, [], []
        final = evaluate(model, loss_fn, x_val, y_val, data.kind)
        baseline = {"target_std": instrument.target_std(y_val, data.kind)}
        if data.kind != "regression":  # chance level for the diagnosis: 1/n_classes
            baseline["n_classes"] = 2 if data.kind == "binary" else data.n_outputs
        log.add(0, 0, final | baseline)
    else:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        torch.set_rng_state(resume["torch_rng"])
        order.set_state(resume["order_rng"])
        step, first_epoch, first_index = resume["step"], resume["epoch"], resume["index"]
        permutation = None if resume["permutation"] is None else resume["permutation"].to(dev)
        seen_outputs, seen_targets, final = resume["seen_outputs"], resume["seen_targets"], resume["final"]
        window_loss, window_steps = resume.get("window_loss", 0.0), resume.get("window_steps", 0)
        if watch is not None and resume.get("watch") is not None:
            watch.restore(resume["watch"])

    # 5. The loop.
    last_flush, flushed_at = step, time.monotonic()
    for epoch in range(first_epoch, config.epochs + 1):
        if permutation is None:
            permutation = torch.randperm(len(x_train), generator=order).to(dev)
        for index in range(first_index, steps_per_epoch):
            rows = permutation[index * batch : (index + 1) * batch]
            xb, yb = x_train[rows], y_train[rows]
            outputs = model(xb)
            loss = loss_fn(outputs, targets_for_loss(yb, data.kind))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(model.parameters(), clip).item()
            step += 1
            lr = optimizer.param_groups[0]["lr"]
            if not (math.isfinite(loss.item()) and math.isfinite(grad_norm)):
                what = "train loss" if not math.isfinite(loss.item()) else "gradient norm"
                log.add(step, epoch, {"train_loss": loss.item(), "grad_norm": grad_norm, "lr": lr, "nonfinite": 1.0})
                log.flush()
                return TrainOutcome("stopped", f"non-finite {what} at step {step}", step, final)

            evaluating = index in evaluate_after
            before = instrument.snapshot(model) if evaluating else None
            optimizer.step()
            scheduler.step()
            log.add(step, epoch, {"train_loss": loss.item(), "grad_norm": grad_norm, "lr": lr})
            window_loss, window_steps = window_loss + loss.item(), window_steps + 1
            if data.kind != "regression":
                seen_outputs.append(outputs.detach())
                seen_targets.append(yb)
            if evaluating:
                final = evaluate(model, loss_fn, x_val, y_val, data.kind)
                final["update_ratio"] = instrument.update_ratio(before, model)
                if seen_outputs:
                    final |= task_scores(torch.cat(seen_outputs), torch.cat(seen_targets), data.kind, "train")
                    seen_outputs, seen_targets = [], []
                reason = watch.observe(window_loss / window_steps) if watch is not None else None
                window_loss, window_steps = 0.0, 0
                log.add(step, epoch, final | ({"early_stopped": 1.0} if reason else {}))
                if reason:
                    log.flush()
                    return TrainOutcome("stopped", reason, step, final)
            if step - last_flush >= CHUNK_STEPS or time.monotonic() - flushed_at >= CHUNK_SECONDS:
                log.flush()
                last_flush, flushed_at = step, time.monotonic()
                if save_checkpoint is not None:
                    # where the next attempt starts: this epoch's next batch, or the next epoch
                    epoch_done = index + 1 == steps_per_epoch
                    save_checkpoint(
                        {
                            "step": step,
                            "epoch": epoch + 1 if epoch_done else epoch,
                            "index": 0 if epoch_done else index + 1,
                            "permutation": None if epoch_done else permutation.cpu(),
                            "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(),
                            "torch_rng": torch.get_rng_state(),
                            "order_rng": order.get_state(),
                            "seen_outputs": seen_outputs,
                            "seen_targets": seen_targets,
                            "final": final,
                            "window_loss": window_loss,
                            "window_steps": window_steps,
                            "watch": None if watch is None else watch.state(),
                        }
                    )
        permutation, first_index = None, 0
    log.flush()
    return TrainOutcome("finished", "", step, final)
