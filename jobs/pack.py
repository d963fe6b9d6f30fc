"""Packs: trials of one shape trained as one fused model, each still its own run.

A pack's members share everything that fixes tensor shapes (task and data, model, epochs,
evaluations, batch size) and the optimizer's kind; they differ in scalars (lr, betas,
momentum, weight decay and where it applies, clipping, lr schedule, class weight, seed,
early stop). Each member keeps its own seed: the same initial weights and the same batch
order it would have had alone, so its curve does not depend on who it was packed with.

A member whose loss or gradient goes non-finite (or that the early stop judges diverged)
logs that step, ends `stopped`, and is cut out of every tensor; the others train on at the
smaller size. Every member logs to its own metric log, exactly as an unfused run does.
Packs keep no checkpoints: a pack Ray retries starts its members again from step 0 (the
warehouse keeps the last attempt's rows).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from rnnsweep.jobs import instrument
from rnnsweep.jobs.config import TrialConfig
from rnnsweep.jobs.early_stop import DivergenceWatch, watch_for
from rnnsweep.jobs.fused import FusedSequenceModel
from rnnsweep.jobs.fused_optim import FusedOptimizer, clip_member_grads, member_grad_norms
from rnnsweep.jobs.metric_log import MetricLog
from rnnsweep.jobs.model import SequenceModel
from rnnsweep.jobs.shapes import pack_key
from rnnsweep.jobs.tasks import load_task
from rnnsweep.jobs.train import (
    CHUNK_SECONDS,
    CHUNK_STEPS,
    EVAL_BATCH,
    TrainOutcome,
    eval_points,
    lr_factor,
    targets_for_loss,
    task_scores,
)


@dataclass
class Member:
    config: TrialConfig
    log: MetricLog
    index: int  # position in the pack as submitted
    watch: DivergenceWatch | None  # training.early_stop, or None when it is off
    order: torch.Generator  # the member's own batch order, seeded as its unfused trial's
    window_loss: float = 0.0  # train loss summed since the last evaluation
    window_steps: int = 0
    seen_outputs: list = field(default_factory=list)  # since the last evaluation, for train_acc
    seen_targets: list = field(default_factory=list)


def member_losses(outputs, targets, kind: str, pos_weight: torch.Tensor) -> torch.Tensor:
    """Each member's mean loss (M,), as BCEWithLogitsLoss / CrossEntropyLoss / MSELoss compute it."""
    if kind == "binary":
        x = outputs.squeeze(-1)
        y = targets.float().reshape(x.shape)
        log_weight = 1 + (pos_weight[:, None] - 1) * y
        per_sample = (1 - y) * x + log_weight * (torch.log1p(torch.exp(-x.abs())) + torch.clamp(-x, min=0))
        return per_sample.mean(1)
    if kind == "multiclass":
        m, b, c = outputs.shape
        return (
            nn.functional.cross_entropy(outputs.reshape(m * b, c), targets.reshape(-1), reduction="none")
            .view(m, b)
            .mean(1)
        )
    return (outputs - targets).pow(2).flatten(1).mean(1)


def train_pack(configs: list[TrialConfig], logs: list[MetricLog], device: str = "cpu") -> list[TrainOutcome]:
    """Train every member; outcomes in the order of `configs`."""
    keys = {pack_key(c) for c in configs}
    if len(keys) != 1 or None in keys:
        raise ValueError("a pack's trials must share one shape (rnnsweep.jobs.shapes.pack_key)")
    first = configs[0]
    torch.set_num_threads(max(1, int(first.resources.cpus_per_trial)))
    dev = torch.device(device)
    data = load_task(first)  # members share [data]
    x_train, x_val = torch.from_numpy(data.x_train).to(dev), torch.from_numpy(data.x_val).to(dev)
    y_train, y_val = torch.from_numpy(data.y_train).to(dev), torch.from_numpy(data.y_val).to(dev)

    # Each member's initial weights are those its unfused trial draws from its seed.
    singles = []
    for config in configs:
        torch.manual_seed(config.seed)
        singles.append(SequenceModel(data.n_features, data.n_outputs, config.model))
    model = FusedSequenceModel(singles, first.model).to(dev)
    optimizer = FusedOptimizer(model, [c.optimizer for c in configs])
    members = [
        Member(c, log, i, watch_for(c.training), torch.Generator().manual_seed(c.seed))
        for i, (c, log) in enumerate(zip(configs, logs, strict=True))
    ]
    outcomes: dict[int, TrainOutcome] = {}
    batch = first.training.batch_size
    steps_per_epoch = math.ceil(len(x_train) / batch)
    schedules = [lr_factor(m.config, steps_per_epoch) for m in members]
    evaluate_after = eval_points(steps_per_epoch, first.evals_per_epoch)
    max_norms = torch.tensor(
        [c.training.clip_grad_norm if c.training.clip_grad_norm > 0 else math.inf for c in configs], device=dev
    )
    pos_weight = torch.tensor([c.training.pos_weight for c in configs], device=dev)

    finals = evaluate_members(model, x_val, y_val, data.kind, pos_weight)
    baseline = {"target_std": instrument.target_std(y_val, data.kind)}
    if data.kind != "regression":
        baseline["n_classes"] = 2 if data.kind == "binary" else data.n_outputs
    for member, final in zip(members, finals, strict=True):
        member.log.add(0, 0, final | baseline)

    def drop(stopped: list[int]) -> None:
        """Cut members (positions in `members`) out of the model, optimizer and per-member tensors."""
        nonlocal members, schedules, max_norms, pos_weight, finals, permutations
        keep = [i for i in range(len(members)) if i not in set(stopped)]
        index = torch.tensor(keep, dtype=torch.long, device=dev)  # long even when empty
        model.keep(index)
        optimizer.keep(index)
        members, schedules, finals = [members[i] for i in keep], [schedules[i] for i in keep], [finals[i] for i in keep]
        max_norms, pos_weight, permutations = max_norms[index], pos_weight[index], permutations[index]

    step, last_flush, flushed_at = 0, 0, time.monotonic()
    permutations = torch.empty(0)
    for epoch in range(1, first.epochs + 1):
        if not members:
            break
        permutations = torch.stack([torch.randperm(len(x_train), generator=m.order) for m in members]).to(dev)
        for index in range(steps_per_epoch):
            rows = permutations[:, index * batch : (index + 1) * batch]  # (M, B): each member's own batch
            xb, yb = x_train[rows], y_train[rows]
            factors = torch.tensor([f(step) for f in schedules], dtype=torch.float32, device=dev)
            optimizer.set_lr_factors(factors)
            outputs = model(xb)
            losses = member_losses(outputs, targets_for_loss(yb, data.kind), data.kind, pos_weight)
            optimizer.zero_grad()
            losses.sum().backward()  # members share no parameters: each gets its own gradient
            norms = member_grad_norms(model)
            clip_member_grads(model, norms, max_norms)
            step += 1
            loss_values, norm_values, lr_values = losses.tolist(), norms.tolist(), optimizer.lr.tolist()

            stopped = []
            for i, member in enumerate(members):
                loss, norm = loss_values[i], norm_values[i]
                row = {"train_loss": loss, "grad_norm": norm, "lr": lr_values[i]}
                if not (math.isfinite(loss) and math.isfinite(norm)):
                    what = "train loss" if not math.isfinite(loss) else "gradient norm"
                    member.log.add(step, epoch, row | {"nonfinite": 1.0})
                    outcomes[member.index] = TrainOutcome(
                        "stopped", f"non-finite {what} at step {step}", step, finals[i]
                    )
                    stopped.append(i)
                    continue
                member.log.add(step, epoch, row)
                member.window_loss += loss
                member.window_steps += 1
            if stopped:
                alive = torch.tensor([i for i in range(len(members)) if i not in stopped], dtype=torch.long, device=dev)
                outputs, yb = outputs[alive], yb[alive]
                drop(stopped)
                if not members:
                    break

            evaluating = index in evaluate_after
            before = [p.detach().clone() for p in model.parameters()] if evaluating else None
            optimizer.step()
            if data.kind != "regression":
                for i, member in enumerate(members):
                    member.seen_outputs.append(outputs[i].detach())
                    member.seen_targets.append(yb[i])
            if evaluating:
                finals = evaluate_members(model, x_val, y_val, data.kind, pos_weight)
                ratios = member_update_ratios(before, model)
                stopped = []
                for i, member in enumerate(members):
                    finals[i]["update_ratio"] = ratios[i]
                    if member.seen_outputs:
                        seen = torch.cat(member.seen_outputs), torch.cat(member.seen_targets)
                        finals[i] |= task_scores(*seen, data.kind, "train")
                        member.seen_outputs, member.seen_targets = [], []
                    reason = None
                    if member.watch is not None and member.window_steps:
                        reason = member.watch.observe(member.window_loss / member.window_steps)
                    member.window_loss, member.window_steps = 0.0, 0
                    member.log.add(step, epoch, finals[i] | ({"early_stopped": 1.0} if reason else {}))
                    if reason:
                        outcomes[member.index] = TrainOutcome("stopped", reason, step, finals[i])
                        stopped.append(i)
                if stopped:
                    drop(stopped)
                    if not members:
                        break
            if step - last_flush >= CHUNK_STEPS or time.monotonic() - flushed_at >= CHUNK_SECONDS:
                for log in logs:
                    log.flush()
                last_flush, flushed_at = step, time.monotonic()
    for i, member in enumerate(members):
        outcomes[member.index] = TrainOutcome("finished", "", step, finals[i])
    for log in logs:
        log.flush()
    return [outcomes[i] for i in range(len(configs))]


@torch.no_grad()
def evaluate_members(model: FusedSequenceModel, x_val, y_val, kind: str, pos_weight) -> list[dict[str, float]]:
    """What train.evaluate measures, for every member (one dict each)."""
    model.eval()
    outputs = torch.cat([model(x_val[i : i + EVAL_BATCH]) for i in range(0, len(x_val), EVAL_BATCH)], dim=1)
    model.train()
    m = outputs.shape[0]
    targets = targets_for_loss(y_val, kind).unsqueeze(0).expand(m, *targets_for_loss(y_val, kind).shape)
    val_losses = member_losses(outputs, targets, kind, pos_weight).tolist()
    weight_norms = torch.stack([p.detach().pow(2).flatten(1).sum(1) for p in model.parameters()]).sum(0).sqrt()
    sigmas = {name.replace("weight_", "sigma_max_"): sigma_max(w) for name, w in model.recurrent_weights().items()}
    results = []
    for i in range(m):
        metrics = {"val_loss": val_losses[i]}
        if torch.isfinite(outputs[i]).all():
            metrics |= task_scores(outputs[i], y_val, kind, "val")
        metrics["pred_std"] = instrument.prediction_std(outputs[i], kind)
        metrics["weight_norm"] = weight_norms[i].item()
        member_sigmas = {name: values[i] for name, values in sigmas.items()}
        metrics |= member_sigmas | {"sigma_max_hh": max(member_sigmas.values())}
        results.append(metrics)
    return results


def sigma_max(w: torch.Tensor) -> list[float]:
    """Largest singular value of each member's matrix; NaN for a member whose weights are not
    finite (its next loss is, and it stops), where the SVD would fail the whole pack."""
    w = w.detach().float()
    finite = torch.isfinite(w).flatten(1).all(1)
    sigma = torch.linalg.matrix_norm(torch.where(finite[:, None, None], w, torch.zeros_like(w)), ord=2)
    return torch.where(finite, sigma, torch.full_like(sigma, math.nan)).tolist()


def member_update_ratios(before: list[torch.Tensor], model: FusedSequenceModel) -> list[float]:
    """||theta_after - theta_before|| / ||theta_before|| per member, for the last step."""
    after = list(model.parameters())
    delta = torch.stack([(a.detach() - b).pow(2).flatten(1).sum(1) for a, b in zip(after, before, strict=True)]).sum(0)
    size = torch.stack([b.pow(2).flatten(1).sum(1) for b in before]).sum(0)
    return (delta.sqrt() / size.sqrt().clamp_min(1e-12)).tolist()
