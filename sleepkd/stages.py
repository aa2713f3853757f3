"""Sleep-stage vocabularies and the mapping between scoring schemes.

Every label in sleepkd is a short string. The vocabularies are

======== ===================================== ==========================================
scheme   labels                                 meaning
======== ===================================== ==========================================
AASM     ``W N1 N2 N3 R``                      the 5-class scheme (``"5class"``)
R&K      ``W 1 2 3 4 R MT M``                  Rechtschaffen & Kales; 3 and 4 are N3,
                                               MT / M (movement) are unscored
4-class  ``W L D R``                           Wake / Light (N1+N2) / Deep (N3) / REM
3-class  ``W N R``                             Wake / NREM / REM
======== ===================================== ==========================================

Epochs that carry no stage (unscored, movement time, ``?``) are mapped to the marker
:data:`UNSCORED` (``"?"``); :func:`sleepkd.datasets.make_epochs` drops and counts them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

#: Marker for an epoch without a sleep stage.
UNSCORED = "?"

#: Labels of each scheme, in the order used for class indices and reports.
SCHEMES: dict[str, tuple[str, ...]] = {
    "5class": ("W", "N1", "N2", "N3", "R"),
    "4class": ("W", "L", "D", "R"),
    "3class": ("W", "N", "R"),
}

#: Labels that mean "no stage": R&K movement time / movement, and explicit unscored.
UNSCORED_LABELS = frozenset({UNSCORED, "MT", "M", "U", "UNS", "UNSCORED"})

# Every known label -> its meaning in each scheme (None: not expressible there).
_TO_5 = {"W": "W", "N1": "N1", "N2": "N2", "N3": "N3", "R": "R",
         "1": "N1", "2": "N2", "3": "N3", "4": "N3",
         "S1": "N1", "S2": "N2", "S3": "N3", "S4": "N3", "REM": "R", "N4": "N3"}
_5_TO = {
    "5class": {s: s for s in SCHEMES["5class"]},
    "4class": {"W": "W", "N1": "L", "N2": "L", "N3": "D", "R": "R"},
    "3class": {"W": "W", "N1": "N", "N2": "N", "N3": "N", "R": "R"},
}
# Coarse labels map only to the same or a coarser scheme.
_COARSE = {
    "4class": {"L": {"4class": "L", "3class": "N"}, "D": {"4class": "D", "3class": "N"}},
    "3class": {"N": {"3class": "N"}},
}


def _map_one(label: str, scheme: str) -> str | None:
    """Map one label; ``None`` if it is unknown, ``KeyError`` if it is too coarse."""
    if label in UNSCORED_LABELS:
        return UNSCORED
    if label in _TO_5:
        return _5_TO[scheme][_TO_5[label]]
    for coarse in _COARSE.values():
        if label in coarse:
            target = coarse[label].get(scheme)
            if target is None:
                raise KeyError(label)
            return target
    return None


def to_scheme(y: ArrayLike, scheme: str = "5class") -> np.ndarray:
    """Map sleep-stage labels of any known vocabulary to one scheme.

    Parameters
    ----------
    y : array-like of str
        Stage labels in AASM (``W N1 N2 N3 R``), R&K (``W 1 2 3 4 R MT M``), 4-class
        (``W L D R``) or 3-class (``W N R``) vocabularies; vocabularies may be mixed.
    scheme : {"5class", "4class", "3class"}
        Target scheme.

    Returns
    -------
    labels : ndarray of str, shape (n_epochs,)
        Labels of ``scheme``; epochs without a stage (``MT``, ``M``, ``?``) become
        :data:`UNSCORED`.

    Raises
    ------
    ValueError
        If ``scheme`` is unknown, if a label belongs to no vocabulary (the message lists
        them), or if a coarse label cannot be expressed in a finer scheme (``L`` has no
        5-class equivalent).

    Examples
    --------
    >>> from sleepkd import to_scheme
    >>> to_scheme(["W", "1", "2", "3", "4", "R", "MT"], "4class").tolist()
    ['W', 'L', 'L', 'D', 'D', 'R', '?']
    """
    if scheme not in SCHEMES:
        raise ValueError(f"Unknown scheme {scheme!r}; expected one of {sorted(SCHEMES)}.")
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(f"Stage labels must be 1-D, got an array of shape {labels.shape}.")
    if labels.size == 0:
        return np.empty(0, dtype="<U2")
    # check the elements themselves: numpy turns the 1 of [1, "W"] into "1"
    values = y.tolist() if isinstance(y, np.ndarray) else list(y)
    bad_types = sorted({type(v).__name__ for v in values if not isinstance(v, str)})
    if bad_types:
        raise ValueError(
            "Stage labels must be strings (e.g. 'W', 'N1', 'R'), got values of type "
            f"{bad_types}. Known labels: {sorted(_known_labels())}."
        )
    uniques, inverse = np.unique(labels.astype(str), return_inverse=True)
    mapped, unknown, too_coarse = [], [], []
    for label in uniques.tolist():
        key = label.strip().upper()
        try:
            target = _map_one(key, scheme)
        except KeyError:
            too_coarse.append(label)
            target = None
        if target is None and label not in too_coarse:
            unknown.append(label)
        mapped.append(target)
    if unknown:
        raise ValueError(
            f"Unknown sleep-stage label(s) {unknown}; known labels are "
            f"{sorted(_known_labels())}."
        )
    if too_coarse:
        raise ValueError(
            f"Label(s) {too_coarse} cannot be mapped to the finer scheme {scheme!r}."
        )
    return np.asarray(mapped, dtype="<U2")[inverse]


def _known_labels() -> set[str]:
    known = set(_TO_5) | set(UNSCORED_LABELS)
    for coarse in _COARSE.values():
        known |= set(coarse)
    return known
