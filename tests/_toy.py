"""A tiny paired EEG/ECG problem for fast estimator tests (not a physiological model).

The EEG carries the class clearly (a class-specific rhythm); the ECG carries it weakly
(a class-specific amplitude in noise), so a teacher beats the student, as in real PSG.
"""

from __future__ import annotations

import numpy as np


def make_toy_paired(n_subjects=6, n_per_subject=40, n_classes=3, n_times_eeg=192,
                    n_times_ecg=96, ecg_snr=0.6, seed=0):
    rng = np.random.default_rng(seed)
    n = n_subjects * n_per_subject
    y_idx = rng.integers(0, n_classes, size=n)
    labels = np.array(["W", "N", "R", "D", "L"][:n_classes])
    t_eeg = np.arange(n_times_eeg) / n_times_eeg
    freqs = 3.0 + 4.0 * y_idx  # cycles per window
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    X_eeg = np.sin(2 * np.pi * freqs[:, None] * t_eeg + phase) + 0.5 * rng.normal(
        size=(n, n_times_eeg))
    amp = 1.0 + ecg_snr * y_idx
    X_ecg = amp[:, None] * rng.normal(size=(n, n_times_ecg))
    groups = np.repeat([f"s{i}" for i in range(n_subjects)], n_per_subject)
    return (X_ecg.astype(np.float32), X_eeg.astype(np.float32)[:, None, :],
            labels[y_idx], groups)
