"""The training loop: M >= 1 members (a trial alone is M = 1, a pack M > 1), instrumented.

Metrics, per member (long format, one row per step and metric; see README "Warehouse tables"):
  every optimizer step   train_loss, grad_norm (before clipping), lr
  every evaluation       val_loss, the task's scores (val_acc = balanced accuracy for binary
                         tasks, accuracy for multiclass; val_r2 and val_cosine for regression),
                         train_acc over the batches since the last evaluation, weight_norm,
                         sigma_max_hh*, pred_std, update_ratio
  at a non-finite loss   the NaN/Inf itself and nonfinite = 1, then the member stops
  at an early stop       early_stopped = 1 beside that evaluation's metrics, then the member
                         stops (training.early_stop = "diverged", see jobs/early_stop.py)
Evaluation also runs once at step 0, so every curve has its untrained baseline; step 0 also
logs target_std, the spread of the validation labels/targets that pred_std is compared with,
and n_classes for classifiers.

The loop owns all of that once, and drives an engine (jobs/engines.py) for the tensor work.
Members share everything that fixes tensor shapes (jobs/shapes.py); each keeps its own seed,
so its initial weights and batch order are those it would have alone, and its curve does
not depend on who it trained beside. Per-step values stay on the device and are read back
together at every evaluation and every chunk (on a GPU each read is a host sync). A member
that went non-finite is found there: it is logged up to its first non-finite step, ends
`stopped` and is cut out; until then it computed NaN beside the others, touching nothing of
theirs. Each member logs to its own metric log, exactly as a trial alone does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

import torch

from rnnsweep.jobs import instrument, metric_log
from rnnsweep.jobs.config import TrialConfig
from rnnsweep.jobs.early_stop import DivergenceWatch, PathologyWatch, TrainLossWindow, watch_for
from rnnsweep.jobs.engines import Engine, make_engine
from rnnsweep.jobs.metric_log import MetricLog
from rnnsweep.jobs.outcome import TrainOutcome
from rnnsweep.jobs.shapes import pack_key
from rnnsweep.jobs.tasks import TaskData, load_task


class Checkpoints(Protocol):
    """Where members' states go (jobs/checkpoint.CheckpointStore), by position in the unit."""

    def load(self) -> list[dict | None]: ...

    def save(self, states: dict[int, dict]) -> None: ...


def decay_on_hh(config: TrialConfig) -> float:
    """The weight decay a trial's optimizer applies to its recurrent matrices W_hh."""
    return config.optimizer.weight_decay if config.optimizer.weight_decay_on == "all" else 0.0


def score_and_chance(data: TaskData) -> tuple[str, float]:
    """The validation score the task logs, and what guessing scores on it."""
    if data.kind == "regression":
        return "val_r2", 0.0
    return "val_acc", 0.5 if data.kind == "binary" else 1 / data.n_outputs  # balanced accuracy for binary


def lr_factor(config: TrialConfig, steps_per_epoch: int):
    """Multiplier of the base lr at a given step, per `training.lr_schedule`."""
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


@dataclass
class Member:
    """One trial in the loop: where it logs, and what it has seen since its last evaluation."""

    config: TrialConfig
    log: MetricLog
    position: int  # in the unit as submitted
    watch: DivergenceWatch | PathologyWatch | None  # training.early_stop, or None when it is off
    order: torch.Generator  # its own batch order, seeded as the trial alone
    schedule: Callable[[int], float]  # step -> lr factor
    final: dict[str, float] = field(default_factory=dict)  # the last evaluation's metrics
    window: TrainLossWindow = field(default_factory=TrainLossWindow)  # what the watch judges next

    def lr_at(self, step: int) -> float:
        return self.config.optimizer.lr * self.schedule(step)


def train(
    configs: list[TrialConfig],
    logs: list[MetricLog],
    device: str = "cpu",
    checkpoints: Checkpoints | None = None,
    fused: bool | None = None,
) -> list[TrainOutcome]:
    """Train every member, logging as it goes; outcomes in the order of `configs`.

    With `checkpoints`, members resume from what a dead attempt saved and save as they go.
    `fused` picks the engine: by default a unit of one trains as a plain module, more as one
    fused model.
    """
    keys = {pack_key(c) for c in configs}
    if len(configs) > 1 and (len(keys) != 1 or None in keys):
        raise ValueError("a pack's trials must share one shape (rnnsweep.jobs.shapes.pack_key)")
    return TrainingLoop(configs, logs, device, checkpoints, len(configs) > 1 if fused is None else fused).run()


class TrainingLoop:
    def __init__(self, configs, logs, device: str, checkpoints: Checkpoints | None, fused: bool):
        first = configs[0]
        torch.set_num_threads(max(1, int(first.resources.cpus_per_trial)))
        self.device = torch.device(device)
        self.checkpoints = checkpoints
        # Data: the same for every trial of the sweep (data.seed); batch order from each trial's seed.
        self.data: TaskData = load_task(first)
        to_device = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        self.x_train, self.y_train = to_device(self.data.x_train), to_device(self.data.y_train)
        self.x_val, self.y_val = to_device(self.data.x_val), to_device(self.data.y_val)
        self.batch = first.training.batch_size
        self.steps_per_epoch = math.ceil(len(self.x_train) / self.batch)
        self.evaluate_after = eval_points(self.steps_per_epoch, first.evals_per_epoch)
        self.epochs = first.epochs
        self.target_std = instrument.target_std(self.y_val, self.data.kind)  # what pred_std is compared with

        self.outcomes: dict[int, TrainOutcome] = {}  # position -> how that member ended
        self.saved_ended: set[int] = set()  # members whose ending a checkpoint already holds
        self.members = [
            Member(
                c,
                log,
                i,
                watch_for(c.training, decay_on_hh(c), self.target_std, *score_and_chance(self.data)),
                torch.Generator().manual_seed(c.seed),
                lr_factor(c, self.steps_per_epoch),
            )
            for i, (c, log) in enumerate(zip(configs, logs, strict=True))
        ]
        self.pending: list[tuple[int, int, torch.Tensor, list[float]]] = []  # (step, epoch, [losses; norms], lrs)
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []  # (outputs, targets) since the last evaluation
        self.permutations: torch.Tensor | None = None  # (M, n_train): each member's order this epoch
        self.step, self.first_epoch, self.first_index = 0, 1, 0
        self.engine: Engine | None = None  # none when every member had already ended
        self._start(checkpoints.load() if checkpoints is not None else [None] * len(configs), fused)

    # -- start: fresh, or where a dead attempt left off --------------------------------

    def _start(self, saved: list[dict | None], fused: bool) -> None:
        for member, state in zip(list(self.members), saved, strict=True):
            if state is not None and "ended" in state:  # it ended before the attempt died
                self.outcomes[member.position] = TrainOutcome(**state["ended"])
                self.saved_ended.add(member.position)
                self.members.remove(member)
        # Members resume together or not at all: from one step, in one engine's form.
        states = [saved[m.position] for m in self.members]
        kind = "fused" if fused else "module"
        resume = bool(states) and all(
            s is not None and s["engine"] == kind and s["step"] == states[0]["step"] for s in states
        )
        if not self.members:
            return
        configs = [m.config for m in self.members]
        self.engine = make_engine(configs, self.data, self.device, fused, states if resume else None)
        if resume:
            self._restore(states)
        else:
            self._baseline()

    def _baseline(self) -> None:
        baseline = {"target_std": self.target_std}
        if self.data.kind != "regression":  # chance level for the diagnosis: 1/n_classes
            baseline["n_classes"] = 2 if self.data.kind == "binary" else self.data.n_outputs
        for member, final in zip(self.members, self._measure(before=None), strict=True):
            member.final = final
            member.log.add(0, 0, final | baseline)
            if member.watch is not None:
                member.watch.baseline(final)

    def _restore(self, states: list[dict]) -> None:
        first = states[0]
        torch.set_rng_state(first["torch_rng"])  # after the models are built: dropout draws on
        self.step, self.first_epoch, self.first_index = first["step"], first["epoch"], first["index"]
        if first["permutation"] is not None:
            self.permutations = torch.stack([s["permutation"] for s in states]).to(self.device)
        if first["seen_outputs"] is not None:
            self.seen = [
                (
                    torch.stack([s["seen_outputs"] for s in states]).to(self.device),
                    torch.stack([s["seen_targets"] for s in states]).to(self.device),
                )
            ]
        for member, state in zip(self.members, states, strict=True):
            member.order.set_state(state["order_rng"])
            member.final = state["final"]
            member.window.restore(state["window"])
            if member.watch is not None and state["watch"] is not None:
                member.watch.restore(state["watch"])

    # -- the loop ----------------------------------------------------------------------

    def run(self) -> list[TrainOutcome]:
        last_flush, flushed_at = self.step, time.monotonic()
        for epoch in range(self.first_epoch, self.epochs + 1):
            if not self.members:
                break
            if self.permutations is None:
                orders = [torch.randperm(len(self.x_train), generator=m.order) for m in self.members]
                self.permutations = torch.stack(orders).to(self.device)
            for index in range(self.first_index, self.steps_per_epoch):
                self._train_step(epoch, index)
                if self.members and metric_log.chunk_due(self.step - last_flush, flushed_at):
                    self._read_back()
                    self._flush(epoch, index)
                    last_flush, flushed_at = self.step, time.monotonic()
                if not self.members:
                    break
            self.permutations, self.first_index = None, 0
        self._read_back()
        for member in self.members:
            self._end(member, TrainOutcome("finished", "", self.step, member.final))
        return [self.outcomes[i] for i in range(len(self.outcomes))]

    def _train_step(self, epoch: int, index: int) -> None:
        rows = self.permutations[:, index * self.batch : (index + 1) * self.batch]  # (M, B): each member's own batch
        x, y = self.x_train[rows], self.y_train[rows]
        lrs = [m.lr_at(self.step) for m in self.members]
        losses, norms, outputs = self.engine.forward_backward(x, y)
        self.step += 1
        self.pending.append((self.step, epoch, torch.stack([losses, norms]), lrs))
        if self.data.kind != "regression":
            self.seen.append((outputs, y))
        evaluating = index in self.evaluate_after
        before = instrument.snapshot(self.engine.parameters()) if evaluating else None
        self.engine.step(lrs)
        if evaluating:
            kept = self._read_back()
            if self.members:
                self._evaluate(epoch, before if kept is None else [b[kept] for b in before])

    def _read_back(self) -> torch.Tensor | None:
        """Log the steps since the last read, all members at once; a member that went non-finite
        is logged up to that step and cut out. Returns the kept members' indices if any were cut."""
        if not self.pending:
            return None
        values = torch.stack([v for _, _, v, _ in self.pending]).tolist()  # (steps, 2, M): one host sync
        stopped = []
        for i, member in enumerate(self.members):
            for (step, epoch, _, lrs), (losses, norms) in zip(self.pending, values, strict=True):
                loss, norm = losses[i], norms[i]
                row = {"train_loss": loss, "grad_norm": norm, "lr": lrs[i]}
                if not (math.isfinite(loss) and math.isfinite(norm)):
                    member.log.add(step, epoch, row | {"nonfinite": 1.0})
                    what = "train loss" if not math.isfinite(loss) else "gradient norm"
                    self._end(member, TrainOutcome("stopped", f"non-finite {what} at step {step}", step, member.final))
                    stopped.append(i)
                    break
                member.log.add(step, epoch, row)
                member.window.add(loss)
        self.pending = []
        return self._cut(stopped)

    def _evaluate(self, epoch: int, before: list[torch.Tensor]) -> None:
        stopped = []
        for i, (member, final) in enumerate(zip(self.members, self._measure(before), strict=True)):
            member.final = final
            window = member.window.close()
            reason = member.watch.observe(window, final) if member.watch is not None and window is not None else None
            member.log.add(self.step, epoch, final | ({"early_stopped": 1.0} if reason else {}))
            if reason:
                self._end(member, TrainOutcome("stopped", reason, self.step, final))
                stopped.append(i)
        self._cut(stopped)

    @torch.no_grad()
    def _measure(self, before: list[torch.Tensor] | None) -> list[dict[str, float]]:
        """Every member's evaluation metrics, read back in one go (plus the task scores')."""
        kind = self.data.kind
        outputs, val_losses = self.engine.evaluate(self.x_val, self.y_val)
        parameters = self.engine.parameters()
        columns = {
            "val_loss": val_losses,
            "pred_std": instrument.prediction_std(outputs, kind),
            "weight_norm": instrument.weight_norms(parameters),
            **instrument.recurrent_sigmas(self.engine.recurrent_weights()),
        }
        if before is not None:
            columns["update_ratio"] = instrument.update_ratios(before, parameters)
        columns["finite"] = torch.isfinite(outputs).flatten(1).all(1).float()
        values = dict(zip(columns, torch.stack([c.float() for c in columns.values()]).tolist(), strict=True))
        seen_outputs, seen_targets = self._seen()
        self.seen = []
        finals = []
        for i in range(len(self.members)):
            metrics = {name: column[i] for name, column in values.items() if name != "finite"}
            if values["finite"][i]:
                metrics |= instrument.task_scores(outputs[i], self.y_val, kind, "val")
            if seen_outputs is not None:
                metrics |= instrument.task_scores(seen_outputs[i], seen_targets[i], kind, "train")
            finals.append(metrics)
        return finals

    def _seen(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Every member's training outputs and targets since the last evaluation, (M, n, ...) each."""
        if not self.seen:
            return None, None
        return torch.cat([o for o, _ in self.seen], dim=1), torch.cat([t for _, t in self.seen], dim=1)

    # -- members ending ----------------------------------------------------------------

    def _end(self, member: Member, outcome: TrainOutcome) -> None:
        self.outcomes[member.position] = outcome
        member.log.flush()

    def _cut(self, stopped: list[int]) -> torch.Tensor | None:
        """Drop stopped members (positions in self.members) from the engine and every per-member tensor."""
        if not stopped:
            return None
        keep = [i for i in range(len(self.members)) if i not in set(stopped)]
        self.members = [self.members[i] for i in keep]
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        if self.members:
            self.engine.keep(index)
            self.permutations = self.permutations[index]
            self.seen = [(o[index], t[index]) for o, t in self.seen]
        return index

    # -- chunks and checkpoints --------------------------------------------------------

    def _flush(self, epoch: int, index: int) -> None:
        for member in self.members:
            member.log.flush()
        if self.checkpoints is None or not self.members:
            return
        # where the next attempt starts: this epoch's next batch, or the next epoch
        epoch_done = index + 1 == self.steps_per_epoch
        seen_outputs, seen_targets = (None, None) if not self.seen else (t.cpu() for t in self._seen())
        torch_rng = torch.get_rng_state()
        states: dict[int, dict] = {}
        for i, (member, engine_state) in enumerate(zip(self.members, self.engine.member_states(), strict=True)):
            states[member.position] = {
                "engine": self.engine.kind,
                "step": self.step,
                "epoch": epoch + 1 if epoch_done else epoch,
                "index": 0 if epoch_done else index + 1,
                "permutation": None if epoch_done else self.permutations[i].cpu(),
                **engine_state,
                "torch_rng": torch_rng,
                "order_rng": member.order.get_state(),
                "seen_outputs": None if seen_outputs is None else seen_outputs[i],
                "seen_targets": None if seen_targets is None else seen_targets[i],
                "final": member.final,
                "window": member.window.state(),
                "watch": None if member.watch is None else member.watch.state(),
            }
        for position in set(self.outcomes) - self.saved_ended:
            states[position] = {"ended": asdict(self.outcomes[position])}
            self.saved_ended.add(position)
        self.checkpoints.save(states)
