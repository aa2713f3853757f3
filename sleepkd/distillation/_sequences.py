"""Rows (one 30-s epoch each) <-> nights (padded sequences) for the night-level models.

A night-level estimator keeps sklearn's contract: a row of ``X`` is one epoch, and the
night each row belongs to travels beside it (``nights``, routed like ``groups``). Inside,
rows are assembled into nights in their given order, cut into training windows, padded
to a common length with a mask, and the per-epoch outputs are split back into rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from torch.utils.data import Dataset

#: Target value of epochs that carry no loss: unscored epochs and padding.
IGNORE = -1


class NightIndex:
    """Which rows form which night, in the order the rows are given.

    Parameters
    ----------
    nights : array-like of shape (n_rows,) or None
        Night (recording) id of each row; rows of a night must be in time order (they
        need not be contiguous: the rows of a night keep their relative order).
        ``None``: all rows are one night, in the given order.
    n_rows : int
        Number of rows (checked against ``nights``).

    Attributes
    ----------
    ids : ndarray
        Night ids, in the order of their first row.
    rows : list of ndarray of int
        Row positions of each night, in time order.
    codes : ndarray of int, shape (n_rows,)
        Night number (position in ``ids``) of each row.

    Examples
    --------
    >>> index = NightIndex(["b", "a", "b", "a", "b"], 5)
    >>> index.ids.tolist(), [r.tolist() for r in index.rows]
    (['b', 'a'], [[0, 2, 4], [1, 3]])
    >>> index.unpack(index.pack(np.arange(5.0))).tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0]
    """

    def __init__(self, nights: ArrayLike | None, n_rows: int) -> None:
        if nights is None:
            codes = np.zeros(n_rows, dtype=np.int64)
            ids = np.array([0])
        else:
            nights = np.asarray(nights)
            if nights.ndim != 1 or len(nights) != n_rows:
                raise ValueError(
                    f"nights must be 1-D with one night id per row ({n_rows}), got shape "
                    f"{nights.shape}."
                )
            if pd.isna(nights).any():
                raise ValueError("nights contains missing values; give every row a night id.")
            codes, ids = pd.factorize(nights, sort=False)
            ids = np.asarray(ids)
        self.ids = ids
        self.codes = np.asarray(codes, dtype=np.int64)
        order = np.argsort(self.codes, kind="stable")
        bounds = np.cumsum(np.bincount(self.codes, minlength=len(ids)))[:-1]
        self.rows = np.split(order, bounds)
        self.n_rows = n_rows

    @property
    def n_nights(self) -> int:
        """Number of nights."""
        return len(self.rows)

    @property
    def lengths(self) -> np.ndarray:
        """Number of rows (epochs) of each night."""
        return np.array([len(r) for r in self.rows], dtype=np.int64)

    def subset(self, rows: np.ndarray) -> NightIndex:
        """The index of a subset of rows (renumbered ``0 .. len(rows) - 1``)."""
        return NightIndex(self.codes[np.asarray(rows)], len(rows))

    def check_nested_in(self, groups: np.ndarray | None) -> None:
        """Refuse a night whose rows belong to more than one group (subject)."""
        if groups is None:
            return
        for night, rows in zip(self.ids, self.rows):
            if len(np.unique(groups[rows])) > 1:
                raise ValueError(
                    f"Night {night!r} has rows of several groups "
                    f"{np.unique(groups[rows]).tolist()[:5]}: a night belongs to one "
                    "subject, so that no split cuts it."
                )

    def pack(self, values: np.ndarray, fill=0) -> np.ndarray:
        """Rows -> ``(n_nights, max_length, *values.shape[1:])``, padded with ``fill``."""
        values = np.asarray(values)
        out = np.full((self.n_nights, int(self.lengths.max())) + values.shape[1:], fill,
                      dtype=values.dtype)
        for i, rows in enumerate(self.rows):
            out[i, : len(rows)] = values[rows]
        return out

    def unpack(self, sequences: np.ndarray) -> np.ndarray:
        """``(n_nights, max_length, ...)`` -> rows in their original order."""
        out = np.empty((self.n_rows,) + sequences.shape[2:], dtype=sequences.dtype)
        for i, rows in enumerate(self.rows):
            out[rows] = sequences[i, : len(rows)]
        return out


def nights_or_runs(nights: ArrayLike | None, groups: np.ndarray | None) -> ArrayLike | None:
    """The night ids to use: ``nights`` if given, else the runs of consecutive rows of
    one group (subject), else ``None`` (all rows are one night)."""
    if nights is not None or groups is None:
        return nights
    groups = np.asarray(groups)
    if len(groups) == 0:
        return None
    return np.cumsum(np.r_[True, groups[1:] != groups[:-1]])


def window_starts(length: int, window: int | None, offset: int = 0) -> np.ndarray:
    """Starts of the training windows of a night of ``length`` epochs.

    Windows of ``window`` epochs overlap by half; ``offset`` (in ``[0, window // 2)``)
    shifts the grid so that every training epoch sees other cuts. Starts below zero are
    clipped (the first window is then shorter, i.e. padded). ``window=None`` or a night
    no longer than ``window``: one window, the whole night.
    """
    if window is None or length <= window:
        return np.zeros(1, dtype=np.int64)
    stride = max(window // 2, 1)
    starts = np.arange(-offset, length - stride, stride)
    return np.unique(np.clip(starts, 0, None))


class NightWindows(Dataset):
    """A torch-style dataset of night windows (padded sequences of epochs).

    Item ``i`` is ``(inputs, y)`` with ``inputs`` a dict of ``(length, ...)`` arrays:
    every entry of ``arrays`` cut to the window, plus ``"mask"`` (True for real epochs,
    False for padding); ``y`` holds the encoded labels, :data:`IGNORE` for unscored
    epochs and padding. skorch batches these dicts (its default collate stacks them).

    Parameters
    ----------
    arrays : dict of str to ndarray
        Per-row inputs (``"x"``, and e.g. ``"teacher_logits"``), all with ``n_rows``
        rows.
    y : ndarray of int, shape (n_rows,)
        Encoded labels (:data:`IGNORE` for unscored rows).
    index : NightIndex
        The nights of the rows.
    window : int or None
        Epochs per window; ``None``: whole nights (validation and inference).
    seed : int or None
        With a seed, :meth:`redraw` moves the window grid at random (a new cut each
        training epoch); without, the grid stays fixed.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], y: np.ndarray, index: NightIndex,
                 window: int | None = None, seed: int | None = None) -> None:
        self.arrays = dict(arrays)
        self.y = np.asarray(y, dtype=np.int64)
        self.index = index
        self.window = window
        self.length = int(index.lengths.max()) if window is None else int(
            min(window, index.lengths.max()))
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._set_windows(np.zeros(index.n_nights, dtype=np.int64))

    def _set_windows(self, offsets: np.ndarray) -> None:
        windows = []
        for night, (rows, offset) in enumerate(zip(self.index.rows, offsets)):
            for start in window_starts(len(rows), self.window, int(offset)):
                windows.append((night, int(start), int(min(start + self.length, len(rows)))))
        self.windows = windows

    def redraw(self) -> None:
        """Draw a new window grid for each night (no-op without a seed or windows)."""
        if self._rng is None or self.window is None:
            return
        half = max(self.window // 2, 1)
        self._set_windows(self._rng.integers(0, half, size=self.index.n_nights))

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int):
        night, start, stop = self.windows[i]
        rows = self.index.rows[night][start:stop]
        n = len(rows)
        inputs = {}
        for name, values in self.arrays.items():
            cut = np.zeros((self.length,) + values.shape[1:], dtype=values.dtype)
            cut[:n] = values[rows]
            inputs[name] = cut
        mask = np.zeros(self.length, dtype=bool)
        mask[:n] = True
        inputs["mask"] = mask
        y = np.full(self.length, IGNORE, dtype=np.int64)
        y[:n] = self.y[rows]
        return inputs, y
