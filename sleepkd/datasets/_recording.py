"""The :class:`Recording` container that readers and generators return."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Length of one scored epoch in seconds (AASM and R&K).
EPOCH_SECONDS = 30.0


@dataclass
class Recording:
    """One night (or part of a night) of paired signals and expert stages.

    Readers (:func:`~sleepkd.datasets.load_slpdb`) and generators
    (:func:`~sleepkd.datasets.make_synthetic_psg`,
    :func:`~sleepkd.datasets.make_semireal_psg`) return lists of these;
    :func:`~sleepkd.datasets.make_epochs` turns them into model inputs.

    Parameters
    ----------
    name : str
        Record name, e.g. ``"slp01a"``.
    subject : str
        Subject identifier; two records of one person share it (used as CV group).
    ecg : ndarray of shape (n_samples,) or None
        Single-lead ECG in millivolts, or ``None`` when the waveform is not available.
    fs_ecg : float or None
        ECG sampling rate in Hz.
    eeg : ndarray of shape (n_channels, n_samples) or None
        EEG in microvolts, or ``None``.
    fs_eeg : float or None
        EEG sampling rate in Hz.
    eeg_channels : list of str
        Names of the EEG channels (e.g. ``["C4-A1"]``).
    beat_times : ndarray of shape (n_beats,) or None
        Times of the R-peaks in seconds from the start of the record.
    stages : ndarray of str, shape (n_epochs,)
        AASM labels (``W N1 N2 N3 R``), one per epoch; :data:`sleepkd.stages.UNSCORED`
        (``"?"``) marks epochs without a stage.
    epoch_onsets : ndarray of shape (n_epochs,)
        Onset of each epoch in seconds from the start of the record.
    epoch_length : float
        Epoch duration in seconds (30).
    source : str
        Provenance, always stated: ``"real"``, ``"synthetic"`` or ``"semi-real"``
        with a description. Every output derived from a generated night says so.
    info : dict
        Anything else (age, sex, beat types, signal names in the header, ...).
    """

    name: str
    subject: str
    ecg: np.ndarray | None
    fs_ecg: float | None
    eeg: np.ndarray | None
    fs_eeg: float | None
    eeg_channels: list[str]
    beat_times: np.ndarray | None
    stages: np.ndarray
    epoch_onsets: np.ndarray
    epoch_length: float = EPOCH_SECONDS
    source: str = "real"
    info: dict = field(default_factory=dict)

    @property
    def n_epochs(self) -> int:
        """Number of epochs (scored or not)."""
        return len(self.stages)

    @property
    def duration(self) -> float:
        """Duration covered by the epochs, in seconds."""
        if len(self.epoch_onsets) == 0:
            return 0.0
        return float(self.epoch_onsets[-1] + self.epoch_length)

    def __repr__(self) -> str:
        signals = [s for s in ("ecg", "eeg") if getattr(self, s) is not None]
        beats = "none" if self.beat_times is None else len(self.beat_times)
        return (
            f"Recording(name={self.name!r}, subject={self.subject!r}, "
            f"epochs={self.n_epochs}, beats={beats}, signals={signals}, "
            f"source={self.source!r})"
        )
