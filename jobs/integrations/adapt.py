"""What the integrations share: another tool's hyper-parameters, metrics and endings as a Run's.

Nested hyper-parameters are flattened with "/" (as Lightning's and Tune's own loggers show them:
`model/hidden`); a value that is not a number, string or boolean is kept as its JSON text (or its
repr), so any config a tool accepts makes a Run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping


def flatten(values: Mapping, prefix: str = "") -> dict[str, object]:
    """{"model": {"hidden": 8}} -> {"model/hidden": 8}; an empty mapping stays a value."""
    flat: dict[str, object] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat |= flatten(value, f"{name}/")
        else:
            flat[name] = value
    return flat


def flat_config(config: Mapping) -> dict[str, bool | int | float | str]:
    """A tool's hyper-parameters as a Run's config: flat, every value a scalar."""
    return {name: _scalar(value) for name, value in flatten(config).items()}


def numbers(values: Mapping) -> dict[str, float]:
    """The numeric entries of (flattened) `values` as floats; booleans, strings and None left out."""
    found = {}
    for name, value in flatten(values).items():
        value = _plain(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            found[name] = float(value)
    return found


def rename(metrics: Mapping[str, float], names: Mapping[str, str]) -> dict[str, float]:
    return {names.get(name, name): value for name, value in metrics.items()}


def _plain(value):
    """numpy and torch 0-d values as Python numbers (both have .item())."""
    return value.item() if getattr(value, "ndim", None) == 0 and hasattr(value, "item") else value


def _scalar(value) -> bool | int | float | str:
    value = _plain(value)
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, default=repr)
