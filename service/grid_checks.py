"""The checks on a grid.toml: each table and key validated against its model, then the
checks that need the values together (data files, task needs, your own code, distinct
[[trial]] tables). Each appends `file: key.path: message` lines to `errors`, so every problem
is reported at once."""

from __future__ import annotations

import difflib
import itertools
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rnnsweep.jobs.config import (
    CALLABLE,
    EVENTS_MIN_SEQ_LEN,
    DataConfig,
    FreeValue,
    TrialConfig,
    TrialKeys,
    events_class_sizes,
)
from rnnsweep.service.grid_keys import (
    FIXES,
    FREE_FORM,
    PAIR_VALUED,
    RUN_ID,
    SECTIONS,
    SINGLE_VALUED,
    TRIAL_TABLE,
    SweepSection,
)


def validate_tables(label: str, prefix: str, raw: dict, errors: list[str]) -> dict[tuple[str, str], list]:
    """The tables of a grid (prefix "") or of one [[trial]] (prefix "trial[2].", where every key
    takes one value): (section, key) -> its validated values."""
    values: dict[tuple[str, str], list] = {}
    one = bool(prefix)
    for section, body in raw.items():
        home = [name for name, model in SECTIONS.items() if section in model.model_fields]
        if section == "params" and isinstance(body, dict):
            _validate_free_table(label, "params", body, values, errors, prefix)
        elif section == "model" and isinstance(body, dict) and isinstance(body.get("args"), dict):
            _validate_free_table(label, "model.args", body["args"], values, errors, prefix)
            for key, value in body.items():
                if key != "args":
                    values[(section, key)] = _validate_key(label, section, key, value, errors, prefix)
        elif section not in SECTIONS and home and not isinstance(body, dict):
            errors.append(
                f"{label}: {prefix}{section}: a key of [{home[0]}]; write {home[0]}.{section} = ..."
                if one
                else f"{label}: {section}: a key outside any table; it belongs under [{home[0]}]"
            )
        elif section not in SECTIONS:
            choices = [*SECTIONS, "params", *(["fixes"] if one else [TRIAL_TABLE])]
            errors.append(
                f"{label}: {prefix}{section}: unknown {'key' if one else 'table'}{_did_you_mean(section, choices)}"
            )
        elif not isinstance(body, dict):
            errors.append(
                f"{label}: {prefix}{section}: must be a table ({f'{section}.key = ...' if one else f'[{section}]'})"
            )
        else:
            for key, value in body.items():
                values[(section, key)] = _validate_key(label, section, key, value, errors, prefix)
    return values


def validate_trial_tables(label: str, listed: Any, errors: list[str]) -> list[dict[tuple[str, str], list]]:
    """[[trial]]: for each table, the keys it overrides with their one validated value."""
    if not isinstance(listed, list) or not listed or not all(isinstance(table, dict) for table in listed):
        errors.append(
            f"{label}: {TRIAL_TABLE}: must be [[trial]] tables, one per trial (e.g. [[trial]] optimizer.lr = 3e-3)"
        )
        return []
    overrides = []
    for index, table in enumerate(listed):
        prefix = f"{TRIAL_TABLE}[{index}]."
        table = dict(table)
        fixes = table.pop(FIXES[1], None)
        found = validate_tables(label, prefix, table, errors)
        if fixes is not None:
            if isinstance(fixes, str) and RUN_ID.fullmatch(fixes):
                found[FIXES] = [fixes]
            else:
                errors.append(
                    f"{label}: {prefix}fixes: must be the run_id of the run this trial follows up, 16 hex digits (got {fixes!r})"
                )
        overrides.append(found)
    return overrides


def check_distinct(label: str, trials: list[TrialConfig], origin: list[int], errors: list[str]) -> None:
    """Two [[trial]] tables that give the same trial would be one run: refused."""
    first: dict[str, int] = {}
    for trial, index in zip(trials, origin, strict=True):
        if trial.run_id in first and first[trial.run_id] != index:
            message = (
                f"{label}: {TRIAL_TABLE}[{index}]: the same trial as {TRIAL_TABLE}[{first[trial.run_id]}]; remove one"
            )
            if message not in errors:
                errors.append(message)
        first.setdefault(trial.run_id, index)


def _validate_key(label: str, section: str, key: str, value: Any, errors: list[str], prefix: str = "") -> list:
    """Validate one key's value or axis; returns the validated values (empty on error). With a
    prefix ("trial[2].") the key is in a [[trial]] table and takes one value."""
    model = SECTIONS[section]
    where = f"{label}: {prefix}{section}.{key}"
    if key not in model.model_fields:
        errors.append(f"{where}: unknown key{_did_you_mean(key, model.model_fields)}")
        return []
    is_axis = isinstance(value, list) and (
        (section, key) not in PAIR_VALUED or not value or all(isinstance(v, list) for v in value)
    )
    if prefix and (section, key) in SINGLE_VALUED:
        errors.append(f"{where}: one value for the whole sweep; set it in [sweep], not in a [[trial]]")
        return []
    if is_axis and prefix:
        errors.append(
            f"{where}: a list is an axis, and one [[trial]] table is one trial; write one [[trial]] per value"
        )
        return []
    if is_axis and (section, key) in SINGLE_VALUED:
        errors.append(f"{where}: must be a single value, not a list")
        return []
    if is_axis and not value:
        errors.append(f"{where}: empty list; an axis needs at least one value")
        return []
    validated = []
    for index, item in enumerate(value if is_axis else [value]):
        suffix = f"[{index}]" if is_axis else ""
        try:
            validated.append(getattr(model.model_validate({key: item}), key))
        except ValidationError as e:
            for error in e.errors(include_url=False):
                errors.append(f"{where}{suffix}{_loc_suffix(error['loc'][1:])}: {describe(error)}")
    if is_axis and len(set(map(repr, validated))) < len(validated):
        errors.append(f"{where}: the same value appears twice in this axis")
    return validated


def _validate_free_table(label: str, table: str, body: dict, values: dict, errors: list[str], prefix: str = "") -> None:
    """[model.args] or [params]: any key; each value a number, string or boolean, or a list of
    them (an axis; not in a [[trial]], where `prefix` names the table)."""
    from pydantic import TypeAdapter

    adapter = TypeAdapter(FreeValue, config={"strict": True, "allow_inf_nan": False})
    for key, value in body.items():
        where = f"{label}: {prefix}{table}.{key}"
        if prefix and isinstance(value, list):
            errors.append(
                f"{where}: a list is an axis, and one [[trial]] table is one trial; write one [[trial]] per value"
            )
            continue
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            errors.append(f"{where}: empty list; an axis needs at least one value")
            continue
        validated = []
        for index, item in enumerate(items):
            suffix = f"[{index}]" if isinstance(value, list) else ""
            try:
                validated.append(adapter.validate_python(item))
            except ValidationError:
                errors.append(f"{where}{suffix}: must be a finite number, a string or true/false (got {item!r})")
        if len(set(map(repr, validated))) < len(validated):
            errors.append(f"{where}: the same value appears twice in this axis")
        values[(table, key)] = validated


def _loc_suffix(loc: tuple) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def describe(error: dict) -> str:
    """A short message for a pydantic error, with the offending input."""
    kind, got = error["type"], error.get("input")
    ctx = {k: f"{v:g}" if isinstance(v, float) else v for k, v in error.get("ctx", {}).items()}
    messages = {
        "greater_than": lambda: f"must be > {ctx.get('gt')}",
        "greater_than_equal": lambda: f"must be >= {ctx.get('ge')}",
        "less_than": lambda: f"must be < {ctx.get('lt')}",
        "less_than_equal": lambda: f"must be <= {ctx.get('le')}",
        "finite_number": lambda: "must be a finite number",
        "int_type": lambda: "must be an integer",
        "int_from_float": lambda: "must be an integer",
        "float_type": lambda: "must be a number",
        "bool_type": lambda: "must be true or false",
        "string_type": lambda: "must be a string",
        "string_pattern_mismatch": lambda: (
            'must name a function as "module:function", e.g. "mymodels:build"'
            if ctx.get("pattern") == CALLABLE
            else "may hold only letters, digits, '_', '-' and '.', starting with a letter or digit"
        ),
        "literal_error": lambda: f"must be one of {ctx.get('expected')}",
        "value_error": lambda: error["msg"].removeprefix("Value error, "),
        "tuple_type": lambda: "must be a pair like [0.9, 0.999]",
        "too_short": lambda: "must be a pair like [0.9, 0.999]",
        "too_long": lambda: "must be a pair like [0.9, 0.999]",
        "missing": lambda: "missing value; a pair needs two, like [0.9, 0.999]",  # only pairs have no default
    }
    message = messages.get(kind, lambda: error["msg"])()
    return f"{message} (got {got!r})" if kind not in ("missing",) else message


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else f"; expected one of: {', '.join(choices)}"


def single(values: dict, key: tuple[str, str], default):
    found = values.get(key)
    return found[0] if found else default


def check_name(label: str, name: str, errors: list[str]) -> None:
    try:
        SweepSection(name=name)
    except ValidationError:
        errors.append(
            f"{label}: sweep.name: {name!r} cannot name a sweep; set [sweep] name = \"...\" (letters, digits, '_', '-', '.')"
        )


def resolve_data_paths(label: str, grid_path: Path, values: dict, errors: list[str]) -> dict[str, str]:
    """Make data.path absolute (workers run elsewhere) and check each file before any training.

    Returns each file's sha256 by its absolute path: part of a file trial's run_id, so a file
    whose contents changed trains new runs instead of reusing the old numbers.
    """
    from rnnsweep.jobs.tasks.user_file import DataFileError, file_digest, load

    paths = values.get(("data", "path"))
    digests: dict[str, str] = {}
    if not paths:
        return digests
    resolved = []
    for index, given in enumerate(paths):
        if not given:
            resolved.append(given)
            continue
        absolute = str((grid_path.parent / given).resolve())
        suffix = f"[{index}]" if len(paths) > 1 else ""
        try:
            load(DataConfig(path=absolute))
            digests[absolute] = file_digest(absolute)
        except DataFileError as e:
            array = "" if e.key == "data.path" else f"{e.key}: "
            errors.append(f"{label}: data.path{suffix}: {given}: {array}{e.problem}")
        resolved.append(absolute)
    values[("data", "path")] = resolved
    return digests


def check_task_needs(label: str, values: dict, errors: list[str]) -> None:
    tasks = values.get(("sweep", "task"), [TrialKeys().task])
    if "file" in tasks and not any(values.get(("data", "path"), [""])):
        errors.append(f'{label}: data.path: required when sweep.task = "file" (an .npz or .parquet file)')
    if "file" not in tasks and any(values.get(("data", "path"), [""])):
        errors.append(f'{label}: data.path: only read when sweep.task = "file"; remove it or set the task')
    seq_lens = values.get(("data", "seq_len"), [DataConfig().seq_len])
    if "word_vectors" in tasks and min(seq_lens) < 3:
        errors.append(f'{label}: data.seq_len: must be >= 3 for task "word_vectors" (words have 3+ letters)')
    if "events" in tasks:
        _check_events(label, values, errors)


def _check_events(label: str, values: dict, errors: list[str]) -> None:
    """Events data a generator can draw: an event needs enough steps to cross the threshold,
    and each split needs a positive and a negative sequence (checked on the axes' values, before
    the grid is expanded)."""
    defaults = DataConfig()
    seq_lens = values.get(("data", "seq_len"), [defaults.seq_len])
    if min(seq_lens) < EVENTS_MIN_SEQ_LEN:
        errors.append(
            f'{label}: data.seq_len: must be >= {EVENTS_MIN_SEQ_LEN} for task "events" (got {min(seq_lens)}): '
            "an event is a burst summing above the threshold, and shorter sequences can never hold one"
        )
    rates = values.get(("data", "positive_rate"), [defaults.positive_rate])
    for split in ("n_train", "n_val"):
        sizes = itertools.product(values.get(("data", split), [getattr(defaults, split)]), rates)
        unfit = next(((n, rate) for n, rate in sizes if min(events_class_sizes(n, rate)) < 1), None)
        if unfit:
            n, rate = unfit
            positives, negatives = events_class_sizes(n, rate)
            errors.append(
                f"{label}: data.{split}: {n} sequences at positive_rate {rate:g} leave {positives} positive "
                f'and {negatives} negative; task "events" needs both classes in each split'
            )


def resolve_user_code(label: str, grid_path: Path, values: dict, errors: list[str]) -> None:
    """Which keys need your own code, and the folder it is imported from (sweep.code, default:
    the grid's folder), made absolute: workers run elsewhere."""
    factory = any(values.get(("model", "factory"), [""]))
    entrypoint = any(values.get(("sweep", "entrypoint"), [""]))
    for table, reader in FREE_FORM.items():
        if any(t == table for t, _ in values) and not (factory if table == "model.args" else entrypoint):
            errors.append(f"{label}: {table}: only read by {reader}; set it, or remove [{table}]")
    if factory and entrypoint:
        errors.append(f"{label}: model.factory: not read when sweep.entrypoint is set (your loop builds its model)")
    given = single(values, ("sweep", "code"), "")
    if not (factory or entrypoint):
        if given:
            errors.append(f"{label}: sweep.code: only read by model.factory or sweep.entrypoint")
        return
    folder = (grid_path.parent / given).resolve()
    if not folder.is_dir():
        errors.append(f"{label}: sweep.code: {given or folder}: not a folder")
        return
    values[("sweep", "code")] = [str(folder)]


def check_user_code(label: str, trials: list[TrialConfig], errors: list[str]) -> None:
    """Import each factory and entrypoint and try it as a worker will, once per distinct use."""
    from rnnsweep.jobs.user_code import UserCodeError, check_entrypoint, check_factory

    checked: set[str] = set()
    for trial in trials:
        if trial.entrypoint:
            key, check, where = trial.entrypoint + repr(sorted(trial.params)), check_entrypoint, "sweep.entrypoint"
        elif trial.model.factory:
            shape = trial.model_dump_json(include={"task", "model", "data"})
            key, check, where = shape + str(trial.training.batch_size), check_factory, "model.factory"
        else:
            continue
        if key in checked:
            continue
        checked.add(key)
        try:
            check(trial)
        except UserCodeError as e:
            message = f"{label}: {where}: {e}"
            if message not in errors:
                errors.append(message)
