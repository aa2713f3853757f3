"""Recordings, readers and generators of paired EEG + ECG nights.

- :class:`Recording`: one night of signals, beats and expert stages.
- :func:`load_slpdb`: the MIT-BIH Polysomnographic Database (real beats and stages).
- :func:`make_synthetic_psg`: fully synthetic paired nights.
- :func:`make_semireal_psg`: real beats and hypnograms with synthesised waveforms.
- :func:`make_epochs`: recordings -> ``X_ecg``, ``X_eeg``, ``y``, ``groups``.
- :func:`add_context`: stack neighbouring epochs of any per-epoch array.
- :func:`standardize_per_record`: centre and scale each night on its own statistics.
- :func:`read_ecg`: a user's ECG file (NumPy, WFDB, EDF) -> signal and rate.

The readers live in :mod:`sleepkd.io` (one module per file format) and are
re-exported here; readers for other cohorts (:func:`sleepkd.io.load_nsrr`,
:func:`sleepkd.io.load_edf`) are in :mod:`sleepkd.io` only.
"""

from sleepkd.utils._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "Recording": "._recording",
        "load_slpdb": "sleepkd.io._slpdb",
        "slpdb_path": "._data",
        "make_epochs": "._epochs",
        "add_context": "._epochs",
        "standardize_per_record": "._epochs",
        "read_ecg": "sleepkd.io._ecg_files",
        "make_synthetic_psg": "._synthetic",
        "make_semireal_psg": "._semireal",
    },
)
