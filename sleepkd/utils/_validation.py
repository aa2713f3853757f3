"""Input checks shared across sleepkd, each raising a ValueError that names the problem."""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike


def check_sampling_rate(fs: float, name: str = "fs") -> float:
    """Return ``fs`` as a positive finite float or raise ``ValueError``."""
    if isinstance(fs, bool) or not isinstance(fs, numbers.Real):
        raise ValueError(f"{name} must be a positive number in Hz, got {fs!r}.")
    fs = float(fs)
    if not np.isfinite(fs) or fs <= 0:
        raise ValueError(f"{name} must be a positive number in Hz, got {fs!r}.")
    return fs


def check_signal_array(
    X: ArrayLike,
    *,
    ndim: tuple[int, ...] = (2, 3),
    name: str = "X",
    dtype=np.float32,
    allow_empty: bool = False,
) -> np.ndarray:
    """Validate a signal array: numeric, finite, of an accepted dimensionality.

    Parameters
    ----------
    X : array-like
        The signals, e.g. ``(n_epochs, n_times)`` or ``(n_epochs, n_channels, n_times)``.
    ndim : tuple of int
        Accepted numbers of dimensions.
    name : str
        Name used in error messages.
    dtype : numpy dtype
        Output dtype.
    allow_empty : bool
        Whether an array with no elements is accepted.

    Returns
    -------
    X : ndarray
        ``X`` as a C-contiguous array of ``dtype``.
    """
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}.")
    if arr.ndim not in ndim:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, ndim))} dimensions, "
            f"got an array of shape {arr.shape}."
        )
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape {arr.shape}).")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.all(np.isfinite(arr)):
        n_bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains NaN or infinity ({n_bad} values).")
    return arr
