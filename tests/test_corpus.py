"""The diagnosis, scored on real runs: tests/corpus holds small RNN trainings broken on
purpose (labels are the injected faults, see tests/corpus/README.md), with healthy traps
(noisy, early plateaus, slow learners, mild L2). Both the rich metrics rnnsweep logs and
their epoch-level reduction go through `rnnsweep import` and the diagnosis view; per-class
precision and recall and the false-alarm rate on healthy runs must hold.

The rules were revised while looking at tests/corpus; tests/corpus/holdout was generated
afterwards (other seeds, sizes, fault strengths) and scored once, untuned: its floors are
what generalisation is held to."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rnnsweep.service.diagnose import LABELS, diagnose
from rnnsweep.service.importer import import_runs

CORPUS = Path(__file__).parent / "corpus"
# Per-class precision and recall floors, per (corpus, logging level). Measured: development
# corpus 74/75 (rich) and 73/75 (epoch-level); held-out 47/50 at both levels.
FLOORS = {
    ("corpus", "metrics"): 0.9,
    ("corpus", "metrics_minimal"): 0.85,
    ("holdout", "metrics"): 0.7,
    ("holdout", "metrics_minimal"): 0.7,
}
MAX_FALSE_ALARMS = 0.05  # share of healthy runs given any other label, on either corpus


def folder(corpus: str) -> Path:
    return CORPUS if corpus == "corpus" else CORPUS / corpus


def truth(corpus: str = "corpus") -> dict[str, dict]:
    return {r["run_id"]: r for r in pq.read_table(folder(corpus) / "labels.parquet").to_pylist()}


def scores(confusion: Counter, label: str) -> tuple[float, float]:
    hits = confusion[(label, label)]
    predicted = sum(confusion[(t, label)] for t in LABELS)
    actual = sum(confusion[(label, p)] for p in LABELS)
    return hits / predicted if predicted else 0.0, hits / actual if actual else 0.0


@pytest.fixture(scope="module", params=sorted(FLOORS), ids=lambda key: "-".join(key))
def diagnosed(request, tmp_path_factory):
    corpus, level = request.param
    warehouse = tmp_path_factory.mktemp(f"{corpus}-{level}") / "wh.duckdb"
    import_runs(warehouse, folder(corpus) / f"{level}.parquet", folder(corpus) / "params.parquet", corpus)
    found = {r["run_id"].removeprefix(f"{corpus}:"): r for r in diagnose(warehouse, corpus).to_pylist()}
    return request.param, found


@pytest.mark.parametrize(("corpus", "per_class"), [("corpus", 10), ("holdout", 7)])
def test_each_corpus_covers_every_label_with_traps(corpus, per_class):
    labels = truth(corpus)
    counts = Counter(r["label"] for r in labels.values())
    assert set(counts) == set(LABELS) and min(counts.values()) >= per_class
    assert sum(1 for r in labels.values() if r["label"] == "healthy" and r["trap"] != "none") >= 6
    assert all(r["manifested"] for r in labels.values())
    if corpus == "holdout":
        assert not set(labels) & set(truth("corpus"))  # no run shared with the tuning corpus


def test_per_class_precision_and_recall(diagnosed):
    key, found = diagnosed
    labels = truth(key[0])
    assert set(found) == set(labels)
    confusion = Counter((labels[r]["label"], found[r]["label"]) for r in labels)
    for label in LABELS:
        precision, recall = scores(confusion, label)
        assert precision >= FLOORS[key] and recall >= FLOORS[key], (key, label, precision, recall, confusion)


def test_healthy_runs_and_traps_are_left_alone(diagnosed):
    key, found = diagnosed
    healthy = [r for r in truth(key[0]).values() if r["label"] == "healthy"]
    false_alarms = [r["run_id"] for r in healthy if found[r["run_id"]]["label"] != "healthy"]
    assert len(false_alarms) / len(healthy) <= MAX_FALSE_ALARMS, (key, false_alarms)
    traps = [r["run_id"] for r in healthy if r["trap"] != "none"]
    assert [t for t in traps if found[t]["label"] != "healthy"] == []


def test_every_diagnosis_names_its_evidence_and_a_fix(diagnosed):
    _, found = diagnosed
    for run_id, row in found.items():
        assert row["evidence"], run_id
        if row["label"] != "healthy":
            assert row["fix"] and row["onset_step"] is not None and row["confidence"] in ("high", "medium", "low"), (
                run_id
            )
