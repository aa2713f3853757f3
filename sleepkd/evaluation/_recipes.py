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
                  "dilations": (1, 2, 4, 8, 16, 32), "block_kernel": 3, "dropout": 0.3,
                  "augment_scale": (0.8, 1.25), "augment_offset": 0.3, "augment_noise": 0.05}
#: Training windows of the night student (epochs): 3 hours for real nights, 32 minutes
#: for the short generated nights of the demo and the experiments.
STUDENT_WINDOW = 360
GENERATED_WINDOW = 64
#: Class weights of the night student: the balanced weights to this power (fully
#: balanced weights made it over-predict Deep and REM on slpdb: kappa 0.12 vs 0.33).
STUDENT_CLASS_WEIGHT = 0.25
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
                           window=STUDENT_WINDOW, batch_size=4, lr=2e-3, weight_decay=1e-3,
                           class_weight=STUDENT_CLASS_WEIGHT, validation_fraction=0.1,
                           max_epochs=max_epochs, patience=patience, sfreq=FS_HR,
                           random_state=random_state, verbose=verbose)


def night_teacher(*, max_epochs: int = 30, patience: int | None = 10, random_state=0,
                  verbose: int = 0, fs_eeg: float = FS_EEG):
    """The night-level EEG teacher (:class:`~sleepkd.EEGNightTeacher`): a compact
    U-Time epoch encoder and a bidirectional GRU over the night."""
    from sleepkd import EEGNightTeacher

    return EEGNightTeacher(module="epoch_sequence", module_params=dict(TEACHER_PARAMS),
                           window=32, batch_size=4, lr=2e-3, max_epochs=max_epochs,
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


#: Epochs of context on each side of the per-epoch ContextNet student (the previous
#: design, kept for comparison).
CONTEXT_EPOCHS = 4


def context_student(*, max_epochs: int = 30, patience: int | None = 10, random_state=0,
                    verbose: int = 0, tiny: bool = False):
    """The previous per-epoch student: a ContextNet (conv encoder + GRU) over the heart
    rate of the scored epoch and ``CONTEXT_EPOCHS`` epochs on each side."""
    from sleepkd import ECGStudent

    params = ({"n_context": CONTEXT_EPOCHS, "widths": (4, 4, 4, 4), "sequence_width": 4}
              if tiny else {"n_context": CONTEXT_EPOCHS, "widths": (8, 16, 16, 32),
                            "sequence": "gru"})
    return ECGStudent(module="context", module_params=params, sfreq=FS_HR, lr=1e-3,
                      batch_size=32, max_epochs=max_epochs, patience=patience,
                      random_state=random_state, verbose=verbose)


def resolve_patience(patience: int | None, max_epochs: int) -> int | None:
    """Early-stopping patience of the experiment's networks.

    ``None``: a third of ``max_epochs`` (at least 3); 0: no early stopping (``None``,
    every epoch trained, the best validation checkpoint kept); otherwise ``patience``.
    """
    if patience is None:
        return max(3, max_epochs // 3)
    return patience or None


def night_config(max_epochs: int, *, tiny: bool = False, quiet: bool = False,
                 fs_eeg: float = FS_EEG, patience: int | None = None,
                 teacher_epochs: int | None = None) -> dict:
    """Teacher, student and per-epoch comparison of the demo and ``sleepkd experiment``.

    Parameters
    ----------
    max_epochs : int
        Training epochs of the student.
    tiny : bool
        Much smaller networks, for tests (seconds; they learn little).
    quiet : bool
        Silence the per-epoch training logs.
    fs_eeg : float
        EEG rate of the teacher.
    patience : int or None
        Early-stopping patience; ``None``: a third of ``max_epochs`` (at least 3); 0:
        no early stopping (every epoch trained, the best validation checkpoint kept).
    teacher_epochs : int or None
        Training epochs of the night teacher; ``None``: ``max_epochs``, the student's
        budget (early stopping usually ends it sooner; a fifth of it left the demo's
        teacher below its student, see the results page).

    Returns
    -------
    config : dict
        ``teacher``, ``student``, ``context_student`` (unfitted) and ``stager_params``.
    """
    verbose = 0 if quiet else 1
    patience = resolve_patience(patience, max_epochs)
    if teacher_epochs is None:
        teacher_epochs = max_epochs
    teacher = night_teacher(max_epochs=teacher_epochs, patience=patience,
                            verbose=verbose, fs_eeg=fs_eeg)
    # generated nights of a few hours: shorter windows give more training steps
    student = night_student(max_epochs=max_epochs, patience=patience, verbose=verbose)
    student.set_params(window=GENERATED_WINDOW, validation_fraction=0.2)
    if tiny:
        teacher.set_params(module_params={"widths": (2, 4, 4, 4, 4), "bottleneck_width": 4,
                                          "embedding_dim": 4, "hidden": 4})
        student.set_params(module_params={"widths": (2, 4, 4), "hidden": 4,
                                          "dilations": (1, 2)})
    return {"teacher": teacher, "student": student,
            "context_student": context_student(max_epochs=max_epochs, patience=patience,
                                               verbose=verbose, tiny=tiny),
            "stager_params": {"pretrain_epochs": max(1, max_epochs // 4)}}


def night_experiment_data(recordings, *, fs_eeg: float = FS_EEG):
    """The data of a night-level experiment: :func:`night_inputs` (5-class labels, for
    every scheme) with ``X_ecg`` = the night student's heart rate and
    ``X_hr_context`` = the same heart rate with ``CONTEXT_EPOCHS`` epochs of context on
    each side, for the per-epoch ContextNet student."""
    from sleepkd.datasets import add_context

    data = night_inputs(recordings, scheme="5class", fs_eeg=fs_eeg)
    data.X_ecg = data.X
    data.X_hr_context = add_context(data.X, data.records, CONTEXT_EPOCHS,
                                    onsets=data.onsets).astype(np.float32)
    data.DESCR = (f"{data.DESCR}\n\nECG student input: instantaneous heart rate of the whole "
                  f"night at {FS_HR:g} Hz from the beat times, standardised per night "
                  f"({HR_SCALE}); unscored epochs kept in place (masked).")
    return data
