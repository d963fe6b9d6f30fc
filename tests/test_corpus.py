"""The diagnosis, scored on real runs: tests/corpus holds small RNN trainings broken on
purpose (labels are the injected faults, see tests/corpus/README.md), with healthy traps
(noisy, early plateaus, slow learners, mild L2). Each corpus goes through `rnnsweep import`
and the diagnosis view at three logging shapes:

- `per_step`: the rich metrics rnnsweep logs (metrics.parquet);
- `epoch_baseline`: per epoch, the epoch-mean train loss and the epoch's last evaluation
  (val_loss; train_acc and val_acc for classifiers), plus the untrained evaluation at step 0;
- `epoch_no_baseline`: the same without step 0 (metrics_minimal.parquet): logs exported per
  epoch start after the first epoch of training.

Per shape: the confusion matrix, per-class precision and recall, macro-F1, the false-alarm
rate on healthy runs and the precision of each confidence level must hold. Without a
baseline or a chance level (regression logs of loss only), the diagnosis abstains (healthy,
low confidence, "no baseline"); an abstention counts as a healthy verdict here, so it costs
recall, never a false alarm.

The rules were revised while looking at tests/corpus; tests/corpus/holdout was generated
afterwards (other seeds, sizes, fault strengths). It was scored untuned until issue 13; that
revision saw its misses (see tests/corpus/README.md), so its floors are what generalisation
is held to, not an untouched estimate. tests/corpus/holdout2 (make_corpus.py --holdout2) was
generated after that revision, its configurations chosen on the manifestation checks alone, and
scored once, with the rules as they were. The next revision looked at its misses (memorised
overfits, blow-ups at the start, a blow-up the validation loss did not share), so it too is now
a development set; its untouched figures are kept in the comments below. tests/corpus/holdout3
(--holdout3, 54 runs) was generated after that revision, the same way, and scored once: those
figures are the honest estimate of the rules, recorded so that a regression fails. One rule was
added after seeing them (diverged_above_chance); MEASURED says what it changed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from rnnsweep.service.diagnose import LABELS, diagnose
from rnnsweep.service.importer import import_runs

CORPUS = Path(__file__).parent / "corpus"
SHAPES = ("per_step", "epoch_baseline", "epoch_no_baseline")
# Per-class precision and recall floors, per (corpus, shape). Measured: see MEASURED.
FLOORS = {
    ("corpus", "per_step"): 0.9,
    ("corpus", "epoch_baseline"): 0.7,
    ("corpus", "epoch_no_baseline"): 0.7,
    ("holdout", "per_step"): 0.7,
    ("holdout", "epoch_baseline"): 0.7,
    ("holdout", "epoch_no_baseline"): 0.7,
    # holdout2, measured untouched (the lowest per-class precision or recall): per step 6/9
    # diverged runs found (0.667), epoch level with the baseline 17/24 healthy verdicts right
    # (0.708), without it 16/25 (0.640). Since the revision that looked at its misses (memorised
    # overfits, a blow-up at the start), 0.857, 0.714, 0.667.
    ("holdout2", "per_step"): 0.85,
    ("holdout2", "epoch_baseline"): 0.7,
    ("holdout2", "epoch_no_baseline"): 0.66,
    # holdout3, untouched: 7/8 overfitting runs found (0.875) per step; 6/8 constant_output at
    # epoch level (0.75: two loss-only regression abstentions), at both epoch shapes.
    ("holdout3", "per_step"): 0.87,
    ("holdout3", "epoch_baseline"): 0.75,
    ("holdout3", "epoch_no_baseline"): 0.75,
}
# (runs right, macro-F1) as measured; a regression fails. The epoch-level shapes lose the
# regression runs with a constant output or an L2 collapse (2 + 2 in each corpus, 3 + 2 on the
# development corpus without a baseline): a loss-only regression log tells "learned the
# targets' mean" from "learned the task" only with R2 or the targets' spread, so the
# diagnosis abstains on them.
MEASURED = {
    ("corpus", "per_step"): (75, 1.0),
    ("corpus", "epoch_baseline"): (70, 0.926),
    ("corpus", "epoch_no_baseline"): (69, 0.910),
    ("holdout", "per_step"): (48, 0.963),
    ("holdout", "epoch_baseline"): (44, 0.887),
    ("holdout", "epoch_no_baseline"): (44, 0.887),
    # holdout2: untouched it gave 42, 40, 37 right (macro-F1 0.8855 / 0.8541 / 0.8024); these are
    # after the revision that looked at its misses (0.9617 / 0.8762 / 0.8399). tests/corpus/holdout3
    # holds the untouched estimate of that revision.
    ("holdout2", "per_step"): (45, 0.961),
    ("holdout2", "epoch_baseline"): (41, 0.876),
    ("holdout2", "epoch_no_baseline"): (39, 0.839),
    # holdout3, untouched (first measurement, with the rules that saw holdout2): 53, 49, 47 right,
    # macro-F1 0.9818 / 0.9109 / 0.8706. Then diverged_above_chance (a best loss 5x the chance loss
    # is a blow-up, not a constant output) took h3-diverged-07 without the baseline: 48, 0.8952.
    ("holdout3", "per_step"): (53, 0.981),
    ("holdout3", "epoch_baseline"): (49, 0.910),
    ("holdout3", "epoch_no_baseline"): (48, 0.895),
}
MAX_FALSE_ALARMS = 0.03  # share of healthy runs given any other label, at every shape
# Healthy runs given another label where that was measured on an untouched set: recorded, never
# fixed by tuning on it. (holdout2's h2-healthy-11 without the baseline was one, `diverged`; the
# revision that saw holdout2 asks the blow-up rule for a validation loss that rose too.)
KNOWN_FALSE_ALARMS: dict[tuple[str, str], set[str]] = {}
MIN_HIGH_PRECISION = 0.95  # a `high` verdict is right at least this often, at every shape
EVALUATIONS = ("val_loss", "train_acc", "val_acc")  # what an epoch-level log holds beside train_loss


def folder(corpus: str) -> Path:
    return CORPUS if corpus == "corpus" else CORPUS / corpus


def truth(corpus: str = "corpus") -> dict[str, dict]:
    return {r["run_id"]: r for r in pq.read_table(folder(corpus) / "labels.parquet").to_pylist()}


def epoch_level(corpus: str, with_baseline: bool) -> str:
    """metrics.parquet reduced per epoch as make_corpus.py's minimal_table does: the epoch-mean
    train loss and the evaluation at the epoch's last step, both at that step; with the
    baseline, also the evaluation at step 0 (the untrained model)."""
    source = folder(corpus) / "metrics.parquet"
    return f"""
        with metrics as (select * from '{source}'),
        epoch_ends as (select run_id, epoch, max(step) as step from metrics where metric = 'train_loss' group by all),
        train as (
            select run_id, epoch_ends.step, epoch, 'train_loss' as metric, avg(metrics.value) as value
            from metrics join epoch_ends using (run_id, epoch)
            where metrics.metric = 'train_loss'
            group by all
        ),
        evaluations as (
            select run_id, step, epoch, metric, value
            from metrics join epoch_ends using (run_id, epoch, step)
            where metric in {EVALUATIONS}
        ),
        baseline as (
            select run_id, step, epoch, metric, value from metrics
            where {with_baseline} and step = 0 and metric in {EVALUATIONS}
        )
        select * from train union all select * from evaluations union all select * from baseline
    """


def shape_file(corpus: str, shape: str, into: Path) -> Path:
    if shape == "per_step":
        return folder(corpus) / "metrics.parquet"
    if shape == "epoch_no_baseline":
        return folder(corpus) / "metrics_minimal.parquet"
    path = into / f"{corpus}-{shape}.parquet"
    duckdb.sql(f"copy ({epoch_level(corpus, with_baseline=True)}) to '{path}' (format parquet)")
    return path


def scores(confusion: Counter, label: str) -> tuple[float, float]:
    hits = confusion[(label, label)]
    predicted = sum(confusion[(t, label)] for t in LABELS)
    actual = sum(confusion[(label, p)] for p in LABELS)
    return hits / predicted if predicted else 0.0, hits / actual if actual else 0.0


def macro_f1(confusion: Counter, labels=LABELS) -> float:
    f1 = [2 * p * r / (p + r) if p + r else 0.0 for p, r in (scores(confusion, label) for label in labels)]
    return sum(f1) / len(f1)


def diagnosed_runs(source: Path, params: Path, sweep: str, into: Path) -> dict[str, dict]:
    """Each run's diagnosis row, by its run_id in the files, after `rnnsweep import` into `into`."""
    import_runs(into / "wh.duckdb", source, params, sweep)
    return {r["run_id"].removeprefix(f"{sweep}:"): r for r in diagnose(into / "wh.duckdb", sweep).to_pylist()}


@pytest.fixture(scope="module", params=sorted(FLOORS), ids=lambda key: "-".join(key))
def diagnosed(request, tmp_path_factory):
    corpus, shape = request.param
    folder_ = tmp_path_factory.mktemp(f"{corpus}-{shape}")
    found = diagnosed_runs(shape_file(corpus, shape, folder_), folder(corpus) / "params.parquet", corpus, folder_)
    return request.param, found


def confusion_of(key, found) -> Counter:
    labels = truth(key[0])
    return Counter((labels[r]["label"], found[r]["label"]) for r in labels)


@pytest.mark.parametrize(("corpus", "per_class"), [("corpus", 10), ("holdout", 7), ("holdout2", 7), ("holdout3", 7)])
def test_each_corpus_covers_every_label_with_traps(corpus, per_class):
    labels = truth(corpus)
    counts = Counter(r["label"] for r in labels.values())
    assert set(counts) == set(LABELS) and min(counts.values()) >= per_class
    assert sum(1 for r in labels.values() if r["label"] == "healthy" and r["trap"] != "none") >= 6
    assert all(r["manifested"] for r in labels.values())
    if corpus == "holdout":
        assert not set(labels) & set(truth("corpus"))  # no run shared with the tuning corpus
    if corpus in ("holdout2", "holdout3"):  # no run id and no configuration shared with the sets before it
        before = ("corpus", "holdout") if corpus == "holdout2" else ("corpus", "holdout", "holdout2")
        assert not set(labels) & set().union(*(set(truth(name)) for name in before))

        def configs(name: str) -> set[tuple]:
            rows = pq.read_table(folder(name) / "params.parquet").drop_columns(["run_id"]).to_pylist()
            return {tuple(sorted(row.items())) for row in rows}

        assert not configs(corpus) & set().union(*(configs(name) for name in before))


@pytest.mark.parametrize("corpus", ["corpus", "holdout", "holdout2", "holdout3"])
def test_the_epoch_level_reduction_is_the_one_metrics_minimal_was_made_with(corpus):
    minimal = folder(corpus) / "metrics_minimal.parquet"
    derived = epoch_level(corpus, with_baseline=False)
    for a, b in ((derived, f"select * from '{minimal}'"), (f"select * from '{minimal}'", derived)):
        assert duckdb.sql(f"select count(*) from (({a}) except all ({b}))").fetchall() == [(0,)]


def test_per_class_precision_and_recall(diagnosed):
    key, found = diagnosed
    assert set(found) == set(truth(key[0]))
    confusion = confusion_of(key, found)
    for label in LABELS:
        precision, recall = scores(confusion, label)
        assert precision >= FLOORS[key] and recall >= FLOORS[key], (key, label, precision, recall, confusion)


def test_runs_right_and_macro_f1_hold_what_was_measured(diagnosed):
    key, found = diagnosed
    confusion = confusion_of(key, found)
    right, f1 = MEASURED[key]
    assert sum(confusion[(label, label)] for label in LABELS) >= right, (key, confusion)
    assert macro_f1(confusion) >= f1 - 5e-4, (key, macro_f1(confusion), confusion)


def test_healthy_runs_and_traps_are_left_alone(diagnosed):
    key, found = diagnosed
    healthy = [r for r in truth(key[0]).values() if r["label"] == "healthy"]
    known = KNOWN_FALSE_ALARMS.get(key, set())
    false_alarms = [r["run_id"] for r in healthy if found[r["run_id"]]["label"] != "healthy"]
    new = [r for r in false_alarms if r not in known]
    assert len(new) / len(healthy) <= MAX_FALSE_ALARMS, (key, false_alarms)
    traps = [r["run_id"] for r in healthy if r["trap"] != "none"]
    assert [t for t in traps if found[t]["label"] != "healthy" and t not in known] == []


def test_high_confidence_is_right_and_abstentions_say_so(diagnosed):
    key, found = diagnosed
    labels = truth(key[0])
    high = [r for r in labels if found[r]["confidence"] == "high"]
    right = [r for r in high if found[r]["label"] == labels[r]["label"]]
    assert len(right) >= MIN_HIGH_PRECISION * len(high), (key, sorted(set(high) - set(right)))
    for run, row in found.items():
        if row["evidence"].startswith(("no baseline", "no chance level", "not above chance yet")):
            assert (row["label"], row["confidence"]) == ("healthy", "low"), run
    if key[1] == "per_step":  # every rich log holds its untrained evaluation and its chance level
        assert not [r for r, row in found.items() if row["evidence"].startswith("no ")]


def test_every_diagnosis_names_its_evidence_and_a_fix(diagnosed):
    _, found = diagnosed
    for run_id, row in found.items():
        assert row["evidence"], run_id
        if row["label"] != "healthy":
            assert row["fix"] and row["onset_step"] is not None and row["confidence"] in ("high", "medium", "low"), (
                run_id
            )


def params_with_spread(corpus: str, into: Path) -> Path:
    """The corpus's params file plus `target_std` on its regression runs, the targets' spread (what
    rnnsweep logs at step 0), as a user would give it beside a loss-only log."""
    path = into / f"{corpus}-params-spread.parquet"
    duckdb.sql(f"""
        copy (
            select params.*, case when params.task = 'regression' then spread.value end as target_std
            from '{folder(corpus) / "params.parquet"}' params
            left join (select run_id, value from '{folder(corpus) / "metrics.parquet"}' where metric = 'target_std') spread
                using (run_id)
        ) to '{path}' (format parquet)
    """)
    return path


# The epoch-level log from epoch 1 (no baseline), with the targets' spread given in the params:
# the regression runs' chance loss is then known, so none abstains. (runs right, macro-F1) measured
# after the revision that saw holdout2; a regression fails.
WITH_SPREAD = {"corpus": (74, 0.986), "holdout": (48, 0.963), "holdout2": (44, 0.935), "holdout3": (53, 0.981)}


@pytest.mark.parametrize("corpus", sorted(WITH_SPREAD))
def test_the_targets_spread_given_in_the_params_ends_the_regression_abstentions(corpus, tmp_path):
    params = params_with_spread(corpus, tmp_path)
    found = diagnosed_runs(shape_file(corpus, "epoch_no_baseline", tmp_path), params, corpus, tmp_path)
    labels = truth(corpus)
    assert not [r for r, row in found.items() if row["evidence"].startswith(("no baseline", "no chance level"))]
    assert not [r for r in labels if labels[r]["label"] == "healthy" and found[r]["label"] != "healthy"]
    confusion = Counter((labels[r]["label"], found[r]["label"]) for r in labels)
    right, f1 = WITH_SPREAD[corpus]
    assert sum(confusion[(label, label)] for label in LABELS) >= right, confusion
    assert macro_f1(confusion) >= f1 - 5e-4, confusion


# tests/corpus/shapes (make_shapes.py): runs in the shapes issue 13 names, a development set
# built after the rules were revised (many-class language-model-like runs whose log holds loss
# only, late divergence, slow learners at chance). Every run gets its label at both shapes.
# slow-healthy-02 (lr 2e-4, 4 epochs) predicts the same for every input so far (spread 1 % of
# the targets') but its validation loss falls at every evaluation: a slow learner (healthy, low),
# where the rules before said constant_output, high.
SHAPES_MISSES = {"metrics": set(), "metrics_minimal": set()}


def diagnose_shapes(name: str, level: str, into: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    """(truth, diagnosis) per run of tests/corpus/<name> imported at `level` (metrics: per step;
    metrics_minimal: epoch-level from epoch 1, loss only for the lm-* runs)."""
    shapes = CORPUS / name
    labels = {r["run_id"]: r for r in pq.read_table(shapes / "labels.parquet").to_pylist()}
    return labels, diagnosed_runs(shapes / f"{level}.parquet", shapes / "params.parquet", name, into)


@pytest.mark.parametrize("level", sorted(SHAPES_MISSES))
def test_log_shapes_of_issue_13(level, tmp_path):
    labels, found = diagnose_shapes("shapes", level, tmp_path)
    assert all(r["manifested"] for r in labels.values())
    wrong = {r for r in labels if found[r]["label"] != labels[r]["label"]}
    assert wrong == SHAPES_MISSES[level], {r: (labels[r]["label"], found[r]["evidence"]) for r in wrong}
    slow = found["slow-healthy-01"]  # the quickstart's LSTM at lr 3e-4, at chance after 8 epochs
    assert (slow["confidence"], slow["evidence"].split(";")[0]) == (
        "low",
        "not above chance yet: raise lr or train longer",
    )
    if level == "metrics":  # slow-healthy-02 per step: the same output for every input, so far
        slower = found["slow-healthy-02"]
        assert slower["confidence"] == "low" and slower["evidence"].startswith("predictions barely vary yet")


# tests/corpus/shapes_holdout (make_shapes.py --holdout): the held-out twin of shapes/, made after
# the rules were revised on shapes/ (its configurations chosen on the manifestation checks only).
# Scored untuned first: 12/15 per step, 11/15 epoch-level, macro-F1 0.781 / 0.762, false alarms
# 1/8 and 2/8 (ho-slow-healthy-02 constant_output at both levels, ho-plateau-healthy-01
# overfitting at epoch level). Two rule changes followed, decided on the development sets: the
# slow-learner exemption also reads a validation loss that sets a new best at every window, and
# without a step-0 evaluation overfitting counts the gain from the chance loss. The first form of
# the exemption (new bests in the final 20 % only) exempted ho-lm-constant_output-02, whose
# loss-only epoch log sits at chance with noise, so it asks for every window: this set has been
# looked at, and its figures are no longer untouched. Measured now, truth -> diagnosis:
# - ho-late-diverged-01 (diverged -> healthy, both levels): its train loss jumped from 0.011 to
#   0.32 in epochs 5-7 and came back to 0.081 (val balanced acc 0.998): 14.7x its best, but only
#   about 11 % of what it had learned given back, under the late-jump rule's 15 % guard.
# - ho-late-diverged-03 (diverged -> healthy, both levels): stuck at a loss of about 0.8 for six
#   epochs, then recovered in its last one (val balanced acc 1.0); the check reads the final
#   epoch's mean (2.2x its best), the rules the end of training.
# Macro-F1 over the four labels the set holds (no overfitting run in it).
SHAPES_HOLDOUT_MISSES = {
    "metrics": {"ho-late-diverged-01", "ho-late-diverged-03"},
    "metrics_minimal": {"ho-late-diverged-01", "ho-late-diverged-03"},
}
SHAPES_HOLDOUT_FALSE_ALARMS = {"metrics": set(), "metrics_minimal": set()}
SHAPES_HOLDOUT_MACRO_F1 = {"metrics": 0.847, "metrics_minimal": 0.847}
SHAPES_HOLDOUT_LABELS = ("healthy", "l2_collapsed", "diverged", "constant_output")


@pytest.mark.parametrize("level", sorted(SHAPES_HOLDOUT_MISSES))
def test_log_shapes_held_out(level, tmp_path):
    labels, found = diagnose_shapes("shapes_holdout", level, tmp_path)
    assert all(r["manifested"] for r in labels.values()) and len(labels) == 15
    assert not set(labels) & set(truth("shapes"))  # no run shared with shapes/
    assert {r["label"] for r in labels.values()} == set(SHAPES_HOLDOUT_LABELS)
    wrong = {r for r in labels if found[r]["label"] != labels[r]["label"]}
    assert wrong == SHAPES_HOLDOUT_MISSES[level], {r: (labels[r]["label"], found[r]["evidence"]) for r in wrong}
    alarms = {r for r in labels if labels[r]["label"] == "healthy" and found[r]["label"] != "healthy"}
    assert alarms == SHAPES_HOLDOUT_FALSE_ALARMS[level]
    confusion = Counter((labels[r]["label"], found[r]["label"]) for r in labels)
    assert macro_f1(confusion, SHAPES_HOLDOUT_LABELS) >= SHAPES_HOLDOUT_MACRO_F1[level] - 5e-4, confusion
    for run, row in found.items():
        if row["evidence"].startswith("not above chance yet"):
            assert (row["label"], row["confidence"]) == ("healthy", "low"), run


def print_confusion(confusion: Counter, truths) -> None:
    """A markdown confusion matrix: a row per true label in `truths`, a column per diagnosis."""
    print("| truth \\ diagnosis | " + " | ".join(LABELS) + " |")
    print("|---" * (len(LABELS) + 1) + "|")
    for t in truths:
        print(f"| {t} | " + " | ".join(str(confusion[(t, p)]) for p in LABELS) + " |")


def report_shapes(name: str) -> None:
    """shapes/ or shapes_holdout/ at both levels, as report() prints the corpora."""
    import tempfile

    for level in ("metrics", "metrics_minimal"):
        with tempfile.TemporaryDirectory() as tmp:
            labels, found = diagnose_shapes(name, level, Path(tmp))
        confusion = Counter((labels[r]["label"], found[r]["label"]) for r in labels)
        present = [label for label in LABELS if any(r["label"] == label for r in labels.values())]
        healthy = [r for r in labels if labels[r]["label"] == "healthy"]
        alarms = sorted(r for r in healthy if found[r]["label"] != "healthy")
        right = sum(confusion[(label, label)] for label in LABELS)
        print(
            f"\n{name} / {level}: {right}/{len(labels)} right, macro-F1 {macro_f1(confusion, present):.3f} "
            f"(over {', '.join(present)}), false alarms {len(alarms)}/{len(healthy)}: {', '.join(alarms) or 'none'}"
        )
        print_confusion(confusion, present)
        print("| run | truth | diagnosis | confidence |\n|---|---|---|---|")
        for r in labels:
            mark = "" if found[r]["label"] == labels[r]["label"] else " (wrong)"
            print(f"| {r} | {labels[r]['label']} | {found[r]['label']}{mark} | {found[r]['confidence']} |")


def report() -> None:
    """The figures tests/corpus/README.md quotes: `python -m tests.test_corpus` from the repo root."""
    import tempfile

    for key in sorted(FLOORS):
        corpus, shape = key
        with tempfile.TemporaryDirectory() as tmp:
            found = diagnosed_runs(
                shape_file(corpus, shape, Path(tmp)), folder(corpus) / "params.parquet", corpus, Path(tmp)
            )
        labels, confusion = truth(corpus), confusion_of(key, found)
        healthy = [r for r in labels if labels[r]["label"] == "healthy"]
        alarms = sum(found[r]["label"] != "healthy" for r in healthy)
        right = sum(confusion[(label, label)] for label in LABELS)
        print(
            f"\n{corpus} / {shape}: {right}/{len(labels)} right, macro-F1 {macro_f1(confusion):.3f}, "
            f"false alarms {alarms}/{len(healthy)}"
        )
        print_confusion(confusion, LABELS)
        for level in ("high", "medium", "low"):
            runs = [r for r in labels if found[r]["confidence"] == level]
            ok = sum(found[r]["label"] == labels[r]["label"] for r in runs)
            print(f"precision at {level}: {ok}/{len(runs)}" + (f" = {ok / len(runs):.3f}" if runs else ""))
        abstained = [r for r in labels if found[r]["evidence"].startswith(("no baseline", "no chance level"))]
        print(f"abstentions (no baseline / no chance level): {len(abstained)}: {', '.join(sorted(abstained))}")
        decided = Counter((labels[r]["label"], found[r]["label"]) for r in labels if r not in abstained)
        print(
            f"where it decided ({len(labels) - len(abstained)}/{len(labels)} runs): "
            f"{sum(decided[(label, label)] for label in LABELS)} right, macro-F1 {macro_f1(decided):.3f}"
        )
        missed = sorted(r for r in labels if found[r]["label"] != labels[r]["label"])
        print(
            "wrong: "
            + ", ".join(f"{r} ({labels[r]['label']} -> {found[r]['label']}/{found[r]['confidence']})" for r in missed)
        )

    for corpus in sorted(WITH_SPREAD):
        with tempfile.TemporaryDirectory() as tmp:
            params = params_with_spread(corpus, Path(tmp))
            found = diagnosed_runs(shape_file(corpus, "epoch_no_baseline", Path(tmp)), params, corpus, Path(tmp))
        labels = truth(corpus)
        confusion = Counter((labels[r]["label"], found[r]["label"]) for r in labels)
        alarms = sum(found[r]["label"] != "healthy" for r in labels if labels[r]["label"] == "healthy")
        print(
            f"\n{corpus} / epoch_no_baseline, target_std in the params: "
            f"{sum(confusion[(label, label)] for label in LABELS)}/{len(labels)} right, "
            f"macro-F1 {macro_f1(confusion):.3f}, false alarms {alarms}"
        )

    for name in ("shapes", "shapes_holdout"):
        report_shapes(name)


if __name__ == "__main__":
    report()
