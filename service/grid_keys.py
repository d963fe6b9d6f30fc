"""The keys a grid.toml may hold: its tables and their models, the free-form tables, which
keys are one value for the whole sweep or a pair, and the [[trial]] table's own keys."""

from __future__ import annotations

import re

from pydantic import Field, create_model

from rnnsweep.jobs.config import (
    SWEEP_NAME,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    ResourcesConfig,
    Section,
    TrainingConfig,
    TrialKeys,
)

# [sweep] key -> the TrialConfig field it sets: every trial-level key (jobs.config.TrialKeys)
# under its own name, but seeds are plural, since a list of them is the usual axis.
TRIAL_FIELDS = {"seeds" if field == "seed" else field: field for field in TrialKeys.model_fields}

SweepSection = create_model(
    "SweepSection",
    __base__=Section,
    __module__=__name__,
    __doc__="[sweep]: the sweep's name and storage, and the trial-level keys with TrialKeys' types and defaults.",
    name=(str, Field("", pattern=SWEEP_NAME)),  # default: file name
    storage=(str, ""),  # where metric logs go: a path or s3://, gs://... (default: beside the warehouse)
    **{
        key: (TrialKeys.model_fields[field].annotation, TrialKeys.model_fields[field])
        for key, field in TRIAL_FIELDS.items()
    },
)


SECTIONS: dict[str, type[Section]] = {
    "sweep": SweepSection,
    "data": DataConfig,
    "model": ModelConfig,
    "optimizer": OptimizerConfig,
    "training": TrainingConfig,
    "resources": ResourcesConfig,
}
# Free-form tables: any keys, scalar values, lists are axes. In `values` their keys are
# ("model.args", key) and ("params", key).
FREE_FORM = {"model.args": "model.factory", "params": "sweep.entrypoint"}  # table -> the key that reads it
SWEEP_ONLY = {("sweep", key) for key in SweepSection.model_fields if key not in TRIAL_FIELDS}  # not a trial's
SINGLE_VALUED = SWEEP_ONLY | {("sweep", "code")}  # one sweep has one name, storage and code folder: never an axis
PAIR_VALUED = {("optimizer", "betas")}
TRIAL_TABLE = "trial"  # [[trial]]: one table per listed trial
FIXES = ("", "fixes")  # a [[trial]]'s `fixes = "<run_id>"`: TrialConfig.fixes, no table of its own
RUN_ID = re.compile(r"[0-9a-f]{16}")
