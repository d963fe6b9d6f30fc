"""grid.toml: validation messages, axes, expansion (property-tested), run_id identity."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnsweep.jobs.config import ModelConfig, TrialConfig, TrialKeys, run_id_of
from rnnsweep.service.errors import GridError
from rnnsweep.service.grid_keys import SWEEP_ONLY, TRIAL_FIELDS, SweepSection
from rnnsweep.service.spec import MAX_TRIALS_WITHOUT_YES, axis_value, build_grid, load_grid

ISSUE_GRID = """
[sweep]
name = "l2-vs-lr"
task = "events"
seeds = [0, 1]
epochs = 20
[data]
n_train = 4096
seq_len = 80
positive_rate = 0.01
[model]
cell = ["lstm", "gru"]
hidden = 128
bidirectional = true
[optimizer]
name = "adam"
lr = [1e-4, 1e-3, 1e-2]
betas = [0.9, 0.999]
weight_decay = [0.0, 1e-3, 1e-1]
[training]
batch_size = 64
clip_grad_norm = 0
pos_weight = 5.0
[resources]
cpus_per_trial = 1
gpus_per_trial = 0
"""


def errors_of(write_grid, text: str) -> list[str]:
    path = write_grid(text)
    with pytest.raises(GridError) as caught:
        load_grid(path)
    return [line.removeprefix(f"{path}: ") for line in caught.value.lines]


def test_the_issue_grid_expands_to_the_product_of_its_axes(write_grid):
    grid = load_grid(write_grid(ISSUE_GRID))
    assert grid.name == "l2-vs-lr"
    assert list(grid.axes) == ["sweep.seeds", "model.cell", "optimizer.lr", "optimizer.weight_decay"]
    assert len(grid.trials) == 2 * 2 * 3 * 3
    first = grid.trials[0]
    assert (first.seed, first.model.cell, first.optimizer.lr, first.optimizer.weight_decay) == (0, "lstm", 1e-4, 0.0)
    assert first.optimizer.betas == (0.9, 0.999)  # a pair, not an axis
    assert first.data.positive_rate == 0.01 and first.training.pos_weight == 5.0
    assert len({t.run_id for t in grid.trials}) == 36


def test_a_list_of_pairs_is_an_axis_of_betas(write_grid):
    grid = load_grid(write_grid('[sweep]\ntask = "sequences4"\n[optimizer]\nbetas = [[0.9, 0.999], [0.5, 0.999]]\n'))
    assert [t.optimizer.betas for t in grid.trials] == [(0.9, 0.999), (0.5, 0.999)]


def test_every_error_is_reported_at_once_with_its_key_path(write_grid):
    lines = errors_of(
        write_grid,
        """
[sweep]
tsak = "events"
seeds = []
[model]
cell = ["lstm", "grue"]
hiden = 12
layers = 0
[optimiser]
lr = 1
[optimizer]
lr = [1e-3, -1, nan]
betas = [[0.9, 0.999], [0.5, 1.5]]
weight_decay = "0.1"
[training]
batch_size = 12.5
""",
    )
    assert lines == [
        "sweep.tsak: unknown key (did you mean 'task'?)",
        "sweep.seeds: empty list; an axis needs at least one value",
        "model.cell[1]: must be one of 'rnn', 'lstm' or 'gru' (got 'grue')",
        "model.hiden: unknown key (did you mean 'hidden'?)",
        "model.layers: must be >= 1 (got 0)",
        "optimiser: unknown table (did you mean 'optimizer'?)",
        "optimizer.lr[1]: must be > 0 (got -1)",
        "optimizer.lr[2]: must be a finite number (got nan)",
        "optimizer.betas[1][1]: must be < 1 (got 1.5)",
        "optimizer.weight_decay: must be a number (got '0.1')",
        "training.batch_size: must be an integer (got 12.5)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[sweep]\nname = 'a b'\n", "sweep.name: may hold only letters"),
        ("[sweep]\nname = ['a', 'b']\n", "sweep.name: must be a single value, not a list"),
        ("[model]\nbidirectional = 1\n", "model.bidirectional: must be true or false (got 1)"),
        ("[model]\nhidden = '128'\n", "model.hidden: must be an integer (got '128')"),
        ("[optimizer]\nlr = inf\n", "optimizer.lr: must be a finite number (got inf)"),
        ("[optimizer]\nbetas = [0.9]\n", "optimizer.betas[1]: missing value; a pair needs two"),
        ("[optimizer]\nbetas = [0.9, 0.99, 0.999]\n", "optimizer.betas: must be a pair like [0.9, 0.999]"),
        ("[optimizer]\nlr = [0.1, 0.1]\n", "optimizer.lr: the same value appears twice in this axis"),
        ("model = 3\n", "model: must be a table ([model])"),
        ("[data]\npositive_rate = 1.0\n", "data.positive_rate: must be < 1 (got 1.0)"),
        ("[sweep]\ntask = 'file'\n", 'data.path: required when sweep.task = "file"'),
        ("[sweep]\ntask = 'file'\n[data]\npath = 'x.npz'\n", "data.path: x.npz: no such file"),
        ("[data]\npath = 'x.npz'\n", 'data.path: only read when sweep.task = "file"'),
        ("[sweep]\ntask = 'word_vectors'\n[data]\nseq_len = 2\n", "data.seq_len: must be >= 3"),
        ("[bogus]\nx = 1\n", "bogus: unknown table; expected one of: sweep, data, model"),
    ],
)
def test_bad_values_name_the_key_and_the_problem(write_grid, text, expected):
    lines = errors_of(write_grid, text)
    assert any(line.startswith(expected) for line in lines), lines


def test_toml_syntax_errors_and_unreadable_files_are_one_line(write_grid, tmp_path):
    assert errors_of(write_grid, "[sweep\nname = 1")[0].startswith("TOML syntax error: ")
    with pytest.raises(GridError, match=r"missing\.toml: no such file"):
        load_grid(tmp_path / "missing.toml")
    with pytest.raises(GridError, match="is a directory"):
        load_grid(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(GridError, match="not UTF-8"):
        load_grid(binary)


def test_a_huge_grid_needs_yes(write_grid):
    values = ", ".join(str(i) for i in range(2, 102))
    path = write_grid(f"[data]\nn_train = [{values}]\nn_val = [{values}]\nseq_len = [5, 6]\n")
    with pytest.raises(
        GridError,
        match=r"grid expands to 20,000 trials \(data.n_train: 100 x data.n_val: 100 x data.seq_len: 2\); pass --yes",
    ):
        load_grid(path)
    assert 20_000 > MAX_TRIALS_WITHOUT_YES
    assert len(load_grid(path, allow_large=True).trials) == 20_000


def test_sweep_name_defaults_to_the_file_name(write_grid):
    assert load_grid(write_grid("[sweep]\nepochs = 1\n", name="my-grid.toml")).name == "my-grid"


def test_run_id_is_stable_ignores_resources_and_sees_everything_else():
    base = TrialConfig(sweep="s", task="events", seed=0, epochs=1)
    assert base.run_id == run_id_of(TrialConfig(sweep="s", task="events", seed=0, epochs=1))
    # Pinned: a changed hash would silently re-run every finished run in every warehouse.
    assert base.run_id == "248e12825bb45009"
    moved = base.model_copy(update={"resources": base.resources.model_copy(update={"gpus_per_trial": 1.0})})
    assert moved.run_id == base.run_id
    for changed in (
        base.model_copy(update={"seed": 1}),
        base.model_copy(update={"sweep": "other"}),
        base.model_copy(update={"optimizer": base.optimizer.model_copy(update={"lr": 2e-3})}),
        base.model_copy(update={"data": base.data.model_copy(update={"seed": 3})}),
    ):
        assert changed.run_id != base.run_id


def test_the_sweep_table_holds_every_trial_key_with_its_type_bounds_and_default():
    assert set(TRIAL_FIELDS.values()) == set(TrialKeys.model_fields) <= set(TrialConfig.model_fields)
    assert set(SweepSection.model_fields) == set(TRIAL_FIELDS) | {key for _, key in SWEEP_ONLY}
    assert SWEEP_ONLY == {("sweep", "name"), ("sweep", "storage")}
    for key, field in TRIAL_FIELDS.items():
        in_grid, in_trial = SweepSection.model_fields[key], TrialConfig.model_fields[field]
        assert in_grid.annotation == in_trial.annotation and in_grid.metadata == in_trial.metadata, key
        assert in_grid.default == in_trial.default, key


def test_a_grid_that_leaves_out_the_trial_keys_gets_the_trial_defaults(write_grid):
    trial = load_grid(write_grid("[model]\nhidden = 8\n", name="g.toml")).trials[0]
    assert trial == TrialConfig(sweep="g", model=ModelConfig(hidden=8))
    assert (trial.task, trial.seed, trial.epochs, trial.evals_per_epoch) == ("events", 0, 10, 1)


def test_each_trial_key_in_the_sweep_table_sets_its_trial_field(write_grid, tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "loop_for_spec.py").write_text("def main(config, run):\n    pass\n")
    given = {
        "task": "sequences4",
        "seeds": [3, 4],
        "epochs": 2,
        "evals_per_epoch": 5,
        "entrypoint": "loop_for_spec:main",
        "code": "code",
    }
    assert set(given) == set(TRIAL_FIELDS), "a new trial-level key needs a value here"
    trials = build_grid({"sweep": given}, tmp_path / "g.toml").trials
    assert [(t.task, t.seed, t.epochs, t.evals_per_epoch, t.entrypoint, t.code) for t in trials] == [
        ("sequences4", 3, 2, 5, "loop_for_spec:main", str(tmp_path / "code")),
        ("sequences4", 4, 2, 5, "loop_for_spec:main", str(tmp_path / "code")),
    ]
    assert [axis_value(t, "sweep.seeds") for t in trials] == [3, 4]
    with pytest.raises(GridError, match=r"sweep\.evals_per_epoch: must be >= 1 \(got 0\)"):
        load_grid(write_grid("[sweep]\nevals_per_epoch = 0\n"))


# -- expansion, property-tested ---------------------------------------------------------

AXIS_VALUES = {
    ("optimizer", "lr"): st.floats(1e-5, 1.0),
    ("optimizer", "weight_decay"): st.floats(0.0, 1.0),
    ("model", "hidden"): st.integers(1, 512),
    ("model", "cell"): st.sampled_from(["rnn", "lstm", "gru"]),
    ("training", "batch_size"): st.integers(1, 256),
    ("sweep", "seeds"): st.integers(0, 1000),
    ("training", "clip_grad_norm"): st.floats(0.0, 10.0),
}


@st.composite
def grids(draw):
    keys = draw(st.lists(st.sampled_from(sorted(AXIS_VALUES)), min_size=1, max_size=4, unique=True))
    raw: dict = {}
    for section, key in keys:
        values = draw(st.lists(AXIS_VALUES[(section, key)], min_size=1, max_size=4, unique_by=repr))
        raw.setdefault(section, {})[key] = values
    return raw


@settings(max_examples=60, deadline=None)
@given(grids())
def test_expansion_is_the_cartesian_product_of_the_axes(raw):
    grid = build_grid(raw, Path("grid.toml"))
    sizes = {f"{s}.{k}": len(v) for s, body in raw.items() for k, v in body.items()}
    assert len(grid.trials) == math.prod(sizes.values())
    assert set(grid.axes) == {axis for axis, n in sizes.items() if n > 1}
    # every combination exactly once, so every run_id is distinct
    combos = [tuple(axis_value(t, axis) for axis in sizes) for t in grid.trials]
    assert len(set(combos)) == len(combos)
    assert len({t.run_id for t in grid.trials}) == len(grid.trials)
    # each value of an axis appears equally often
    for axis, n in sizes.items():
        counts = Counter(axis_value(t, axis) for t in grid.trials)
        assert len(counts) == n and len(set(counts.values())) == 1
    # and expanding again gives the same trials in the same order
    assert [t.run_id for t in build_grid(raw, Path("grid.toml")).trials] == [t.run_id for t in grid.trials]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(sorted(AXIS_VALUES)), min_size=1, max_size=3, unique=True), st.integers(-50, 0))
def test_every_out_of_range_key_is_reported(keys, bad):
    numeric = [(s, k) for s, k in keys if (s, k) not in {("model", "cell")}]
    raw: dict = {}
    for section, key in numeric:
        raw.setdefault(section, {})[key] = [1, bad - 1] if key != "clip_grad_norm" else [1.0, bad - 1.0]
    if not raw:
        return
    with pytest.raises(GridError) as caught:
        build_grid(raw, Path("g.toml"))
    for section, key in numeric:
        assert any(line.startswith(f"g.toml: {section}.{key}[1]: must be") for line in caught.value.lines)


def test_axes_nest_in_declaration_order(write_grid):
    grid = load_grid(write_grid("[model]\ncell = ['rnn', 'gru']\n[optimizer]\nlr = [0.1, 0.01]\n"))
    seen = [(t.model.cell, t.optimizer.lr) for t in grid.trials]
    assert seen == list(itertools.product(["rnn", "gru"], [0.1, 0.01]))


# -- [[trial]] tables: one table, one trial ----------------------------------------------

TRIAL_GRID = """
[sweep]
epochs = 2
[optimizer]
lr = 1e-3
[[trial]]
optimizer.lr = 3e-3
training.clip_grad_norm = 1.0
[[trial]]
optimizer = { weight_decay = 0.1, weight_decay_on = "non_recurrent" }
[[trial]]
"""


def test_each_trial_table_is_the_base_with_its_keys_replaced(write_grid):
    grid = load_grid(write_grid(TRIAL_GRID, name="g.toml"))
    base = TrialConfig(sweep="g", epochs=2)
    assert grid.trials == [
        base.model_copy(
            update={
                "optimizer": base.optimizer.model_copy(update={"lr": 3e-3}),
                "training": base.training.model_copy(update={"clip_grad_norm": 1.0}),
            }
        ),
        base.model_copy(
            update={
                "optimizer": base.optimizer.model_copy(update={"weight_decay": 0.1, "weight_decay_on": "non_recurrent"})
            }
        ),
        base,  # an empty [[trial]] keeps the base as a trial
    ]
    assert grid.axes == {
        "optimizer.lr": [3e-3, 1e-3],
        "training.clip_grad_norm": [1.0, 0.0],
        "optimizer.weight_decay": [0.0, 0.1],
        "optimizer.weight_decay_on": ["all", "non_recurrent"],
    }


def test_the_base_axes_apply_to_each_trial_that_does_not_set_them(write_grid):
    grid = load_grid(write_grid("[sweep]\nseeds = [0, 1]\n[[trial]]\noptimizer.lr = 0.1\n[[trial]]\nsweep.seeds = 7\n"))
    assert [(t.optimizer.lr, t.seed) for t in grid.trials] == [(0.1, 0), (0.1, 1), (1e-3, 7)]


def test_a_trial_records_the_run_it_fixes_and_that_changes_only_its_own_run_id(write_grid):
    grid = load_grid(write_grid('[[trial]]\n[[trial]]\nfixes = "0123456789abcdef"\n', name="g.toml"))
    plain, fixing = grid.trials
    assert (plain.fixes, fixing.fixes) == ("", "0123456789abcdef")
    assert plain.run_id == TrialConfig(sweep="g").run_id  # no `fixes`: the run_id of before
    assert fixing.run_id != plain.run_id and "fixes" not in grid.axes


def test_a_grid_without_trial_tables_keeps_its_pinned_run_ids(write_grid):
    grid = load_grid(write_grid('[sweep]\nname = "s"\ntask = "events"\nepochs = 1\n'))
    assert grid.trials[0].run_id == "248e12825bb45009"


@st.composite
def trial_lists(draw):
    """A base of single values and a list of [[trial]] tables overriding some of its keys."""
    base_keys = draw(st.lists(st.sampled_from(sorted(AXIS_VALUES)), max_size=3, unique=True))
    base: dict = {}
    for section, key in base_keys:
        base.setdefault(section, {})[key] = draw(AXIS_VALUES[(section, key)])
    tables = []
    for _ in range(draw(st.integers(1, 5))):
        table: dict = {}
        for section, key in draw(st.lists(st.sampled_from(sorted(AXIS_VALUES)), max_size=4, unique=True)):
            table.setdefault(section, {})[key] = draw(AXIS_VALUES[(section, key)])
        tables.append(table)
    return base, tables


def _with(base: dict, table: dict) -> dict:
    merged = {section: dict(body) for section, body in base.items()}
    for section, body in table.items():
        merged.setdefault(section, {}).update(body)
    return merged


@settings(max_examples=60, deadline=None)
@given(trial_lists())
def test_a_list_of_trials_expands_to_exactly_those_configs(drawn):
    base, tables = drawn
    # each table's config, as a grid of single values (no axes) would give it
    expected = [build_grid(_with(base, table), Path("grid.toml")).trials[0] for table in tables]
    raw = {**base, "trial": tables}
    if len({t.run_id for t in expected}) < len(expected):  # two tables giving one trial: refused
        with pytest.raises(GridError, match=r"grid\.toml: trial\[\d+\]: the same trial as trial\[\d+\]"):
            build_grid(raw, Path("grid.toml"))
        return
    grid = build_grid(raw, Path("grid.toml"))
    assert grid.trials == expected
    for axis, values in grid.axes.items():
        assert [axis_value(t, axis) for t in grid.trials].count(values[0]) < len(grid.trials)
