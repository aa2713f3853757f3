"""The validation split used for checkpoint selection, by subject when groups are known."""

from __future__ import annotations

import logging

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedShuffleSplit

logger = logging.getLogger(__name__)


def train_valid_split(
    y: np.ndarray,
    groups: np.ndarray | None,
    fraction: float | None,
    seed: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Indices of the training rows and of the held-out validation rows.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Encoded labels (used to stratify when no groups are known).
    groups : ndarray of shape (n_samples,) or None
        Subject ids. When given, no subject is on both sides of the split: a model
        selected on epochs of its own training subjects would be selected on leaked data.
        Subjects without a labelled row (``y < 0`` only, e.g. unscored recordings) cannot
        select a checkpoint: they always stay in training.
    fraction : float or None
        Share of rows (of subjects, with groups) held out; ``None`` or 0: no validation.
        With subjects that have no labelled row, the share is of the labelled subjects.
    seed : int
        Seed of the split.

    Returns
    -------
    train_idx : ndarray of int
    valid_idx : ndarray of int or None
        ``None`` when no validation set is used.
    """
    n = len(y)
    all_idx = np.arange(n)
    if not fraction:
        return all_idx, None
    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            logger.warning(
                "Only one subject in groups: no subject-wise validation split is "
                "possible; training on all rows without checkpoint selection."
            )
            return all_idx, None
        labelled = np.isin(groups, np.unique(groups[np.asarray(y) >= 0]))
        if labelled.all():
            splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
            train_idx, valid_idx = next(splitter.split(all_idx, y, groups))
            return train_idx, valid_idx
        candidates = np.flatnonzero(labelled)
        if len(np.unique(groups[candidates])) < 2:
            logger.warning(
                "Fewer than two subjects with labelled rows: no subject-wise validation "
                "split is possible; training on all rows without checkpoint selection.")
            return all_idx, None
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        _, valid = next(splitter.split(candidates, y[candidates], groups[candidates]))
        valid_idx = candidates[valid]
        return np.setdiff1d(all_idx, valid_idx), valid_idx
    logger.info(
        "No groups given: the validation split is random over epochs, so epochs of one "
        "subject sit on both sides; pass groups (subject ids) for a subject-wise split."
    )
    try:
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        train_idx, valid_idx = next(splitter.split(all_idx, y))
    except ValueError:  # too few rows of a class to stratify
        splitter = ShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        train_idx, valid_idx = next(splitter.split(all_idx))
    if len(train_idx) == 0 or len(valid_idx) == 0:
        return all_idx, None
    return train_idx, valid_idx
