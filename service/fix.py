"""`rnnsweep fix`: turn a sweep's diagnoses into a follow-up grid, and compare before with after.

For every run not labelled healthy, the fixes view (analysis/80_fixes.sql) says, beside its
text, which grid changes to try (`changes`: one or more follow-up trials, each a list of
{key, value}) and which advice no grid key can carry (`manual`, each with why). This module
never parses the English: it applies those changes to the run's own stored config and writes
the result as a grid of `[[trial]]` tables, each with `fixes = "<run_id>"`, the run it follows
up. That key is stored in the follow-up's config (TrialConfig.fixes, part of its run_id), so
SQL joins before and after: `runs.config ->> '$.fixes'` is the original's run_id.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from rnnsweep.jobs.config import TrialConfig
from rnnsweep.service.errors import UserError
from rnnsweep.service.grid_keys import SECTIONS, TRIAL_FIELDS
from rnnsweep.service.query import run_query
from rnnsweep.service.spec import Grid, build_grid

FIX_SUFFIX = "-fix"
TO_FIX = """
select d.run_id, d.label, d.fix, f.changes, f.manual, r.config, r.trial_index
from diagnosis d
join runs r using (run_id)
left join fixes f using (run_id, label)
where d.sweep = $sweep and d.label != 'healthy'
order by r.trial_index
"""
SWEEP_ROW = "select grid_path, grid_text from sweeps where name = $sweep"
# The fix_outcomes view (analysis/95_fix_outcomes.sql) pairs each follow-up with the run it fixes.
PAIRS = """
select o.run_id, o.label_before, o.label_after, o.score, o.best_before, o.best_after, o.fixed, o.follow_up,
    case when o.follow_up_status <> 'finished' then o.follow_up_status end as note
from fix_outcomes o
where o.follow_up_sweep = $sweep
order by o.follow_up_index
"""
# The fixed sweep's runs: the before side of a run listed without a trial.
ORIGINALS = """
select d.run_id, d.label as label_before, res.score, res.best_score as best_before
from diagnosis d
join run_results res using (run_id)
where d.sweep = $sweep
"""
PAIR_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("label_before", pa.string()),
        ("label_after", pa.string()),
        ("score", pa.string()),
        ("best_before", pa.float64()),
        ("best_after", pa.float64()),
        ("fixed", pa.bool_()),
        ("follow_up", pa.string()),
        ("note", pa.string()),
    ]
)
# The grid keys a trial config holds, by section; [sweep] keys under their grid names.
TOP_KEYS = {field: key for key, field in TRIAL_FIELDS.items()}  # "seed" -> "seeds"


@dataclass(frozen=True)
class FollowUp:
    """One trial of the follow-up grid: the run it fixes, why, and what it changes."""

    fixes: str
    label: str
    fix: str  # the diagnosis's text
    changes: dict[str, Any]  # "optimizer.lr" -> 0.003
    original: TrialConfig  # the run's config
    config: TrialConfig  # with the changes applied


@dataclass(frozen=True)
class Listed:
    """Advice of a run's fix that no trial carries, and why."""

    run_id: str
    label: str
    advice: str
    why: str


@dataclass(frozen=True)
class FixPlan:
    sweep: str  # the sweep diagnosed
    name: str  # the follow-up sweep's name
    path: Path  # where its grid goes
    text: str  # the follow-up grid
    follow_ups: list[FollowUp]
    listed: list[Listed]


def plan_fix(warehouse: Path, sweep: str, output: Path | None = None) -> FixPlan:
    """The follow-up grid for a sweep's runs not labelled healthy (raises UserError if none)."""
    rows = run_query(warehouse, SWEEP_ROW, {"sweep": sweep}).to_pylist()
    if not rows:
        raise UserError(f"no sweep named {sweep!r} in {warehouse}; `rnnsweep status` lists them")
    if not rows[0]["grid_text"]:
        raise UserError(
            f"sweep {sweep!r} was imported: its runs' configs are not rnnsweep grids; "
            f"`rnnsweep diagnose {sweep}` gives the fixes to apply by hand"
        )
    follow_ups, listed = [], []
    for row in run_query(warehouse, TO_FIX, {"sweep": sweep}).to_pylist():
        config = TrialConfig.model_validate_json(row["config"])
        for trial in json.loads(row["changes"] or "[]"):
            changes = {change["key"]: change["value"] for change in trial}
            follow_ups.append(
                FollowUp(row["run_id"], row["label"], row["fix"], changes, config, _applied(config, changes))
            )
        listed += [
            Listed(row["run_id"], row["label"], m["advice"], m["why"]) for m in json.loads(row["manual"] or "[]")
        ]
        if not row["changes"] and not row["manual"]:
            listed.append(Listed(row["run_id"], row["label"], row["fix"] or "", "its label names no fix"))
    if not follow_ups and not listed:
        raise UserError(f"every run of sweep {sweep!r} is healthy (or not diagnosed yet): nothing to fix")
    name = sweep[: 64 - len(FIX_SUFFIX)] + FIX_SUFFIX
    path = output or Path(rows[0]["grid_path"]).parent / f"{name}.toml"
    text = fix_grid_text(sweep, name, follow_ups, listed) if follow_ups else ""
    return FixPlan(sweep, name, path, text, follow_ups, listed)


def _applied(config: TrialConfig, changes: dict[str, Any]) -> TrialConfig:
    """The config with dotted grid keys set (validated: a change the config refuses is a bug)."""
    data = config.model_dump(mode="json")
    for dotted, value in changes.items():
        section, _, key = dotted.rpartition(".")
        data[section][key] = value
    return TrialConfig.model_validate(data)


def fix_grid_text(sweep: str, name: str, follow_ups: list[FollowUp], listed: list[Listed] = ()) -> str:
    """A grid of one [[trial]] per follow-up: the keys every follow-up shares in the base tables
    (defaults left out), the rest in each [[trial]], with `fixes` and the reason as a comment;
    the advice no trial carries closes it, as comments."""
    flat = [_grid_keys(f.config) for f in follow_ups]
    keys = list(dict.fromkeys(k for trial in flat for k in trial))
    shared = {k: flat[0][k] for k in keys if all(k in t and t[k] == flat[0][k] for t in flat)}
    defaults = _grid_keys(TrialConfig(sweep=name))
    lines = [
        f"# Follow-up trials for sweep {sweep}, written by `rnnsweep fix {sweep}`: one [[trial]] per",
        "# fix of a run not labelled healthy; `fixes` is that run's run_id.",
        "",
        "[sweep]",
        f"name = {_toml(name)}",
    ]
    tables: dict[str, list[str]] = {}
    for dotted, value in shared.items():
        if defaults.get(dotted) != value:
            table, _, key = dotted.rpartition(".")
            tables.setdefault(table, []).append(f"{key} = {_toml(value)}")
    lines += tables.pop("sweep", [])
    for table, body in tables.items():
        lines += ["", f"[{table}]", *body]
    for follow_up, trial in zip(follow_ups, flat, strict=True):
        lines += ["", f"# {follow_up.label} run {follow_up.fixes}: {_said(follow_up)}", "[[trial]]"]
        lines.append(f"fixes = {_toml(follow_up.fixes)}")
        lines += [
            f"{k} = {_toml(v)}" for k in keys if k not in shared and (v := trial.get(k, defaults.get(k))) is not None
        ]
    if listed:
        lines += ["", "# Not tried here, and why:"]
        lines += [f"# {item.label} run {item.run_id}: {item.advice}: {item.why}" for item in listed]
    return "\n".join(lines) + "\n"


def _said(follow_up: FollowUp) -> str:
    """What the follow-up changes, "optimizer.lr 3.0 -> 0.3, training.clip_grad_norm 0.0 -> 1.0"."""
    was = _grid_keys(follow_up.original)
    return ", ".join(f"{key} {_toml(was[key])} -> {_toml(value)}" for key, value in follow_up.changes.items())


def _grid_keys(config: TrialConfig) -> dict[str, Any]:
    """A trial config as the grid keys that give it: "optimizer.lr" -> 0.003, "sweep.seeds" -> 0,
    "model.args.hidden" -> 8. Keys no grid sets (sweep, data_digest, fixes) are left out."""
    data = config.model_dump(mode="json")
    keys = {f"sweep.{TOP_KEYS[field]}": data[field] for field in TOP_KEYS}
    for section in SECTIONS:
        if section != "sweep":
            keys |= {f"{section}.{k}": v for k, v in data[section].items() if k != "args"}
    keys |= {f"model.args.{k}": v for k, v in data["model"]["args"].items()}
    keys |= {f"params.{k}": v for k, v in data["params"].items()}
    return keys


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(_toml, value)) + "]"
    return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's


def write_fix_grid(plan: FixPlan) -> Grid:
    """Write the follow-up grid and load it back as `submit` will (validated)."""
    plan.path.parent.mkdir(parents=True, exist_ok=True)
    plan.path.write_text(plan.text)
    return build_grid(tomllib.loads(plan.text), plan.path, plan.text)


def before_after(warehouse: Path, plan: FixPlan) -> pa.Table:
    """One row per follow-up trial (and per listed run without one): the original run's label and
    best validation score, the follow-up's, and whether the fix worked (the follow-up is healthy)."""
    table = run_query(warehouse, PAIRS, {"sweep": plan.name}).to_pylist()
    tried = {r["run_id"] for r in table}
    originals = {r["run_id"]: r for r in run_query(warehouse, ORIGINALS, {"sweep": plan.sweep}).to_pylist()}
    for item in plan.listed:
        if item.run_id not in tried and item.run_id in originals:
            tried.add(item.run_id)
            why = "; ".join(f"{m.advice}: {m.why}" for m in plan.listed if m.run_id == item.run_id)
            table.append(originals[item.run_id] | {"note": f"no trial: {why}"})
    return pa.Table.from_pylist(table, schema=PAIR_SCHEMA)


def fix_summary(table: pa.Table) -> str:
    """ "2 of 3 fixed (a run counts as fixed when one of its follow-ups is healthy); 1 listed without a trial"."""
    rows = table.to_pylist()
    tried = {r["run_id"] for r in rows if r["follow_up"]}
    fixed = {r["run_id"] for r in rows if r["fixed"]}
    untried = {r["run_id"] for r in rows} - tried
    summary = f"{len(fixed)} of {len(tried)} fixed (a run counts as fixed when a follow-up of it is healthy)"
    return summary + (f"; {len(untried)} listed without a trial" if untried else "")
