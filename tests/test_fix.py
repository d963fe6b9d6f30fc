"""`rnnsweep fix`: the follow-up grid holds exactly the changes the diagnosis names, one
[[trial]] per follow-up recording the run it fixes; `--submit` trains it and prints before -> after."""

from __future__ import annotations

import csv
import dataclasses
import io
import tomllib

import pytest
from typer.testing import CliRunner

from rnnsweep.jobs.config import OptimizerConfig, TrialConfig
from rnnsweep.service.cli import app
from rnnsweep.service.fix import FollowUp, Listed, _applied, before_after, fix_grid_text, plan_fix
from rnnsweep.service.query import run_query
from rnnsweep.service.report_html import build_report
from rnnsweep.service.spec import build_grid, load_grid
from rnnsweep.service.submit import run_sweep

# A healthy run, one whose lr is far too high, one whose L2 collapses its recurrent weights.
PATHOLOGIES = """
[sweep]
name = "ills"
epochs = 4
evals_per_epoch = 2
[data]
n_train = 256
n_val = 128
seq_len = 12
n_features = 3
positive_rate = 0.3
[model]
hidden = 16
[training]
batch_size = 32
[[trial]]
optimizer.lr = 0.01
[[trial]]
optimizer.lr = 1.0
[[trial]]
optimizer = { lr = 0.01, weight_decay = 1.0 }
"""


def test_the_fix_grid_gives_each_follow_up_exactly_its_config(tmp_path):
    base = TrialConfig(sweep="s", seed=3, epochs=2, optimizer=OptimizerConfig(lr=0.5, betas=(0.5, 0.999)))
    other = base.model_copy(update={"seed": 4})
    follow_ups = [
        FollowUp(fixes, "diverged", "lower ...", changes, run, _applied(run, changes))
        for fixes, run, changes in [
            ("0" * 16, base, {"optimizer.lr": 0.05, "optimizer.betas": [0.9, 0.999], "training.clip_grad_norm": 1.0}),
            ("0" * 16, base, {"training.lr_schedule": "cosine"}),
            ("1" * 16, other, {"optimizer.weight_decay_on": "non_recurrent"}),
        ]
    ]
    text = fix_grid_text(
        "s", "s-fix", follow_ups, [Listed("2" * 16, "overfitting", "stop at step 8", "not a config change")]
    )
    grid = build_grid(tomllib.loads(text), tmp_path / "s-fix.toml", text)
    expected = [f.config.model_copy(update={"sweep": "s-fix", "fixes": f.fixes}) for f in follow_ups]
    assert grid.trials == expected
    assert (
        "# diverged run 0000000000000000: optimizer.lr 0.5 -> 0.05, optimizer.betas [0.5, 0.999] -> [0.9, 0.999]"
        in text
    )
    assert text.endswith("# overfitting run 2222222222222222: stop at step 8: not a config change\n")


def test_an_unknown_sweep_is_one_line(tmp_path):
    from rnnsweep.service.warehouse import Warehouse

    warehouse = tmp_path / "wh.duckdb"
    with Warehouse.open(warehouse, build_views=True):
        pass
    result = CliRunner().invoke(app, ["fix", "nope", "-w", str(warehouse)])
    assert result.exit_code != 0 and result.stderr.startswith("error: no sweep named 'nope'")


@pytest.mark.ray
@pytest.mark.slow
def test_fix_writes_the_diagnosed_changes_and_submit_shows_before_and_after(tmp_path, local_ray):
    grid_path = tmp_path / "ills.toml"
    grid_path.write_text(PATHOLOGIES)
    grid, warehouse = load_grid(grid_path), tmp_path / "wh.duckdb"
    run_sweep(grid, warehouse, str(tmp_path / "logs"), show_progress=False)
    healthy, too_fast, decayed = (t.run_id for t in grid.trials)
    labels = {r["run_id"]: r["label"] for r in run_query(warehouse, "select run_id, label from diagnosis").to_pylist()}
    assert labels == {healthy: "healthy", too_fast: "diverged", decayed: "l2_collapsed"}

    plan = plan_fix(warehouse, "ills")
    assert plan.path == tmp_path / "ills-fix.toml" and plan.name == "ills-fix"
    assert [(f.fixes, f.changes) for f in plan.follow_ups] == [
        (too_fast, {"optimizer.lr": 0.1, "training.clip_grad_norm": 1.0}),
        (too_fast, {"training.lr_schedule": "cosine", "training.clip_grad_norm": 1.0}),
        (decayed, {"optimizer.weight_decay_on": "non_recurrent", "optimizer.weight_decay": 0.1}),
    ]
    assert [(m.run_id, m.advice) for m in plan.listed] == [(decayed, "or regularise with dropout instead")]

    result = CliRunner().invoke(app, ["fix", "ills", "-w", str(warehouse), "-q", "-f", "csv", "--submit"])
    assert result.exit_code == 0, result.stderr
    written = load_grid(plan.path)
    assert [(t.fixes, t.optimizer.lr, t.optimizer.weight_decay_on) for t in written.trials] == [
        (too_fast, 0.1, "all"),
        (too_fast, 1.0, "all"),
        (decayed, 0.01, "non_recurrent"),
    ]
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == [
        "run_id", "label_before", "label_after", "score", "best_before", "best_after", "fixed", "follow_up", "note"
    ]  # fmt: skip
    assert [(r[0], r[1], r[7]) for r in rows[1:]] == [
        (too_fast, "diverged", written.trials[0].run_id),
        (too_fast, "diverged", written.trials[1].run_id),
        (decayed, "l2_collapsed", written.trials[2].run_id),
    ]
    assert all(r[6] == str(r[2] == "healthy").lower() for r in rows[1:])
    fixed = len({r[0] for r in rows[1:] if r[6] == "true"})
    assert f"{fixed} of 2 fixed" in result.stderr
    # the follow-ups point at the runs they fix, so SQL joins before and after
    joined = run_query(
        warehouse,
        "select b.run_id from runs a join runs b on a.config ->> '$.fixes' = b.run_id where a.sweep = 'ills-fix'",
    )
    assert sorted(joined.column("run_id").to_pylist()) == sorted([too_fast, too_fast, decayed])
    # the fix_outcomes view pairs them, and the report of either sweep shows the pairs
    pairs = run_query(
        warehouse, "select run_id, sweep, follow_up, follow_up_sweep, label_after, fixed from fix_outcomes"
    ).to_pylist()
    assert sorted((p["run_id"], p["follow_up"]) for p in pairs) == sorted(
        zip([too_fast, too_fast, decayed], [t.run_id for t in written.trials], strict=True)
    )
    assert {(p["sweep"], p["follow_up_sweep"]) for p in pairs} == {("ills", "ills-fix")}
    assert all(p["fixed"] == (p["label_after"] == "healthy") for p in pairs)
    # advice no trial carries is a row too: the run's before side, and why nothing was tried
    listed = Listed(healthy, "healthy", "stop at step 8", "no grid key stops at a step")
    rows = before_after(warehouse, dataclasses.replace(plan, listed=[listed])).to_pylist()
    assert rows[-1] | {"best_before": None} == {
        "run_id": healthy, "label_before": "healthy", "label_after": None, "score": "val_acc", "best_before": None,
        "best_after": None, "fixed": None, "follow_up": None, "note": "no trial: stop at step 8: no grid key stops at a step",
    }  # fmt: skip
    assert rows[-1]["best_before"] > 0.5
    for sweep in ("ills", "ills-fix"):
        page = build_report(warehouse, sweep)
        assert "<h2>Fixes tried</h2>" in page and f"{fixed} of 2 runs fixed" in page
        assert all(p["follow_up"] in page for p in pairs)
