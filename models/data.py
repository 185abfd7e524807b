"""Small data sets for the examples: scikit-learn's digits and user `.npz` files.

`load_digits` needs no download: the 1,797 8x8 handwritten digits ship with
scikit-learn. `load_npz` reads a data set the user already has (e.g. MNIST
saved as `np.savez(path, x=images, y=labels)`), and checks it.
"""

from __future__ import annotations

import numbers
import os
import zipfile
from typing import Any, NamedTuple

import numpy as np

__all__ = ["DataError", "DataSplit", "load_digits", "load_npz"]


class DataError(ValueError):
    """A data file is missing or ill-formed; the message names the file."""


class DataSplit(NamedTuple):
    """A fixed train/validation split (NumPy arrays)."""

    x_train: np.ndarray  # float32, (n_train, ...) features
    y_train: np.ndarray  # int32, (n_train,) class labels
    x_valid: np.ndarray  # float32, (n_valid, ...)
    y_valid: np.ndarray  # int32, (n_valid,)


def load_digits(
    validation_fraction: float = 0.2, seed: int = 0, *, flatten: bool = False
) -> DataSplit:
    """scikit-learn's handwritten digits, scaled to [0, 1], with a fixed split.

    The 1,797 images of 8x8 pixels (integer intensities 0..16, divided by 16)
    and labels 0..9 are permuted with `numpy.random.default_rng(seed)`; the
    first `round(validation_fraction * 1797)` form the validation set and the
    rest the training set. The same `seed` always gives the same split.

    Args:
      validation_fraction: share of the examples held out, in (0, 1).
      seed: seed of the permutation, an int >= 0.
      flatten: return `x` as `(n, 64)` instead of NHWC images `(n, 8, 8, 1)`.

    Returns:
      A `DataSplit(x_train, y_train, x_valid, y_valid)`; `x` float32, `y` int32.

    Examples:
      >>> data = load_digits()
      >>> data.x_train.shape, data.x_valid.shape
      ((1438, 8, 8, 1), (359, 8, 8, 1))
    """
    if isinstance(validation_fraction, bool) or not isinstance(
        validation_fraction, numbers.Real
    ):
        raise TypeError(
            f"validation_fraction must be a number in (0, 1); got "
            f"{validation_fraction!r}."
        )
    if not 0 < validation_fraction < 1:
        raise ValueError(
            f"validation_fraction must be in (0, 1); got {validation_fraction!r}."
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an int >= 0; got {seed!r}.")
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as error:
        raise ImportError(
            "load_digits needs scikit-learn, an optional dependency: "
            "pip install 'gradtransforms[examples]' (or pip install scikit-learn)."
        ) from error

    bunch: Any = sklearn_digits()  # a Bunch (typed `Bunch | tuple` by sklearn)
    x = (np.asarray(bunch.images, np.float32) / np.float32(16.0))[..., None]
    if flatten:
        x = x.reshape(len(x), -1)
    y = np.asarray(bunch.target, np.int32)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_valid = round(validation_fraction * len(y))
    if not 0 < n_valid < len(y):
        raise ValueError(
            f"validation_fraction={validation_fraction!r} leaves {n_valid} of "
            f"{len(y)} examples for validation; both sets must be non-empty."
        )
    valid, train = perm[:n_valid], perm[n_valid:]
    return DataSplit(x[train], y[train], x[valid], y[valid])


def _fail(path: Any, problem: str) -> DataError:
    return DataError(f"{os.fspath(path)!s}: {problem}")


def load_npz(
    path: str | os.PathLike, *, x_key: str = "x", y_key: str = "y"
) -> tuple[np.ndarray, np.ndarray]:
    """Load `(x, y)` from an `.npz` file holding a feature and a label array.

    Checks, each failing with a `DataError` (a `ValueError`) that names the
    file and the problem: the file exists and is an `.npz` archive without
    pickled objects; it has the two keys; `x` is real-valued (bool excluded)
    with at least one axis and finite values; `y` is a 1-D array of
    non-negative integers; both have the same length.

    Args:
      path: the `.npz` file, as written by `np.savez(path, x=..., y=...)`.
      x_key: name of the feature array.
      y_key: name of the label array.

    Returns:
      `(x, y)`: `x` as float32 with its shape kept, `y` as int32.
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError as e:
        raise _fail(path, "file not found.") from e
    except IsADirectoryError as e:
        raise _fail(path, "is a directory, not an .npz file.") from e
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise _fail(path, f"not a readable .npz file ({e}).") from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _fail(path, "holds a single .npy array, not an .npz archive.")
    with archive:
        missing = [k for k in (x_key, y_key) if k not in archive.files]
        if missing:
            raise _fail(
                path,
                f"missing array(s) {missing}; found {sorted(archive.files)}.",
            )
        try:
            x, y = archive[x_key], archive[y_key]
        except ValueError as e:  # object arrays need pickle
            raise _fail(path, f"cannot read arrays without pickle ({e}).") from e
    if x.dtype == np.bool_ or not (
        np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
    ):
        raise _fail(path, f"{x_key!r} must be real numbers; got dtype {x.dtype}.")
    if x.ndim < 1:
        raise _fail(path, f"{x_key!r} must have a leading example axis; got 0-d.")
    if not np.all(np.isfinite(x)):
        raise _fail(path, f"{x_key!r} has non-finite values.")
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise _fail(path, f"{y_key!r} must be integer labels; got dtype {y.dtype}.")
    if y.ndim != 1:
        raise _fail(path, f"{y_key!r} must be 1-D; got shape {y.shape}.")
    if y.size and y.min() < 0:
        raise _fail(path, f"{y_key!r} has negative labels.")
    if len(x) != len(y):
        raise _fail(
            path,
            f"{x_key!r} has {len(x)} examples but {y_key!r} has {len(y)} labels.",
        )
    return x.astype(np.float32), y.astype(np.int32)
