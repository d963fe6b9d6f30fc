"""Packs are only worth having if a packed member is the trial it would have been alone.

The fused cells against torch's own nn.RNN/LSTM/GRU (same weights, outputs and every
gradient, float64); a packed member's logged metrics against the same trial trained alone
by the unfused loop (float32, every optimizer, decay, clipping, schedules); members that
do not depend on who they are packed with; a member gone NaN cut out while the rest go on;
and how the driver groups a sweep's trials into packs.
"""

from __future__ import annotations

import itertools
import math

import pyarrow.fs as pafs
import pytest
import torch

from rnnsweep.jobs.config import ModelConfig
from rnnsweep.jobs.fused import FusedSequenceModel, swap_lstm_gates
from rnnsweep.jobs.loop import train
from rnnsweep.jobs.metric_log import MetricLog, list_chunks, read_chunk
from rnnsweep.jobs.model import SequenceModel
from rnnsweep.jobs.shapes import pack_key
from rnnsweep.service.packing import auto_pack_size, plan_packs, unit_work
from tests.conftest import tiny_trial

SHAPES = list(itertools.product(["rnn", "lstm", "gru"], [False, True], [1, 2]))


@pytest.mark.parametrize(("cell", "bidirectional", "layers"), SHAPES)
def test_fused_cells_match_torch_outputs_and_gradients(cell, bidirectional, layers):
    torch.manual_seed(layers)
    config = ModelConfig(cell=cell, hidden=6, layers=layers, bidirectional=bidirectional)
    singles = [SequenceModel(3, 2, config).double() for _ in range(3)]
    fused = FusedSequenceModel(singles, config)
    x = torch.randn(3, 4, 7, 3, dtype=torch.float64)  # each member its own batch

    out = fused(x)
    expected = torch.stack([model(x[i]) for i, model in enumerate(singles)])
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)

    (out**2).sum().backward()
    (expected**2).sum().backward()
    for i, model in enumerate(singles):
        fused_grads = {name: t.grad for name, t in fused.named_parameters()}
        for name, p in model.named_parameters():
            torch.testing.assert_close(member_grad(fused_grads, name, i, cell), p.grad, rtol=1e-9, atol=1e-12)


def member_grad(grads: dict, torch_name: str, member: int, cell: str) -> torch.Tensor:
    """The gradient the fused model holds for one member's torch parameter (e.g. rnn.weight_hh_l1_reverse)."""
    if torch_name.startswith("head."):
        return grads[f"head_{torch_name.split('.')[1]}"][member]
    name = torch_name.split(".")[1]
    direction = 1 if name.endswith("_reverse") else 0
    return swap_lstm_gates(cell, grads[name.removesuffix("_reverse")][member, direction])


def test_a_shared_batch_gives_every_member_its_own_output():
    config = ModelConfig(cell="gru", hidden=5, bidirectional=True)
    torch.manual_seed(0)
    singles = [SequenceModel(2, 3, config) for _ in range(4)]
    x = torch.randn(6, 9, 2)
    torch.testing.assert_close(FusedSequenceModel(singles, config)(x), torch.stack([m(x) for m in singles]))


def logged(fs, root, config) -> dict[tuple[int, str], float]:
    rows = {}
    for chunk in list_chunks(fs, root, config.sweep, config.run_id):
        for r in read_chunk(fs, chunk.path).to_pylist():
            rows[(r["step"], r["metric"])] = r["value"]
    return rows


def run(configs, tmp_path, packed: bool) -> tuple[list, list[dict]]:
    fs, root = pafs.LocalFileSystem(), str(tmp_path / ("packed" if packed else "alone"))
    logs = [MetricLog(fs, f"{root}/{c.sweep}/{c.run_id}/attempt-000", c.run_id, 0) for c in configs]
    for c in configs:
        fs.create_dir(f"{root}/{c.sweep}/{c.run_id}/attempt-000", recursive=True)
    if packed:
        outcomes = train(configs, logs)
    else:
        outcomes = [train([c], [log])[0] for c, log in zip(configs, logs, strict=True)]
    return outcomes, [logged(fs, root, c) for c in configs]


def members(task: str, optimizer: str, cell: str, bidirectional: bool) -> list:
    """Three trials of one shape that differ in every scalar a pack lets differ."""
    variants = [
        {"seed": 0, "lr": 1e-3, "wd": 0.0, "on": "all", "clip": 0.0, "schedule": "constant", "pos": 3.0, "b1": 0.9},
        {"seed": 1, "lr": 3e-3, "wd": 1e-2, "on": "all", "clip": 0.0, "schedule": "cosine", "pos": 1.0, "b1": 0.8},
        {
            "seed": 2,
            "lr": 1e-2,
            "wd": 1e-1,
            "on": "non_recurrent",
            "clip": 0.5,
            "schedule": "step",
            "pos": 1.0,
            "b1": 0.9,
        },
    ]
    return [
        tiny_trial(
            task,
            top={"seed": v["seed"], "epochs": 2, "evals_per_epoch": 2},
            model={"cell": cell, "bidirectional": bidirectional, "layers": 2 if bidirectional else 1},
            optimizer={
                "name": optimizer,
                "lr": v["lr"],
                "weight_decay": v["wd"],
                "weight_decay_on": v["on"],
                "momentum": 0.5 if optimizer != "adam" else 0.0,
                "betas": [v["b1"], 0.99],
            },
            training={
                "clip_grad_norm": v["clip"],
                "lr_schedule": v["schedule"],
                "lr_step_epochs": 1,
                "pos_weight": v["pos"],
                "batch_size": 16,
            },
        )
        for v in variants
    ]


@pytest.mark.parametrize(
    ("task", "optimizer", "cell", "bidirectional"),
    [("events", "adam", "gru", True), ("sequences4", "sgd", "lstm", False), ("word_vectors", "rmsprop", "rnn", True)],
)
def test_a_packed_member_logs_what_it_logs_alone(tmp_path, task, optimizer, cell, bidirectional):
    configs = members(task, optimizer, cell, bidirectional)
    assert len({pack_key(c) for c in configs}) == 1
    packed_outcomes, packed = run(configs, tmp_path, packed=True)
    alone_outcomes, alone = run(configs, tmp_path, packed=False)
    for p_out, a_out, p_rows, a_rows in zip(packed_outcomes, alone_outcomes, packed, alone, strict=True):
        assert (p_out.status, p_out.steps) == (a_out.status, a_out.steps) == ("finished", 8)
        assert p_rows.keys() == a_rows.keys()  # every metric at every step, nothing more
        for key, value in a_rows.items():
            assert p_rows[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


def test_a_member_does_not_depend_on_who_it_is_packed_with(tmp_path):
    a, b, c = members("events", "adam", "gru", False)
    _, with_b = run([a, b], tmp_path / "ab", packed=True)
    _, with_c = run([c, a], tmp_path / "ca", packed=True)
    assert with_b[0] == pytest.approx(with_c[1], rel=1e-6, abs=1e-7)


def test_a_member_gone_nonfinite_is_cut_out_and_the_rest_train_on(tmp_path):
    healthy, _, other = members("events", "adam", "gru", False)
    # Adam moves every weight by about lr per step: at 1e38 the logits overflow float32 at once.
    exploding = healthy.model_copy(update={"seed": 7, "optimizer": healthy.optimizer.model_copy(update={"lr": 1e38})})
    outcomes, rows = run([healthy, exploding, other], tmp_path, packed=True)
    assert [o.status for o in outcomes] == ["finished", "stopped", "finished"]
    assert outcomes[1].stop_reason.startswith("non-finite") and outcomes[1].steps < 8
    stop = outcomes[1].steps
    assert rows[1][(stop, "nonfinite")] == 1.0 and not math.isfinite(
        rows[1][(stop, "train_loss")] * rows[1][(stop, "grad_norm")]
    )
    assert max(step for step, _ in rows[1]) == stop  # nothing logged after its stop
    _, alone = run([healthy, other], tmp_path / "alone", packed=False)
    assert rows[0] == pytest.approx(alone[0], rel=1e-4, abs=1e-6)  # the others never noticed
    assert rows[2] == pytest.approx(alone[1], rel=1e-4, abs=1e-6)


def test_a_pack_refuses_trials_of_different_shapes():
    with pytest.raises(ValueError, match="share one shape"):
        train([tiny_trial(model={"hidden": 8}), tiny_trial(model={"hidden": 9})], [None, None])


def grid_of(n: int, **sections) -> list:
    return [tiny_trial(top={"seed": s}, **sections) for s in range(n)]


def test_packs_group_trials_by_shape_and_keep_every_slot_busy():
    gru, lstm = grid_of(12, model={"cell": "gru"}), grid_of(3, model={"cell": "lstm"})
    units = plan_packs(gru + lstm, slots=2)
    assert sorted(t.run_id for u in units for t in u) == sorted(t.run_id for t in gru + lstm)  # each trial once
    assert all(len({pack_key(t) for t in unit}) == 1 for unit in units)  # one shape per pack
    gru_units = [u for u in units if u[0].model.cell == "gru"]
    assert len(gru_units) >= 2  # never fewer packs than Ray slots
    assert max(len(u) for u in units) <= auto_pack_size(gru[0])


def test_the_biggest_units_go_first_so_none_runs_alone_at_the_end():
    # the quickstart's shape: LSTMs alone, GRUs in packs; a pack carries more work than a single
    lstm = grid_of(6, model={"cell": "lstm"})
    gru = grid_of(6, model={"cell": "gru"})
    longer = [tiny_trial(model={"cell": "lstm"}, top={"epochs": 40})]
    units = plan_packs(lstm + gru + longer, slots=2)
    work = [unit_work(u) for u in units]
    assert work == sorted(work, reverse=True)
    assert units[0] == longer and {t.model.cell for u in units[1:3] for t in u} == {"gru"}
    assert [u[0] for u in units[3:]] == lstm  # equal work keeps the grid's order


def test_pack_size_and_no_pack_and_dropout_decide_what_trains_alone():
    assert [len(u) for u in plan_packs(grid_of(5), slots=2, enabled=False)] == [1] * 5
    assert [len(u) for u in plan_packs(grid_of(5, resources={"pack_size": 1}), slots=2)] == [1] * 5
    assert sorted(len(u) for u in plan_packs(grid_of(5, resources={"pack_size": 2}), slots=1)) == [1, 2, 2]
    stacked_dropout = grid_of(4, model={"layers": 2, "dropout": 0.2})
    assert [len(u) for u in plan_packs(stacked_dropout, slots=1)] == [1] * 4


def test_the_automatic_pack_size_shrinks_as_the_model_grows():
    small = tiny_trial(model={"cell": "gru", "hidden": 8})
    large = tiny_trial(model={"cell": "gru", "hidden": 128}, data={"seq_len": 100})
    gpu = tiny_trial(model={"cell": "gru", "hidden": 128}, data={"seq_len": 100}, resources={"gpus_per_trial": 0.5})
    assert auto_pack_size(small) > auto_pack_size(large) >= 1
    assert auto_pack_size(gpu) > auto_pack_size(large)


def test_lstms_on_a_cpu_train_alone_unless_the_grid_asks_for_packs():
    # torch's CPU LSTM kernel beats the fused cell (benchmarks/fusion.py); GPUs pack them
    assert auto_pack_size(tiny_trial(model={"cell": "lstm"})) == 1
    assert [len(u) for u in plan_packs(grid_of(4, model={"cell": "lstm"}), slots=1)] == [1] * 4
    assert [len(u) for u in plan_packs(grid_of(4, model={"cell": "lstm"}, resources={"pack_size": 4}), slots=1)] == [4]
    assert auto_pack_size(tiny_trial(model={"cell": "lstm"}, resources={"gpus_per_trial": 0.5})) > 1


def test_early_stop_cuts_a_diverging_member_out_of_its_pack_as_it_would_stop_alone(tmp_path):
    def trial(lr: float):
        return tiny_trial(
            top={"epochs": 10, "evals_per_epoch": 4},
            optimizer={"name": "sgd", "lr": lr},
            training={"batch_size": 8, "early_stop": "diverged"},
        )

    configs = [trial(1e-3), trial(50.0)]  # sgd at lr 50 blows up without going NaN
    packed_outcomes, packed = run(configs, tmp_path, packed=True)
    alone_outcomes, alone = run(configs, tmp_path, packed=False)
    assert [o.status for o in packed_outcomes] == ["finished", "stopped"]
    assert packed_outcomes[1].stop_reason.startswith("diverged: train loss")
    assert (packed_outcomes[1].stop_reason, packed_outcomes[1].steps) == (
        alone_outcomes[1].stop_reason,
        alone_outcomes[1].steps,
    )
    assert packed[1][(packed_outcomes[1].steps, "early_stopped")] == 1.0
    assert packed[0] == pytest.approx(alone[0], rel=1e-4, abs=1e-6)  # the other member trained on, unchanged


def test_a_pack_whose_members_all_stop_at_once_ends_them_all_stopped(tmp_path):
    exploding = [
        tiny_trial(top={"seed": s, "epochs": 2}, optimizer={"name": "adam", "lr": 1e38}) for s in range(2)
    ]  # both non-finite at step 1
    diverging = [
        tiny_trial(
            top={"sweep": sweep, "seed": 0, "epochs": 10, "evals_per_epoch": 4},
            optimizer={"name": "sgd", "lr": 50.0},
            training={"batch_size": 8, "early_stop": "diverged"},
        )
        for sweep in ("a", "b")
    ]  # one trial in two sweeps (two runs): both early-stopped at the same evaluation
    for name, configs in (("nan", exploding), ("early", diverging)):
        outcomes, _ = run(configs, tmp_path / name, packed=True)
        assert [o.status for o in outcomes] == ["stopped", "stopped"], name
        assert outcomes[0].steps == outcomes[1].steps


@pytest.mark.parametrize(("task", "cell"), [("events", "gru"), ("sequences4", "lstm"), ("word_vectors", "rnn")])
def test_the_module_and_fused_engines_log_the_same_metrics_for_one_trial(tmp_path, task, cell):
    """One trial, one loop, two engines: torch's own module and optimizer, or the fused model of one member."""
    [trial] = members(task, "adam", cell, bidirectional=True)[2:]  # clipped, step schedule, spared W_hh
    fs = pafs.LocalFileSystem()
    rows = {}
    for fused in (False, True):
        root = str(tmp_path / str(fused))
        fs.create_dir(f"{root}/{trial.sweep}/{trial.run_id}/attempt-000", recursive=True)
        log = MetricLog(fs, f"{root}/{trial.sweep}/{trial.run_id}/attempt-000", trial.run_id, 0)
        [outcome] = train([trial], [log], fused=fused)
        assert (outcome.status, outcome.steps) == ("finished", 8)
        rows[fused] = logged(fs, root, trial)
    assert rows[True].keys() == rows[False].keys()
    for key, value in rows[False].items():
        assert rows[True][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


class DyingCheckpoints:
    """CheckpointStore over local files whose worker dies (SystemExit) right after its `die_after`-th save."""

    def __init__(self, root, configs, die_after: int | None):
        from rnnsweep.jobs.checkpoint import CheckpointStore

        self.store = CheckpointStore(
            pafs.LocalFileSystem(), [f"{root}/{c.sweep}/{c.run_id}/checkpoint.pt" for c in configs]
        )
        self.die_after, self.saves = die_after, 0

    def load(self):
        return self.store.load()

    def save(self, states):
        self.store.save(states)
        self.saves += 1
        if self.saves == self.die_after:
            raise SystemExit("killed")


def attempt_logs(fs, root, configs, attempt: int) -> list[MetricLog]:
    logs = []
    for c in configs:
        directory = f"{root}/{c.sweep}/{c.run_id}/attempt-{attempt:03d}"
        fs.create_dir(directory, recursive=True)
        logs.append(MetricLog(fs, directory, c.run_id, attempt))
    return logs


def merged_rows(fs, root, config) -> dict[tuple[int, str], float]:
    """What the warehouse keeps of a run: the latest attempt's rows from its first step on, earlier ones before."""
    rows = [
        r
        for chunk in list_chunks(fs, root, config.sweep, config.run_id)
        for r in read_chunk(fs, chunk.path).to_pylist()
    ]
    latest = max(r["attempt"] for r in rows)
    resumed_at = min(r["step"] for r in rows if r["attempt"] == latest)
    return {(r["step"], r["metric"]): r["value"] for r in rows if r["attempt"] == latest or r["step"] < resumed_at}


def test_a_pack_killed_after_a_checkpoint_resumes_every_member_where_it_was(tmp_path, monkeypatch):
    from rnnsweep.jobs import metric_log

    monkeypatch.setattr(metric_log, "CHUNK_STEPS", 3)  # 16 steps: checkpoints at steps 3, 6, 9, ...
    configs = [
        tiny_trial(
            top={"seed": s, "epochs": 4, "evals_per_epoch": 2}, model={"cell": "gru"}, training={"batch_size": 16}
        )
        for s in range(2)
    ]
    fs = pafs.LocalFileSystem()
    reference = str(tmp_path / "reference")
    train(configs, attempt_logs(fs, reference, configs, 0), checkpoints=DyingCheckpoints(reference, configs, None))

    crashed = str(tmp_path / "crashed")
    with pytest.raises(SystemExit):  # the worker dies right after its second checkpoint (step 6)
        train(configs, attempt_logs(fs, crashed, configs, 0), checkpoints=DyingCheckpoints(crashed, configs, 2))
    outcomes = train(
        configs, attempt_logs(fs, crashed, configs, 1), checkpoints=DyingCheckpoints(crashed, configs, None)
    )
    assert [(o.status, o.steps) for o in outcomes] == [("finished", 16)] * 2
    for config in configs:
        rows = [
            r for c in list_chunks(fs, crashed, config.sweep, config.run_id) for r in read_chunk(fs, c.path).to_pylist()
        ]
        assert min(r["step"] for r in rows if r["attempt"] == 1) == 7  # went on from the checkpoint, not from step 1
        assert merged_rows(fs, crashed, config) == pytest.approx(logged(fs, reference, config), rel=1e-6)


def test_a_retried_pack_does_not_train_a_member_that_had_already_ended(tmp_path, monkeypatch):
    from rnnsweep.jobs import metric_log

    monkeypatch.setattr(metric_log, "CHUNK_STEPS", 3)
    healthy = tiny_trial(top={"epochs": 4}, model={"cell": "gru"}, training={"batch_size": 16})
    exploding = healthy.model_copy(update={"seed": 7, "optimizer": healthy.optimizer.model_copy(update={"lr": 1e38})})
    configs = [healthy, exploding]
    fs, root = pafs.LocalFileSystem(), str(tmp_path)
    with pytest.raises(SystemExit):  # the exploding member stops within the first epoch; the worker dies later
        train(configs, attempt_logs(fs, root, configs, 0), checkpoints=DyingCheckpoints(root, configs, 2))
    retry_logs = attempt_logs(fs, root, configs, 1)
    healthy_again, ended = train(configs, retry_logs, checkpoints=DyingCheckpoints(root, configs, None))
    assert (healthy_again.status, healthy_again.steps) == ("finished", 16)
    assert ended.status == "stopped" and ended.stop_reason.startswith("non-finite") and ended.steps < 4
    assert retry_logs[1].chunks_written == 0  # its rows are the first attempt's, logged once
    first_attempt = logged(fs, root, exploding)
    assert first_attempt[(ended.steps, "nonfinite")] == 1.0
