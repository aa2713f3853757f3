"""Training windows read lazily from a night store (a torch ``Dataset``)."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset

from sleepkd.distillation._sequences import IGNORE, window_starts
from sleepkd.io._store import NightStore
from sleepkd.stages import SCHEMES, UNSCORED, to_scheme

#: Nights whose memory maps stay open at once (each holds a file descriptor and the
#: pages read so far; older ones are closed first).
MAX_OPEN_NIGHTS = 32


class StoreWindows(Dataset):
    """Night windows served from a :class:`~sleepkd.io.NightStore`, read on demand.

    The same items as the dataset the night-level estimators train on
    (:class:`~sleepkd.distillation._sequences.NightWindows`): item ``i`` is
    ``(inputs, y)`` with ``inputs["x"]`` float32 of shape ``(length, n_chans,
    n_times)`` (heart rate: ``n_chans = 1``), ``inputs["mask"]`` bool ``(length,)``
    (False for padding) and ``y`` int64 ``(length,)``, the class index of each epoch
    in ``classes`` and -1 for unscored epochs and padding. Windows of ``window``
    epochs overlap by half; ``length = min(window, longest night)``.

    Only the stages of the nights are read when the dataset is made (a few kB per
    night); each item slices the window's epochs out of the memory-mapped ``.npy``
    file, so memory stays bounded by the batch (and the pages of the at most
    :data:`MAX_OPEN_NIGHTS` nights mapped at once), whatever the size of the cohort.
    The dataset pickles without its open maps, so ``DataLoader(num_workers=...)``
    workers open their own. Values are raw (beats/min, µV): the networks normalise.

    Parameters
    ----------
    store : NightStore or path
        The store.
    names : list of str, optional
        Nights to serve, in order; default: all nights of the store.
    signal : {"hr", "eeg", "ecg"}, default="hr"
        The array served as ``"x"``.
    window : int or None, default=256
        Epochs per window (256 epochs: 2 h 8 min); ``None``: whole nights, padded to
        the longest (validation and inference).
    classes : sequence of str, optional
        Labels in class-index order; default: the labels of ``scheme``.
    scheme : str, optional
        Map the stored stages to this (coarser) scheme first; default: the store's.
    unscored_label : str, default="?"
        Stage that carries no loss (target -1).
    seed : int or None
        With a seed, :meth:`redraw` moves each night's window grid at random (as
        ``NightWindows`` does, the same draws for the same seed).
    standardize : {"iqr", "std"} or None, default=None
        Centre each night on its median and divide by its interquartile range or
        standard deviation, as :func:`~sleepkd.datasets.standardize_per_record` does
        (the night-level heart-rate models are trained on ``"iqr"``); the two numbers
        of a night are computed once, from its whole array, when it is first served.

    Raises
    ------
    ValueError
        On an unknown signal, a night without it, nights whose epochs differ in
        shape, or a stage that is neither in ``classes`` nor ``unscored_label``.
    """

    def __init__(self, store: NightStore | str | os.PathLike,
                 names: Sequence[str] | None = None, *, signal: str = "hr",
                 window: int | None = 256, classes: Sequence[str] | None = None,
                 scheme: str | None = None, unscored_label: str = UNSCORED,
                 seed: int | None = None, standardize: str | None = None) -> None:
        self.store = store if isinstance(store, NightStore) else NightStore(store)
        self.names = self.store.names if names is None else list(names)
        if not self.names:
            raise ValueError("No night to serve (names is empty, or the store is).")
        if signal not in ("hr", "eeg", "ecg"):
            raise ValueError(f"signal must be 'hr', 'eeg' or 'ecg', got {signal!r}.")
        if window is not None and (isinstance(window, bool) or not isinstance(window, int)
                                   or window < 1):
            raise ValueError(f"window must be a positive integer or None, got {window!r}.")
        if standardize not in (None, "iqr", "std"):
            raise ValueError(f"standardize must be None, 'iqr' or 'std', got {standardize!r}.")
        self.signal = signal
        self.window = window
        self.standardize = standardize
        self._scales: dict[int, tuple[float, float]] = {}
        self.scheme = self.store.scheme if scheme is None else scheme
        if self.scheme not in SCHEMES:
            raise ValueError(f"Unknown scheme {self.scheme!r}; expected one of "
                             f"{sorted(SCHEMES)}.")
        self.classes = tuple(SCHEMES[self.scheme] if classes is None else classes)
        self.unscored_label = unscored_label

        shapes, self.y, self.paths = set(), [], []
        lookup = {label: i for i, label in enumerate(self.classes)}
        for name in self.names:
            meta = self.store.meta(name)
            if signal not in meta["arrays"]:
                raise ValueError(f"Night {name!r} has no {signal!r} array (stored: "
                                 f"{sorted(meta['arrays'])}).")
            shapes.add(tuple(meta["arrays"][signal]["shape"][1:]))
            stages = np.asarray(self.store.load(name, mmap=False)["stages"]).astype(str)
            if self.scheme != self.store.scheme:
                stages = to_scheme(stages, self.scheme)
            unknown = sorted(set(stages.tolist()) - set(lookup) - {unscored_label})
            if unknown:
                raise ValueError(f"Night {name!r} has stage(s) {unknown} that are not in "
                                 f"classes {list(self.classes)} (nor {unscored_label!r}).")
            self.y.append(np.array([lookup.get(s, IGNORE) for s in stages.tolist()],
                                   dtype=np.int64))
            self.paths.append(self.store.signal_path(name, signal))
        if len(shapes) != 1:
            raise ValueError(f"The nights' {signal!r} epochs differ in shape: "
                             f"{sorted(shapes)}.")
        shape = shapes.pop()
        #: Shape of one stored epoch (``(n_times,)`` or ``(n_chans, n_times)``).
        self.row_shape = shape
        self.epoch_shape = (1,) + shape if len(shape) == 1 else shape
        self.lengths = np.array([len(y) for y in self.y], dtype=np.int64)
        self.length = int(self.lengths.max()) if window is None else int(
            min(window, self.lengths.max()))
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._open: OrderedDict = OrderedDict()
        self._set_windows(np.zeros(len(self.names), dtype=np.int64))

    # same grid and draws as NightWindows
    def _set_windows(self, offsets: np.ndarray) -> None:
        windows = []
        for night, (length, offset) in enumerate(zip(self.lengths, offsets)):
            for start in window_starts(int(length), self.window, int(offset)):
                windows.append((night, int(start), int(min(start + self.length, length))))
        self.windows = windows

    def redraw(self) -> None:
        """Draw a new window grid for each night (no-op without a seed or windows)."""
        if self._rng is None or self.window is None:
            return
        half = max(self.window // 2, 1)
        self._set_windows(self._rng.integers(0, half, size=len(self.names)))

    def _array(self, night: int) -> np.ndarray:
        array = self._open.get(night)
        if array is None:
            array = np.load(self.paths[night], mmap_mode="r", allow_pickle=False)
            self._open[night] = array
            while len(self._open) > MAX_OPEN_NIGHTS:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(night)
        return array

    def _scale(self, night: int) -> tuple[float, float]:
        """The night's median and spread, from its whole array (computed once)."""
        if night not in self._scales:
            values = np.asarray(self._array(night), dtype=np.float64).ravel()
            values = values[np.isfinite(values)]
            spread = (values.std() if self.standardize == "std"
                      else np.subtract(*np.percentile(values, [75, 25])))
            self._scales[night] = (float(np.median(values)), float(spread) if spread > 0
                                   else 1.0)
        return self._scales[night]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()  # workers map the files themselves
        return state

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int):
        night, start, stop = self.windows[i]
        n = stop - start
        x = np.zeros((self.length,) + self.epoch_shape, dtype=np.float32)
        x[:n] = np.asarray(self._array(night)[start:stop]).reshape((n,) + self.epoch_shape)
        if self.standardize is not None:
            centre, spread = self._scale(night)
            x[:n] = (x[:n] - centre) / spread
        mask = np.zeros(self.length, dtype=bool)
        mask[:n] = True
        y = np.full(self.length, IGNORE, dtype=np.int64)
        y[:n] = self.y[night][start:stop]
        return {"x": x, "mask": mask}, y

    def __repr__(self) -> str:
        return (f"StoreWindows(nights={len(self.names)}, signal={self.signal!r}, "
                f"window={self.window}, items={len(self)})")
