"""Engines: what the one training loop (jobs/loop.py) drives, for M >= 1 members at once.

An engine holds the models and optimizers of its members and does the tensor work of a step:
forward and backward (per-member losses and gradient norms before clipping, clipping done),
the optimizer step at the lrs the loop gives it, evaluation, dropping members, and each
member's state for a checkpoint. Everything it returns has a leading member axis and stays
on the device; the loop decides what to read back, and when.

Two engines:
- `ModuleEngine`: one `nn.Module` and its `torch.optim` optimizer (M = 1), so a trial alone
  keeps torch's own CPU and cuDNN kernels.
- `FusedEngine`: M same-shape members as one `FusedSequenceModel` with per-member optimizer
  hyper-parameters (jobs/fused.py, jobs/fused_optim.py).

A member's checkpointed model is its module's own state dict (fused members are converted
to SequenceModel's), its optimizer state in its engine's own form (`kind` says which). A
user's model (`model.factory`) always trains on the module engine.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import nn

from rnnsweep.jobs.config import TrialConfig
from rnnsweep.jobs.fused import FusedSequenceModel
from rnnsweep.jobs.fused_optim import FusedOptimizer, clip_member_grads, member_grad_norms
from rnnsweep.jobs.model import SequenceModel, build_model, make_optimizer, recurrent_weights
from rnnsweep.jobs.tasks import TaskData
from rnnsweep.jobs.user_code import check_first_batch

EVAL_BATCH = 1024  # validation sequences per forward pass


class Engine(Protocol):
    kind: str  # "module" or "fused": whose optimizer state a checkpoint holds

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One batch per member, x (M, B, T, F) and y (M, B, ...): returns the losses (M,), the
        gradient norms before clipping (M,) and the outputs (M, B, O), gradients clipped."""

    def step(self, lrs: list[float]) -> None:
        """One optimizer step, member i at learning rate lrs[i]."""

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member on the same (N, T, F): outputs (M, N, O) and losses (M,), in eval mode."""

    def parameters(self) -> list[torch.Tensor]:
        """Every parameter as (M, ...)."""

    def recurrent_weights(self) -> dict[str, torch.Tensor]:
        """Each W_hh as (M, G*H, H), by torch's names (weight_hh_l0, weight_hh_l0_reverse, ...)."""

    def keep(self, members: torch.Tensor) -> None:
        """Drop every member not in `members` (indices, never empty)."""

    def member_states(self) -> list[dict]:
        """Per member: {"model": SequenceModel state dict, "optimizer": this engine's optimizer state}."""

    def load_optimizer_states(self, states: list[dict]) -> None:
        """Each member's optimizer state, as member_states gave it."""


def targets_for_loss(y: torch.Tensor, kind: str) -> torch.Tensor:
    return y.float().unsqueeze(-1) if kind == "binary" else y


def seeded_models(configs: list[TrialConfig], data: TaskData, saved: list[dict] | None) -> list[nn.Module]:
    """Each member's model as its own seed draws it (so a packed member starts where it would
    alone), or as a checkpoint left it. A user's model is tried on the first batch first."""
    models = []
    for i, config in enumerate(configs):
        torch.manual_seed(config.seed)
        model = build_model(config, data.n_features, data.n_outputs)
        if config.model.factory:
            first = torch.from_numpy(data.x_train[: config.training.batch_size])
            check_first_batch(model, first, data.n_outputs, config.model.factory)
        if saved is not None:
            model.load_state_dict(saved[i]["model"])
        models.append(model)
    return models


def make_engine(
    configs: list[TrialConfig], data: TaskData, device: torch.device, fused: bool, saved: list[dict] | None = None
) -> Engine:
    """The engine for these members, fresh or from their checkpointed states (`saved`)."""
    models = seeded_models(configs, data, saved)
    if fused:
        engine = FusedEngine(models, configs, data.kind, device)
    else:
        [config], [model] = configs, models
        engine = ModuleEngine(model, config, data.kind, device)
    if saved is not None:
        engine.load_optimizer_states([s["optimizer"] for s in saved])
    return engine


class ModuleEngine:
    """One nn.Module and its torch.optim optimizer: M = 1, torch's own kernels."""

    kind = "module"

    def __init__(self, model: nn.Module, config: TrialConfig, kind: str, device: torch.device):
        self.model, self.task_kind = model.to(device), kind
        self.optimizer = make_optimizer(self.model, config.optimizer)
        if kind == "binary":
            pos_weight = torch.tensor([config.training.pos_weight], device=device)
            self.loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        else:
            self.loss_fn = nn.CrossEntropyLoss() if kind == "multiclass" else nn.MSELoss()
        clip = config.training.clip_grad_norm
        self.max_norm = clip if clip > 0 else math.inf

    def forward_backward(self, x, y):
        outputs = self.model(x[0])
        loss = self.loss_fn(outputs, targets_for_loss(y[0], self.task_kind))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.max_norm)
        return loss.detach().view(1), norm.view(1), outputs.detach().unsqueeze(0)

    def step(self, lrs: list[float]) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lrs[0]
        self.optimizer.step()

    @torch.no_grad()
    def evaluate(self, x, y):
        self.model.eval()
        outputs = torch.cat([self.model(x[i : i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)])
        self.model.train()
        return outputs.unsqueeze(0), self.loss_fn(outputs, targets_for_loss(y, self.task_kind)).view(1)

    def parameters(self) -> list[torch.Tensor]:
        return [p.unsqueeze(0) for p in self.model.parameters()]

    def recurrent_weights(self) -> dict[str, torch.Tensor]:
        return {name: w.unsqueeze(0) for name, w in recurrent_weights(self.model).items()}

    def keep(self, members: torch.Tensor) -> None:
        pass  # its one member stopping ends the loop; nothing is ever dropped from it

    def member_states(self) -> list[dict]:
        return [{"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}]

    def load_optimizer_states(self, states: list[dict]) -> None:
        self.optimizer.load_state_dict(states[0])


class FusedEngine:
    """M members of one shape as one fused model with per-member optimizer hyper-parameters."""

    kind = "fused"

    def __init__(self, models: list[SequenceModel], configs: list[TrialConfig], kind: str, device: torch.device):
        self.model = FusedSequenceModel(models, configs[0].model).to(device)
        self.optimizer = FusedOptimizer(self.model, [c.optimizer for c in configs])
        self.task_kind, self.device = kind, device
        self.pos_weight = torch.tensor([c.training.pos_weight for c in configs], device=device)
        clips = [c.training.clip_grad_norm for c in configs]
        self.max_norms = torch.tensor([c if c > 0 else math.inf for c in clips], device=device)

    def forward_backward(self, x, y):
        outputs = self.model(x)
        losses = member_losses(outputs, targets_for_loss(y, self.task_kind), self.task_kind, self.pos_weight)
        self.optimizer.zero_grad()
        losses.sum().backward()  # members share no parameters: each gets its own gradient
        norms = member_grad_norms(self.model)
        clip_member_grads(self.model, norms, self.max_norms)
        return losses.detach(), norms, outputs.detach()

    def step(self, lrs: list[float]) -> None:
        self.optimizer.lr = torch.tensor(lrs, dtype=torch.float32, device=self.device)
        self.optimizer.step()

    @torch.no_grad()
    def evaluate(self, x, y):
        self.model.eval()
        outputs = torch.cat([self.model(x[i : i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)], dim=1)
        self.model.train()
        targets = targets_for_loss(y, self.task_kind)
        targets = targets.unsqueeze(0).expand(outputs.shape[0], *targets.shape)
        return outputs, member_losses(outputs, targets, self.task_kind, self.pos_weight)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.model.parameters())

    def recurrent_weights(self) -> dict[str, torch.Tensor]:
        return self.model.recurrent_weights()

    def keep(self, members: torch.Tensor) -> None:
        self.model.keep(members)
        self.optimizer.keep(members)
        self.pos_weight, self.max_norms = self.pos_weight[members], self.max_norms[members]

    def member_states(self) -> list[dict]:
        return [
            {"model": self.model.member_state(i), "optimizer": self.optimizer.member_state(i)}
            for i in range(self.model.members)
        ]

    def load_optimizer_states(self, states: list[dict]) -> None:
        self.optimizer.load_member_states(states)


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
