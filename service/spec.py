"""grid.toml: parse, validate, expand into trial configs.

A list value is a grid axis; the grid is the cartesian product of its axes. Keys whose
value is itself a pair (`optimizer.betas`) take a list of pairs as an axis. Validation is
strict and reports every problem at once, as `grid.toml: optimizer.lr[2]: must be > 0`,
with a "did you mean" for misspelled keys; nothing is expanded while any error remains.

`[[trial]]` tables list trials one by one, for combinations no product of axes can express
(a "zip"): each table holds keys of the other tables (`optimizer.lr = 3e-3`, or
`optimizer = { weight_decay = 0.1 }`) and is one trial: the base tables' values with those
keys replaced. Inside a [[trial]] a value is one value, never an axis (a list there is
refused, except a pair like `optimizer.betas = [0.5, 0.999]`), so one table is one trial; an
axis the base tables keep still applies to every [[trial]] that does not set its key (a
`seeds = [0, 1, 2]` in [sweep] runs each listed trial three times). With [[trial]] tables
the base alone is no trial: write an empty `[[trial]]` to keep it. A [[trial]] may also say
`fixes = "<run_id>"`: the run it follows up (`rnnsweep fix` writes these). Errors name the
table by its index from 0, as `grid.toml: trial[2].optimizer.lr: must be > 0 (got -1.0)`.

The keys a grid may hold are in grid_keys; the checks that validate it, in grid_checks.
"""

from __future__ import annotations

import itertools
import math
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnsweep.jobs.config import TrialConfig
from rnnsweep.service.errors import GridError
from rnnsweep.service.grid_checks import (
    check_distinct,
    check_name,
    check_task_needs,
    check_user_code,
    resolve_data_paths,
    resolve_user_code,
    single,
    validate_tables,
    validate_trial_tables,
)
from rnnsweep.service.grid_keys import FIXES, FREE_FORM, SECTIONS, SINGLE_VALUED, SWEEP_ONLY, TRIAL_FIELDS, TRIAL_TABLE

MAX_GRID_BYTES = 1 << 20  # tomllib can be made to chew on a huge file; nobody's grid is 1 MiB
MAX_TRIALS_WITHOUT_YES = 10_000


@dataclass(frozen=True)
class Grid:
    name: str
    path: Path
    text: str
    axes: dict[str, list]  # "optimizer.lr" -> its values, only keys with 2 or more values
    trials: list[TrialConfig]
    storage: str = ""  # [sweep] storage, made absolute when it is a path; "" = the default


def load_grid(path: str | Path, allow_large: bool = False) -> Grid:
    """Read, validate and expand a grid file; raises GridError listing every problem."""
    path = Path(path)
    label = str(path)
    text = _read_text(path, label)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise GridError([f"{label}: TOML syntax error: {e}"]) from None
    return build_grid(raw, path, text, allow_large)


def _read_text(path: Path, label: str) -> str:
    """At most MAX_GRID_BYTES + 1 bytes of a regular file: a device (/dev/zero), a pipe or a
    file that grows while read can neither hang nor flood the parser; the size stat reports is
    not trusted."""
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError
        if not stat.S_ISREG(mode):  # checked before opening: opening a FIFO waits for a writer
            raise GridError([f"{label}: not a regular file (a device, pipe or socket); give a grid file"])
        with open(path, "rb") as f:
            data = f.read(MAX_GRID_BYTES + 1)
        if len(data) > MAX_GRID_BYTES:
            raise GridError([f"{label}: file is larger than {MAX_GRID_BYTES >> 20} MiB; is it really a grid?"])
        return data.decode("utf-8")
    except FileNotFoundError:
        raise GridError([f"{label}: no such file"]) from None
    except IsADirectoryError:
        raise GridError([f"{label}: is a directory, not a grid file"]) from None
    except PermissionError:
        raise GridError([f"{label}: cannot read file (permission denied)"]) from None
    except UnicodeDecodeError:
        raise GridError([f"{label}: not UTF-8 text"]) from None


def build_grid(raw: dict, path: Path, text: str = "", allow_large: bool = False) -> Grid:
    label = str(path)
    errors: list[str] = []
    raw = dict(raw)
    listed = raw.pop(TRIAL_TABLE, None)
    values = validate_tables(label, "", raw, errors)  # (section, key) -> validated values
    overrides = None if listed is None else validate_trial_tables(label, listed, errors)
    if errors:
        raise GridError(errors)

    name = single(values, ("sweep", "name"), "") or path.stem
    check_name(label, name, errors)
    # Without [[trial]] one set of values, expanded as a product; with it, one set per table.
    value_sets = [values] if overrides is None else [_merged(values, found) for found in overrides]
    digests: dict[str, str] = {}
    per_set_errors = []
    for chosen in value_sets:
        found: list[str] = []
        digests |= resolve_data_paths(label, path, chosen, found)
        check_task_needs(label, chosen, found)
        resolve_user_code(label, path, chosen, found)
        per_set_errors.append(found)
    errors += _name_trials(label, per_set_errors, listed is not None)
    if errors:
        raise GridError(errors)

    size = sum(math.prod(len(v) for k, v in chosen.items() if k != FIXES) for chosen in value_sets)
    if size > MAX_TRIALS_WITHOUT_YES and not allow_large:
        shape = " x ".join(f"{k}: {len(v)}" for k, v in _axes(value_sets[:1], []).items())
        if overrides is not None:
            shape = f"{len(overrides)} [[trial]] tables x the base's axes: {shape}"
        raise GridError(
            [
                f"{label}: grid expands to {size:,} trials ({shape}); pass --yes to submit more than {MAX_TRIALS_WITHOUT_YES:,}"
            ]
        )
    storage = single(values, ("sweep", "storage"), "")
    if storage and "://" not in storage:
        storage = str((path.parent / storage).resolve())
    trials, origin = [], []
    for index, chosen in enumerate(value_sets):
        expanded = list(_expand(name, chosen, digests))
        trials += expanded
        origin += [index] * len(expanded)
    if overrides is not None:
        check_distinct(label, trials, origin, errors)
    check_user_code(label, trials, errors)
    if errors:
        raise GridError(errors)
    return Grid(name, path, text, _axes(value_sets, trials), trials, storage)


def _merged(values: dict, found: dict) -> dict:
    """The base values with one [[trial]]'s keys replaced."""
    return {**values, **found}


def _name_trials(label: str, per_set_errors: list[list[str]], listed: bool) -> list[str]:
    """Checks that ran once per [[trial]]: a problem every trial shares is the base's, said once;
    any other names its trial, as `grid.toml: trial[2].data.seq_len: ...`."""
    if not listed:
        return per_set_errors[0]
    shared = set.intersection(*map(set, per_set_errors)) if per_set_errors else set()
    named = [line for line in per_set_errors[0] if line in shared] if per_set_errors else []
    for index, found in enumerate(per_set_errors):
        named += [
            f"{label}: {TRIAL_TABLE}[{index}].{line.removeprefix(f'{label}: ')}" for line in found if line not in shared
        ]
    return named


def _axes(value_sets: list[dict], trials: list[TrialConfig]) -> dict[str, list]:
    """Keys that take 2 or more values, each with its values in order: a grid's axes, or with
    [[trial]] tables every key whose value differs between the expanded trials."""
    if len(value_sets) == 1 and FIXES not in value_sets[0]:  # no [[trial]] (or one): as always
        return {f"{s}.{k}": v for (s, k), v in value_sets[0].items() if len(v) > 1}
    keys = dict.fromkeys(key for chosen in value_sets for key in chosen if key != FIXES and key not in SINGLE_VALUED)
    axes = {}
    for section, key in keys:
        seen: list = []
        for trial in trials:
            value = axis_value(trial, f"{section}.{key}")
            if repr(value) not in map(repr, seen):
                seen.append(value)
        if len(seen) > 1:
            axes[f"{section}.{key}"] = seen
    return axes


def _expand(name: str, values: dict[tuple[str, str], list], digests: dict[str, str]):
    """Trials in a stable order: sections as declared, keys in model order, axes nested.
    A file trial's data carries its file's digest (`digests`, by absolute path)."""
    keys = [
        (s, k)
        for s, model in SECTIONS.items()
        for k in model.model_fields
        if (s, k) in values and (s, k) not in SWEEP_ONLY
    ]
    keys += [(table, k) for table in FREE_FORM for (t, k) in values if t == table]  # in the file's order
    fixes = single(values, FIXES, "")
    for combination in itertools.product(*(values[k] for k in keys)):
        chosen = dict(zip(keys, combination, strict=True))
        sections: dict[str, dict] = {s: {} for s in SECTIONS if s != "sweep"}
        top: dict[str, Any] = {"sweep": name}  # trial-level keys the grid leaves out take TrialKeys' defaults
        if fixes:
            top["fixes"] = fixes
        for (section, key), value in chosen.items():
            if section == "sweep":
                top[TRIAL_FIELDS[key]] = value
            elif section == "params":
                top.setdefault("params", {})[key] = value
            elif section == "model.args":
                sections["model"].setdefault("args", {})[key] = value
            else:
                sections[section][key] = value
        if top.get("task") == "file" and sections["data"].get("path") in digests:
            top["data_digest"] = digests[sections["data"]["path"]]
        yield TrialConfig(**top, **{s: SECTIONS[s](**v) for s, v in sections.items()})


def axis_value(trial: TrialConfig, dotted: str):
    """The value a trial took on an axis named like "optimizer.lr", "sweep.seeds", "model.args.hidden" or "params.lr"."""
    table, _, key = dotted.rpartition(".")
    if table == "sweep":
        return getattr(trial, TRIAL_FIELDS[key])
    if table == "params":
        return trial.params[key]
    if table == "model.args":
        return trial.model.args[key]
    return getattr(getattr(trial, table), key)
