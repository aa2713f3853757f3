"""The night-level recipes: inputs and models used by the CLI, the demo and benchmarks.

One place for the settings that were measured to work (``benchmarks/night_slpdb.py``),
so that ``sleepkd train``, ``sleepkd demo`` and the results page use the same models.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

#: Heart-rate grid of the night student (Hz).
FS_HR = 2.0
#: EEG rate of the night teacher (Hz).
FS_EEG = 100.0
#: Per-night standardisation of the heart rate.
HR_SCALE = "iqr"

#: HeartRateTCN settings of the night student.
STUDENT_PARAMS = {"widths": (8, 16, 32), "pools": (2, 2, 3), "kernel_size": 5, "hidden": 32,
                  "dilations": (1, 2, 4, 8, 16, 32), "block_kernel": 3, "dropout": 0.3}
#: EpochSequenceNet settings of the night teacher.
TEACHER_PARAMS = {"widths": (4, 8, 16, 16, 32), "bottleneck_width": 32, "embedding_dim": 32,
                  "hidden": 32, "sequence": "gru"}


def night_student(*, max_epochs: int = 60, patience: int | None = 15, random_state=0,
                  verbose: int = 0):
    """The night-level heart-rate student (:class:`~sleepkd.ECGNightStudent`).

    Parameters
    ----------
    max_epochs : int
        Training epochs (passes over the training windows).
    patience : int or None
        Early stopping on the validation nights' weighted F1.
    random_state : int
    verbose : int

    Returns
    -------
    student : ECGNightStudent
    """
    from sleepkd import ECGNightStudent

    return ECGNightStudent(module="heart_rate_tcn", module_params=dict(STUDENT_PARAMS),
                           window=360, batch_size=4, lr=2e-3, weight_decay=1e-3,
                           max_epochs=max_epochs, patience=patience, sfreq=FS_HR,
                           random_state=random_state, verbose=verbose)


def night_teacher(*, max_epochs: int = 30, patience: int | None = 10, random_state=0,
                  verbose: int = 0, fs_eeg: float = FS_EEG):
    """The night-level EEG teacher (:class:`~sleepkd.EEGNightTeacher`): a compact
    U-Time epoch encoder and a bidirectional GRU over the night."""
    from sleepkd import EEGNightTeacher

    return EEGNightTeacher(module="epoch_sequence", module_params=dict(TEACHER_PARAMS),
                           window=128, batch_size=4, lr=2e-3, max_epochs=max_epochs,
                           patience=patience, sfreq=fs_eeg, random_state=random_state,
                           verbose=verbose)


def night_inputs(recordings, *, scheme: str = "4class", eeg: bool | None = None,
                 fs_eeg: float = FS_EEG):
    """Heart rate (and EEG) of whole nights, one row per epoch, unscored epochs kept.

    Parameters
    ----------
    recordings : list of Recording
        Nights with ``beat_times`` (and an EEG for the cascade).
    scheme : str
        Label scheme.
    eeg : bool or None
        Cut the EEG too; ``None``: when every recording has one.
    fs_eeg : float
        EEG rate of the teacher.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (heart rate standardised per night, ``(n, 60)`` at 2 Hz), ``X_eeg`` or
        None, ``y`` (``"?"`` for unscored epochs), ``nights``, ``groups``, ``onsets``,
        ``hr_valid``, ``hr_report``, ``DESCR``, ``source``.
    """
    from sleepkd.datasets import make_epochs, standardize_per_record

    if eeg is None:
        eeg = all(rec.eeg is not None for rec in recordings)
    signals = ("heart_rate", "eeg") if eeg else ("heart_rate",)
    data = make_epochs(recordings, scheme=scheme, signals=signals, fs_hr=FS_HR,
                       fs_eeg=fs_eeg if eeg else None, unscored="keep")
    data.X = standardize_per_record(data.X_hr, data.records, scale=HR_SCALE)
    data.nights = data.records
    return data
