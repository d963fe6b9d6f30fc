"""Task generators: deterministic per data seed, the right shapes, labels true to their rule;
user files: read from NPZ and Parquet, every defect a clear error before training."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rnnsweep.jobs import shapes
from rnnsweep.jobs.config import DataConfig
from rnnsweep.jobs.tasks import events, sequences4, user_file, word_vectors

SMALL = DataConfig(n_train=400, n_val=100, seq_len=40, n_features=3, positive_rate=0.05, target_dim=16)


@pytest.mark.parametrize("module", [events, sequences4, word_vectors])
def test_generators_are_deterministic_per_data_seed(module):
    a, b = module.make(SMALL), module.make(SMALL)
    other = module.make(SMALL.model_copy(update={"seed": 1}))
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_val, b.y_val)
    assert not np.array_equal(a.x_train, other.x_train)
    assert not np.array_equal(a.x_train[: len(a.x_val)], a.x_val)  # train and val are different draws
    assert a.x_train.dtype == np.float32 and a.x_train.shape[:2] == (400, 40)
    assert a.x_val.shape[:2] == (100, 40)


def test_events_labels_are_the_windowed_sum_rule_at_the_requested_rate():
    data = events.make(DataConfig(n_train=4000, n_val=1000, seq_len=60, n_features=4, positive_rate=0.01))
    assert data.kind == "binary" and data.n_outputs == 1
    # labels are the detector's rule applied to the data itself
    sums = events.windowed_max(data.x_train[:, :, 0])
    assert np.array_equal(data.y_train, (sums > events.THRESHOLD).astype(np.int64))
    # exactly 1 in 100 positive, as asked
    assert data.y_train.sum() == 40 and data.y_val.sum() == 10
    # decoys on other channels are as strong as real events, so channel 0 is what matters
    assert np.percentile(events.windowed_max(data.x_train[:, :, 1]), 90) > events.THRESHOLD


def test_windowed_max_is_the_largest_sum_of_consecutive_steps():
    channel = np.array([[0, 1, 2, 3, 0, 0], [5, 0, 0, 0, 0, 5]], dtype=np.float32)
    assert events.windowed_max(channel, window=2).tolist() == [5.0, 5.0]
    assert events.windowed_max(channel, window=3).tolist() == [6.0, 5.0]


def test_sequences4_has_four_balanced_classes():
    data = sequences4.make(DataConfig(n_train=2000, n_val=100, seq_len=30, n_features=2, noise=0.0))
    assert data.kind == "multiclass" and data.n_outputs == 4
    counts = np.bincount(data.y_train, minlength=4)
    assert counts.min() > 400
    # without noise, square waves take only their two levels
    square = data.x_train[data.y_train == 1]
    levels = np.abs(square) / np.abs(square).max(axis=1, keepdims=True)
    assert np.allclose(levels, 1.0, atol=1e-5)


def test_word_vectors_targets_are_a_function_of_the_characters():
    config = DataConfig(n_train=300, n_val=50, seq_len=12, target_dim=16)
    data = word_vectors.make(config)
    assert data.kind == "regression" and data.y_train.shape == (300, 16)
    assert data.x_train.shape[2] == 27 and np.allclose(data.x_train.sum(axis=2), 1.0)  # one-hot
    table = word_vectors.bigram_table(config)
    first = word_vectors.target_vector("football", table)
    assert np.allclose(first, word_vectors.target_vector("football", table))
    assert np.isclose(np.linalg.norm(first), 1.0)
    encoded = word_vectors.encode(["football"], 12)[0].argmax(axis=1)
    assert "".join(word_vectors.ALPHABET[i] for i in encoded) == "football$$$$"
    # decode each training word back from its one-hot rows and recompute its target
    for row in range(5):
        word = "".join(word_vectors.ALPHABET[i] for i in data.x_train[row].argmax(axis=1)).rstrip("$")
        assert np.allclose(data.y_train[row], word_vectors.target_vector(word, table), atol=1e-6)


@pytest.mark.parametrize(
    ("task", "module"), [("events", events), ("sequences4", sequences4), ("word_vectors", word_vectors)]
)
@pytest.mark.parametrize("n_features, target_dim", [(1, 1), (5, 7)])
def test_shapes_says_what_each_generator_returns(task, module, n_features, target_dim):
    """The driver sizes packs from jobs.shapes without generating data: it must be the data's shape."""
    config = DataConfig(
        n_train=40, n_val=20, seq_len=12, n_features=n_features, positive_rate=0.1, target_dim=target_dim
    )
    data = module.make(config)
    channels, outputs = shapes.input_channels(task, config), shapes.output_size(task, config)
    assert data.x_train.shape == (40, 12, channels) and data.x_val.shape == (20, 12, channels)
    assert (data.kind, data.n_outputs) == (shapes.KIND[task], outputs)
    if data.kind == "regression":
        assert data.y_train.shape == (40, outputs) and data.y_val.shape == (20, outputs)
    else:  # one logit for two classes, else one per class; every class drawn
        assert set(data.y_train.tolist()) == set(range(2 if data.kind == "binary" else outputs))


def test_a_file_tasks_shapes_come_from_its_file_not_its_config():
    with pytest.raises(ValueError, match="read from its data"):
        shapes.input_channels("file", DataConfig())
    with pytest.raises(ValueError, match="read from its data"):
        shapes.output_size("file", DataConfig())


# -- user files ---------------------------------------------------------------------------


def _npz(tmp_path, name="data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


def _good_xy(n=20, t=6, f=2, classes=3):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, t, f)).astype(np.float32), np.arange(n) % classes


def test_npz_classification_with_held_out_split(tmp_path):
    x, y = _good_xy()
    data = user_file.load(DataConfig(path=_npz(tmp_path, x=x, y=y), val_fraction=0.25))
    assert data.kind == "multiclass" and data.n_outputs == 3
    assert len(data.x_train) == 15 and len(data.x_val) == 5
    assert data.x_train.shape[1:] == (6, 2)


def test_npz_binary_and_regression_and_explicit_val(tmp_path):
    x, y = _good_xy(classes=2)
    binary = user_file.load(DataConfig(path=_npz(tmp_path, x=x, y=y, x_val=x[:4], y_val=y[:4])))
    assert binary.kind == "binary" and binary.n_outputs == 1 and len(binary.x_val) == 4
    targets = np.random.default_rng(1).normal(size=(20, 5)).astype(np.float32)
    regression = user_file.load(DataConfig(path=_npz(tmp_path, "r.npz", x=x, y=targets)))
    assert regression.kind == "regression" and regression.n_outputs == 5


def test_parquet_rows_with_a_split_column(tmp_path):
    x, y = _good_xy(n=10, classes=2)
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"x": x.tolist(), "y": y, "split": ["train"] * 7 + ["val"] * 3}), path)
    data = user_file.load(DataConfig(path=str(path)))
    assert len(data.x_train) == 7 and len(data.x_val) == 3 and data.kind == "binary"
    assert np.allclose(data.x_train[0], x[0])


@pytest.mark.parametrize(
    ("arrays", "key", "problem"),
    [
        ({"y": np.zeros(5, int)}, "x", "missing array"),
        ({"x": np.zeros((5, 3)), "y": np.zeros(5, int)}, "x", "must have shape (n, seq_len, n_features)"),
        ({"x": np.zeros((0, 3, 2)), "y": np.zeros(0, int)}, "x", "is empty"),
        ({"x": np.full((5, 3, 2), np.nan), "y": np.arange(5) % 2}, "x", "30 NaN/Inf values (first in sequence 0)"),
        ({"x": np.zeros((5, 3, 2)), "y": np.array([0.0, np.inf, 0, 0, 0])}, "y", "1 NaN/Inf values"),
        ({"x": np.zeros((5, 3, 2)), "y": np.arange(4) % 2}, "y", "has 4 rows but x has 5"),
        ({"x": np.zeros((6, 3, 2)), "y": np.array([0, 0, 2, 2, 0, 2])}, "y", "missing [1]"),
        ({"x": np.zeros((6, 3, 2)), "y": np.array([0, -1, 0, -1, 0, 0])}, "y", "found a negative label"),
        ({"x": np.zeros((6, 3, 2)), "y": np.zeros(6, int)}, "y", "needs at least 2 classes"),
        ({"x": np.zeros((6, 3, 2)), "y": np.arange(6) % 2, "x_val": np.zeros((2, 4, 2))}, "y_val", "missing array"),
        (
            {"x": np.zeros((6, 3, 2)), "y": np.arange(6) % 2, "x_val": np.zeros((2, 4, 2)), "y_val": np.arange(2)},
            "x_val",
            "steps/features (4, 2) differ",
        ),
        ({"x": np.array(["a"] * 6).reshape(1, 2, 3), "y": np.zeros(1, int)}, "x", "must hold numbers"),
    ],
)
def test_defective_files_are_refused_with_key_and_problem(tmp_path, arrays, key, problem):
    path = _npz(tmp_path, **arrays)
    with pytest.raises(user_file.DataFileError) as caught:
        user_file.load(DataConfig(path=path))
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{path}: {key}: ")


def test_unreadable_and_unsupported_files(tmp_path):
    for name, content, problem in [
        ("broken.npz", b"not a zip", "not a readable .npz"),
        ("broken.parquet", b"PAR1 nope", "not a readable Parquet"),
        ("data.csv", b"x,y\n", "must end in .npz or .parquet"),
    ]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(user_file.DataFileError, match=problem):
            user_file.load(DataConfig(path=str(tmp_path / name)))
    with pytest.raises(user_file.DataFileError, match="no such file"):
        user_file.load(DataConfig(path=str(tmp_path / "absent.npz")))


def test_parquet_ragged_rows_and_bad_split(tmp_path):
    ragged = tmp_path / "ragged.parquet"
    pq.write_table(pa.table({"x": [[[1.0, 2.0]], [[1.0, 2.0], [3.0, 4.0]]], "y": [0, 1]}), ragged)
    with pytest.raises(user_file.DataFileError, match="x: rows must all have the same seq_len"):
        user_file.load(DataConfig(path=str(ragged)))
    bad_split = tmp_path / "split.parquet"
    pq.write_table(pa.table({"x": [[[1.0]], [[2.0]]], "y": [0, 1], "split": ["train", "test"]}), bad_split)
    with pytest.raises(user_file.DataFileError, match=r"split: values must be 'train' or 'val' \(got \['test'\]\)"):
        user_file.load(DataConfig(path=str(bad_split)))


def test_data_file_errors_survive_pickling():
    """They cross the Ray boundary: the driver must see the same file, key and problem."""
    import pickle

    error = pickle.loads(pickle.dumps(user_file.DataFileError("d.npz", "y", "needs at least 2 classes")))
    assert (error.path, error.key, error.problem, str(error)) == (
        "d.npz",
        "y",
        "needs at least 2 classes",
        "d.npz: y: needs at least 2 classes",
    )
