"""A fitted night-level heart-rate stager with everything needed to stage a new night.

:class:`NightStagingModel` holds a fitted night-level student (an
:class:`~sleepkd.distillation.ECGNightStudent`, alone or inside a
:class:`~sleepkd.distillation.DistilledECGStager`) and its input contract: heart rate
of the whole night on a grid of ``fs_hr`` Hz, standardised per night. It stages a night
from its beat times (annotated R-peaks, a chest strap's or a Holter's RR series) or from
an ECG waveform (R-peaks detected first).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

logger = logging.getLogger(__name__)

#: Marker of the model kind, stored in the model file.
NIGHT_FORMAT = "sleepkd.NightStagingModel/1"

#: Values of the ``hr_quality`` column of :meth:`NightStagingModel.predict_beats`.
HR_QUALITY = {
    "ok": "heart rate from accepted beats for most of the epoch",
    "gap": "most of the epoch's heart rate was bridged over missing or rejected beats "
           "(artefact, ectopy, lead off): its stage is not backed by heartbeats",
}


def _version() -> str:
    from sleepkd import __version__

    return __version__


@dataclass(eq=False)
class NightStagingModel:
    """A fitted night-level heart-rate sleep stager and its input contract.

    Parameters
    ----------
    estimator : classifier
        Fitted night-level model: an :class:`~sleepkd.distillation.ECGNightStudent`,
        or a :class:`~sleepkd.distillation.DistilledECGStager` whose student is one.
    fs_hr : float, default=2.0
        Rate of the heart-rate grid the model reads (Hz).
    epoch_length : float, default=30.0
        Epoch duration in seconds.
    scheme : str, default="4class"
        Label scheme of the stages.
    standardize : {"iqr", "std"} or None, default="iqr"
        Per-night standardisation of the heart rate (median and interquartile range,
        or standard deviation), as in training; ``None``: beats/min as they are.
    provenance : str, default="unstated"
        What the model was trained on.
    version : str
        sleepkd version that built the model.
    info : dict
        Free-form metadata (training scores, strategy, ...), JSON-serialisable for the
        safe model file.

    Examples
    --------
    >>> model = NightStagingModel(fitted_student, scheme="4class")  # doctest: +SKIP
    >>> model.predict_beats(beat_times).head()  # doctest: +SKIP
    """

    estimator: object
    fs_hr: float = 2.0
    epoch_length: float = 30.0
    scheme: str = "4class"
    standardize: str | None = "iqr"
    provenance: str = "unstated"
    version: str = field(default_factory=_version)
    info: dict = field(default_factory=dict)
    format: str = NIGHT_FORMAT

    @property
    def classes_(self) -> np.ndarray:
        """Stage labels, in the order of the probability columns."""
        return np.asarray(self.estimator.classes_)

    def heart_rate(self, beat_times: ArrayLike, n_epochs: int | None = None):
        """The model's input rows for one night of beats.

        Parameters
        ----------
        beat_times : array-like of shape (n_beats,)
            R-peak times in seconds from the start of the night, sorted.
        n_epochs : int, optional
            Epochs to stage from t = 0; default: up to the last beat.

        Returns
        -------
        X : ndarray of float32, shape (n_epochs, epoch_length * fs_hr)
        valid : ndarray of bool, shape (n_epochs,)
            Epochs with enough heart rate from accepted beats.
        report : dict
            Rejected beats and bridged seconds
            (:func:`~sleepkd.signal.instantaneous_heart_rate`).
        """
        from sleepkd.datasets import standardize_per_record
        from sleepkd.signal import instantaneous_heart_rate

        hr, valid, report = instantaneous_heart_rate(
            beat_times, fs=self.fs_hr, n_epochs=n_epochs, epoch_length=self.epoch_length)
        if self.standardize is not None:
            hr = standardize_per_record(hr, np.zeros(len(hr), dtype=int),
                                        scale=self.standardize)
        return np.ascontiguousarray(hr, dtype=np.float32), valid, report

    def predict_beats(self, beat_times: ArrayLike, n_epochs: int | None = None) -> pd.DataFrame:
        """Stage one night from its beat times.

        Parameters
        ----------
        beat_times : array-like of shape (n_beats,)
            R-peak times in seconds from the start of the night, sorted.
        n_epochs : int, optional
            Epochs to stage from t = 0; default: up to the last beat.

        Returns
        -------
        hypnogram : pandas.DataFrame
            One row per epoch: ``onset_s``, ``stage``, one ``p_<stage>`` column per
            class and ``hr_quality`` (``"ok"``, or ``"gap"`` where most of the heart
            rate was bridged over missing or rejected beats).
        """
        X, valid, report = self.heart_rate(beat_times, n_epochs)
        proba = np.asarray(self.estimator.predict_proba(X))  # the rows are one night
        classes = self.classes_
        table = pd.DataFrame({"onset_s": np.arange(len(X)) * self.epoch_length,
                              "stage": classes[np.argmax(proba, axis=1)]})
        for k, label in enumerate(classes):
            table[f"p_{label}"] = proba[:, k]
        table["hr_quality"] = np.where(valid, "ok", "gap")
        n_gap = int((~valid).sum())
        logger.debug("Staged %d epochs from %d beats (%d rejected as ectopic/artefact); %d "
                    "epochs mostly bridged.", len(X), report["n_beats"],
                    report["n_rejected_beats"], n_gap)
        if n_gap > len(valid) / 2:
            logger.warning(
                "%d of %d epochs (%.0f%%) have no usable heart rate (gaps, rejected "
                "beats): the stages of this night are not backed by heartbeats.",
                n_gap, len(valid), 100.0 * n_gap / len(valid))
        return table

    def predict_recording(self, ecg: ArrayLike, fs: float) -> pd.DataFrame:
        """Stage one night from its ECG: R-peaks are detected, then :meth:`predict_beats`.

        Parameters
        ----------
        ecg : array-like of shape (n_samples,)
            Single-lead ECG of the night.
        fs : float
            Sampling rate in Hz.

        Returns
        -------
        hypnogram : pandas.DataFrame
            As :meth:`predict_beats`, one row per whole epoch of the recording.

        Raises
        ------
        ValueError
            If the ECG is not 1-D, holds NaN/inf, is shorter than one epoch, or no
            heartbeats are found in it.
        """
        from sleepkd.signal import detect_rpeaks
        from sleepkd.utils._validation import check_sampling_rate

        fs = check_sampling_rate(fs)
        ecg = np.asarray(ecg, dtype=np.float64)
        if ecg.ndim != 1:
            raise ValueError(f"The ECG must be 1-D (one lead), got shape {ecg.shape}.")
        if not np.all(np.isfinite(ecg)):
            raise ValueError("The ECG holds NaN/inf samples; clean or interpolate them first.")
        n_epochs = int(ecg.size / fs // self.epoch_length)
        if n_epochs < 1:
            raise ValueError(f"The recording lasts {ecg.size / fs:.1f} s, shorter than one "
                             f"{self.epoch_length:g}-s epoch: nothing to stage.")
        peaks = detect_rpeaks(ecg, fs)
        if len(peaks) < 2:
            raise ValueError("No heartbeats found in the ECG (it failed the R-peak quality "
                             "gate: noise, a flat line or the wrong channel).")
        return self.predict_beats(np.asarray(peaks) / fs, n_epochs=n_epochs)

    def describe(self) -> str:
        """One paragraph: what the model expects and what it was trained on."""
        members = getattr(self.estimator, "estimators_", None)
        first = self.estimator if members is None else members[0]
        student = getattr(first, "student_", first)
        module = getattr(student, "module", "?")
        if members is not None:
            module = f"{module}, a mean of {len(members)} seeds"
        prep = "" if self.standardize is None else f", standardised per night ({self.standardize})"
        return (f"sleepkd {self.version} night-level staging model "
                f"({type(self.estimator).__name__}, network {module}); {self.scheme} "
                f"stages {', '.join(map(str, self.classes_))}; reads the heart rate of the "
                f"whole night at {self.fs_hr:g} Hz in {self.epoch_length:g}-s epochs{prep}, "
                f"from beat times or an ECG; trained on {self.provenance}.")
