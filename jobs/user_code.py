"""Users' own code: a model factory (`model.factory`) or a training entrypoint
(`sweep.entrypoint`), imported as "module:function" from the sweep's code folder.

The driver calls the checks here when a grid loads, so a factory that cannot be imported, a
key its signature does not take, or a module that fails on the first batch is one line at
submit time, before anything trains. Workers import the same way (on a cluster the folder
arrives through Ray's runtime_env). torch is imported only where a model is built.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

from rnnsweep.jobs.config import TrialConfig


class UserCodeError(ValueError):
    """The user's code cannot be used as asked; the message says what and where, in one line."""


def load_callable(target: str, folder: str) -> Callable:
    """The function named "module:function", imported from `folder` (put first on sys.path)."""
    module_name, _, function = target.partition(":")
    if folder and Path(folder).is_dir():
        if folder not in sys.path:
            sys.path.insert(0, folder)
        loaded = sys.modules.get(module_name)
        if loaded is not None and not str(getattr(loaded, "__file__", "")).startswith(folder):
            del sys.modules[module_name]  # a module of that name from another sweep's folder
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # the user's module may raise anything while it imports
        where = f" from {folder}" if folder else ""
        raise UserCodeError(f"{target}: cannot import {module_name}{where}: {type(e).__name__}: {e}") from None
    found = getattr(module, function, None)
    if not callable(found):
        raise UserCodeError(f"{target}: {module_name} has no function {function}")
    return found


def _bind(target: str, function: Callable, *args, **kwargs) -> None:
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError as e:
        raise UserCodeError(f"{target}: {e}") from None


def build_user_model(config: TrialConfig, n_features: int, n_outputs: int):
    """factory(n_features=..., n_outputs=..., **model.args), checked to be an nn.Module."""
    from torch import nn

    target = config.model.factory
    build = load_callable(target, config.code)
    _bind(target, build, n_features=n_features, n_outputs=n_outputs, **config.model.args)
    try:
        model = build(n_features=n_features, n_outputs=n_outputs, **config.model.args)
    except Exception as e:
        raise UserCodeError(f"{target}: raised {type(e).__name__}: {e}") from None
    if not isinstance(model, nn.Module):
        raise UserCodeError(f"{target}: returned {type(model).__name__}, not a torch.nn.Module")
    return model


def check_first_batch(model, x, n_outputs: int, target: str) -> None:
    """The module must map a batch (B, T, F) to (B, n_outputs), the task's outputs."""
    import torch

    was_training = model.training
    model.eval()  # no dropout draws: the check leaves the random generators as they were
    try:
        with torch.no_grad():
            outputs = model(x)
    except Exception as e:
        raise UserCodeError(
            f"{target}: the module failed on a batch of shape {tuple(x.shape)}: {type(e).__name__}: {e}"
        ) from None
    finally:
        model.train(was_training)
    expected = (x.shape[0], n_outputs)
    if not isinstance(outputs, torch.Tensor) or tuple(outputs.shape) != expected:
        got = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
        raise UserCodeError(
            f"{target}: the module's output for a batch of shape {tuple(x.shape)} is {got}; the task needs {expected}"
        )


def check_factory(config: TrialConfig) -> None:
    """What a worker will do first, done on the driver: build the model, run the first batch."""
    import torch

    from rnnsweep.jobs.tasks import load_task

    data = load_task(config)
    torch.manual_seed(config.seed)
    model = build_user_model(config, data.n_features, data.n_outputs)
    batch = torch.from_numpy(data.x_train[: config.training.batch_size])
    check_first_batch(model, batch, data.n_outputs, config.model.factory)


def check_entrypoint(config: TrialConfig) -> None:
    """The entrypoint imports and takes (config, run)."""
    main = load_callable(config.entrypoint, config.code)
    _bind(config.entrypoint, main, dict(config.params), None)
