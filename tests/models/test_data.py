"""Tests for models.data: the digits split and `.npz` loading with clear errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits as sklearn_digits

from gradtransforms.models.data import DataError, DataSplit, load_digits, load_npz


def _sorted_rows(x: np.ndarray) -> np.ndarray:
    x = x.reshape(len(x), -1)
    return x[np.lexsort(x.T[::-1])]


def test_load_digits_split_shapes_and_ranges():
    data = load_digits()
    assert isinstance(data, DataSplit)
    assert data.x_train.shape == (1438, 8, 8, 1)
    assert data.x_valid.shape == (359, 8, 8, 1)  # round(0.2 * 1797)
    assert data.y_train.shape == (1438,) and data.y_valid.shape == (359,)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    assert set(np.unique(data.y_train)) == set(range(10))


def test_load_digits_is_a_partition_of_sklearns_data():
    data = load_digits(flatten=True)
    assert data.x_train.shape == (1438, 64)
    raw = sklearn_digits()
    x_all = np.concatenate([data.x_train, data.x_valid])
    y_all = np.concatenate([data.y_train, data.y_valid])
    expected = np.column_stack([raw.data / 16.0, raw.target])
    got = np.column_stack([x_all.astype(np.float64), y_all])
    np.testing.assert_array_equal(_sorted_rows(got), _sorted_rows(expected))


def test_load_digits_fixed_split():
    a, b = load_digits(seed=3), load_digits(seed=3)
    np.testing.assert_array_equal(a.x_valid, b.x_valid)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    c = load_digits(seed=4)
    assert not np.array_equal(a.y_valid, c.y_valid)
    half = load_digits(validation_fraction=0.5)
    assert len(half.y_valid) == 898  # round(898.5) rounds half to even


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, 1e-4, 0.99999])
def test_load_digits_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="validation_fraction"):
        load_digits(validation_fraction=fraction)


def test_load_digits_rejects_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        load_digits(seed=-1)
    with pytest.raises(TypeError, match="validation_fraction"):
        load_digits(validation_fraction="0.2")


def test_load_npz_round_trip(tmp_path):
    path = tmp_path / "mnist_like.npz"
    x = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    y = np.array([3, 1, 4, 1, 5], np.int64)
    np.savez(path, x=x, y=y)
    got_x, got_y = load_npz(path)
    assert got_x.dtype == np.float32 and got_y.dtype == np.int32
    np.testing.assert_array_equal(got_x, x.astype(np.float32))
    np.testing.assert_array_equal(got_y, y)
    np.savez(tmp_path / "keys.npz", images=x, labels=y)
    got_x, _ = load_npz(str(tmp_path / "keys.npz"), x_key="images", y_key="labels")
    assert got_x.shape == (5, 28, 28)


def test_load_npz_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(DataError, match=r"nope\.npz: file not found"):
        load_npz(path)


def _write(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


X, Y = np.zeros((4, 3), np.float32), np.arange(4)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": X}, r"missing array\(s\) \['y'\]"),
        ({"y": Y}, r"missing array\(s\) \['x'\]"),
        ({"x": X, "y": np.arange(3)}, "'x' has 4 examples but 'y' has 3 labels"),
        ({"x": X, "y": Y.astype(np.float32)}, "'y' must be integer labels"),
        ({"x": X.astype(bool), "y": Y}, "'x' must be real numbers"),
        ({"x": np.array(["a"] * 4), "y": Y}, "'x' must be real numbers"),
        ({"x": X, "y": Y.reshape(2, 2)}, "'y' must be 1-D"),
        ({"x": X, "y": Y - 1}, "negative labels"),
        ({"x": np.full((4, 3), np.nan), "y": Y}, "non-finite"),
        ({"x": np.float32(1.0), "y": Y}, "leading example axis"),
    ],
)
def test_load_npz_ill_formed(tmp_path, arrays, message):
    path = _write(tmp_path, **arrays)
    with pytest.raises(DataError, match=message) as info:
        load_npz(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_load_npz_object_arrays_are_refused(tmp_path):
    path = _write(tmp_path, x=np.array([[1], [1, 2]], dtype=object), y=np.arange(2))
    with pytest.raises(DataError, match="without pickle"):
        load_npz(path)


def test_load_npz_not_an_archive(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file")
    with pytest.raises(DataError, match=r"not a readable \.npz file"):
        load_npz(garbage)
    single = tmp_path / "single.npy"
    np.save(single, X)
    with pytest.raises(DataError, match=r"single \.npy array"):
        load_npz(single)
    with pytest.raises(DataError, match="directory"):
        load_npz(tmp_path)


def test_load_digits_without_scikit_learn_says_what_to_install(monkeypatch):
    # A None entry in sys.modules makes `import sklearn.datasets` fail.
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"gradtransforms\[examples\]"):
        load_digits()
