"""The trial config: the one thing that crosses from the driver into a Ray worker.

Every default lives here, one comment per knob. A grid file overrides any of them; a list
value in the grid is an axis (see `rnnsweep.service.spec`). Models are frozen and strict:
an unknown key, a string where a number belongs or a NaN learning rate is an error, never
silently coerced or dropped.

This module must stay importable without torch: the CLI imports it at start-up.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

TaskName = Literal["events", "word_vectors", "sequences4", "file"]
Probability = Annotated[float, Field(ge=0, lt=1)]
# A value of a free-form table ([model.args], [params]): what TOML can say in one scalar.
FreeValue = bool | int | float | str  # finite, like every float here (Section)
SWEEP_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # also a folder name in storage: no '/', no '..'
CALLABLE = r"^$|^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"  # "module:function", or "" for none
# Upper bounds on integers. The analysis views cast config integers to INTEGER (32 bits), so
# nothing may reach 2**31; sizes get tighter bounds where memory makes larger values absurd.
INT32_MAX = 2**31 - 1
MAX_ROWS = 10_000_000  # sequences per split: x alone is rows * seq_len * n_features float32s
MAX_STEPS = 100_000  # time steps per sequence: each is one sequential cell call
MAX_WIDTH = 16_384  # features, hidden units, target dimensions: W_hh of 16384 units is 1 GiB per gate
MAX_EPOCHS = 1_000_000  # epochs * steps per epoch stays far below the views' BIGINT steps
MIN_CPUS = 0.01  # Ray rounds smaller fractions to nothing and the task then never schedules
# The events task (jobs/tasks/events.py), checked by the driver before anything trains: an event
# is a burst of at most 1.2 a step whose window sum exceeds 5, so 4 steps can never hold one.
EVENTS_MIN_SEQ_LEN = 5


def events_class_sizes(n: int, positive_rate: float) -> tuple[int, int]:
    """Positive and negative sequences in an events split of n: at least one positive."""
    positives = max(1, round(n * positive_rate))
    return positives, n - positives


class Section(BaseModel):
    """Base of every config table: frozen, strict, no unknown keys, finite floats."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class DataConfig(Section):
    seed: int = Field(0, ge=0, le=INT32_MAX)  # dataset seed: every trial of a sweep sees the same data
    n_train: int = Field(2048, gt=0, le=MAX_ROWS)  # training sequences (words, for word_vectors)
    n_val: int = Field(512, gt=0, le=MAX_ROWS)  # validation sequences
    seq_len: int = Field(40, gt=0, le=MAX_STEPS)  # time steps per sequence (padded word length)
    n_features: int = Field(4, gt=0, le=MAX_WIDTH)  # input channels (events, sequences4)
    positive_rate: float = Field(0.05, gt=0, lt=1)  # events: fraction of positive sequences
    noise: float = Field(0.3, ge=0)  # std of the Gaussian noise on every channel
    target_dim: int = Field(32, gt=0, le=MAX_WIDTH)  # word_vectors: size of the regressed vector
    path: str = ""  # file task: .npz or .parquet with your sequences (README: "Your own data")
    val_fraction: float = Field(0.2, gt=0, lt=1)  # file task: held out when no val split is given


class ModelConfig(Section):
    cell: Literal["rnn", "lstm", "gru"] = "lstm"  # rnn = Elman RNN with tanh
    hidden: int = Field(64, gt=0, le=MAX_WIDTH)  # units per direction
    layers: int = Field(1, ge=1, le=64)  # stacked recurrent layers; 64 is already far past useful
    bidirectional: bool = False
    dropout: float = Field(0.0, ge=0, lt=1)  # between stacked layers (torch semantics)
    # Your own model instead of the built-in one: "module:function" in the sweep's code folder,
    # called function(n_features=..., n_outputs=..., **args) -> nn.Module (README: "Your own model").
    # cell, hidden, layers, bidirectional and dropout are then not read.
    factory: str = Field("", pattern=CALLABLE)
    args: dict[str, FreeValue] = {}  # [model.args]: keyword arguments for the factory; lists are axes


class OptimizerConfig(Section):
    name: Literal["adam", "sgd", "rmsprop"] = "adam"
    lr: float = Field(1e-3, gt=0)
    # A pair, so in a grid an axis of betas is a list of pairs: [[0.9, 0.999], [0.5, 0.999]].
    betas: tuple[Probability, Probability] = Field((0.9, 0.999), strict=False)
    momentum: float = Field(0.0, ge=0, lt=1)  # sgd and rmsprop
    # Coupled L2 (added to the gradient, torch's `weight_decay`), on weight matrices only:
    # biases are never decayed.
    weight_decay: float = Field(0.0, ge=0)
    # "non_recurrent" leaves the recurrent matrices W_hh alone: the fix for seed 000, where
    # L2 on W_hh pushes its largest singular value below 1 and memory fades.
    weight_decay_on: Literal["all", "non_recurrent"] = "all"


class TrainingConfig(Section):
    batch_size: int = Field(64, gt=0, le=1_000_000)  # a batch is at most a split (MAX_ROWS), in practice far less
    clip_grad_norm: float = Field(0.0, ge=0)  # max total gradient norm; 0 = off
    lr_schedule: Literal["constant", "cosine", "step"] = "constant"
    lr_step_epochs: int = Field(10, gt=0, le=MAX_EPOCHS)  # step schedule: multiply lr by lr_gamma every N epochs
    lr_gamma: float = Field(0.1, gt=0, le=1)
    pos_weight: float = Field(1.0, gt=0)  # binary tasks: loss weight of the positive class
    # "diverged": stop a trial once its training loss has clearly diverged; "pathology": also
    # once L2 has collapsed its recurrent weights or its output is constant (jobs/early_stop.py)
    early_stop: Literal["off", "diverged", "pathology"] = "off"


class ResourcesConfig(Section):
    cpus_per_trial: float = Field(1.0, ge=MIN_CPUS, le=4096)  # Ray resources; fractions allowed
    gpus_per_trial: float = Field(0.0, ge=0, le=64)  # 0 = none, else at least MIN_CPUS (as for CPUs)
    max_retries: int = Field(2, ge=0, le=100)  # Ray re-runs a trial whose worker or node died
    # Trials of one shape train as one fused model, this many per Ray task: 0 = chosen from
    # the device and model size, 1 = never packed (`--no-pack` too).
    pack_size: int = Field(0, ge=0, le=1024)

    @field_validator("gpus_per_trial")
    @classmethod
    def _gpus_none_or_a_real_fraction(cls, value: float) -> float:
        if 0 < value < MIN_CPUS:
            raise ValueError(f"must be 0 or >= {MIN_CPUS:g}")
        return value


class TrialKeys(Section):
    """The trial-level keys: a grid sets them in its [sweep] table, where a list of seeds is
    `seeds` (rnnsweep.service.grid_keys derives that table from this one)."""

    task: TaskName = "events"
    seed: int = Field(0, ge=0, le=INT32_MAX)  # model initialisation and batch order
    epochs: int = Field(10, gt=0, le=MAX_EPOCHS)  # passes over the training set
    evals_per_epoch: int = Field(1, ge=1, le=10_000)  # validation passes per epoch
    # Your own training loop instead of rnnsweep's: "module:function" in the code folder, called
    # function(config: dict, run: rnnsweep.jobs.run.Run) with [params] as config (README: "Your own
    # training code"). task, data, model, optimizer and training are then not read.
    entrypoint: str = Field("", pattern=CALLABLE)
    # The folder your factory or entrypoint is imported from, shipped to every Ray worker;
    # default: the grid file's folder. Where code lives, not what it computes: not in the run_id.
    code: str = ""


class TrialConfig(TrialKeys):
    """One fully resolved trial. Its hash (minus resources) is the run_id."""

    sweep: str
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    training: TrainingConfig = TrainingConfig()
    resources: ResourcesConfig = ResourcesConfig()
    params: dict[str, FreeValue] = {}  # [params]: free-form hyper-parameters handed to an entrypoint
    # A file task's sha256 of data.path's contents, set by rnnsweep.service.spec (no grid key), so
    # a file whose contents changed is a new run, never a reused one; "" for every other task.
    data_digest: str = Field("", pattern=r"^$|^[0-9a-f]{64}$")
    # The run this trial follows up (`rnnsweep fix` writes it into each [[trial]] of a SWEEP-fix.toml),
    # so SQL joins a run to its fix (runs.config ->> '$.fixes'); "" for every other trial. Part of
    # the run_id: two follow-ups with the same hyper-parameters still answer for different runs.
    fixes: str = Field("", pattern=r"^$|^[0-9a-f]{16}$")

    @property
    def run_id(self) -> str:
        return run_id_of(self)


LATER_KEYS = [
    ("training", "early_stop", "off"),
    (None, "data_digest", ""),  # set for file tasks only: every other run_id is unchanged
    ("model", "factory", ""),
    ("model", "args", {}),
    (None, "entrypoint", ""),
    (None, "params", {}),
    (None, "fixes", ""),
]


def run_id_of(config: TrialConfig) -> str:
    """Stable 16-hex-digit hash of everything that shapes a run's results.

    Resources are left out: where a trial runs does not change what it computes, so
    moving a sweep from 1 CPU to a GPU re-uses its finished runs.
    """
    identity = config.model_dump(mode="json", exclude={"resources", "code"})
    # Keys that came later are left out of the identity while they hold their defaults, so
    # every run_id computed before they existed stays the same and old sweeps resume onto
    # their runs.
    for section, key, default in LATER_KEYS:
        where = identity[section] if section else identity
        if where[key] == default:
            del where[key]
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
