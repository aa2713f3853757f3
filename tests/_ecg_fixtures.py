"""A tiny synthetic ECG with known beat times, for tests and benchmarks only.

Each beat is a sum of Gaussians (P, Q, R, S, T waves) centred on the beat time, so the
R-peak of beat ``k`` is exactly at ``beat_times[k]``. Baseline wander (a slow sinusoid)
and white noise can be added. This is *not* a physiological model; it only gives a
waveform whose R-peaks are known to the sample.
"""

from __future__ import annotations

import numpy as np

#: (offset from the R-peak in s, amplitude in mV, width (sd) in s) of each wave.
WAVES = (
    (-0.20, 0.15, 0.025),  # P
    (-0.03, -0.12, 0.010),  # Q
    (0.00, 1.00, 0.010),  # R
    (0.03, -0.25, 0.010),  # S
    (0.28, 0.30, 0.040),  # T
)


def make_beat_times(
    duration: float,
    mean_hr: float = 60.0,
    rr_sd: float = 0.05,
    rng: np.random.Generator | int | None = 0,
    start: float = 0.3,
) -> np.ndarray:
    """Beat times (s) in ``[start, duration - 0.3)`` with Gaussian RR variability.

    RR intervals are ``60 / mean_hr`` seconds plus an AR(1) fluctuation of standard
    deviation ``rr_sd`` seconds, clipped to [0.3, 2.0] s.
    """
    rng = np.random.default_rng(rng)
    mean_rr = 60.0 / mean_hr
    n_max = int(np.ceil(duration / 0.3)) + 2
    noise = rng.normal(0.0, rr_sd, n_max)
    # AR(1) with phi=0.7 keeps a realistic beat-to-beat correlation.
    fluct = np.empty(n_max)
    fluct[0] = noise[0]
    phi = 0.7
    for i in range(1, n_max):
        fluct[i] = phi * fluct[i - 1] + np.sqrt(1 - phi**2) * noise[i]
    rr = np.clip(mean_rr + fluct, 0.3, 2.0)
    times = start + np.concatenate([[0.0], np.cumsum(rr)])
    return times[times < duration - 0.3]


def synth_ecg(
    beat_times: np.ndarray,
    fs: float,
    duration: float,
    noise_sd: float = 0.02,
    wander_amp: float = 0.2,
    wander_freq: float = 0.15,
    rng: np.random.Generator | int | None = 0,
) -> np.ndarray:
    """Synthesize an ECG (mV) of ``round(duration * fs)`` samples with beats at ``beat_times``.

    Parameters
    ----------
    beat_times : ndarray
        R-peak times in seconds.
    fs : float
        Sampling rate in Hz.
    duration : float
        Signal length in seconds.
    noise_sd : float
        Standard deviation of additive white noise (mV).
    wander_amp, wander_freq : float
        Amplitude (mV) and frequency (Hz) of the sinusoidal baseline wander.
    rng : Generator, int or None
        Random state of the noise.
    """
    rng = np.random.default_rng(rng)
    n = int(round(duration * fs))
    t = np.arange(n) / fs
    ecg = wander_amp * np.sin(2 * np.pi * wander_freq * t + 0.3)
    ecg += rng.normal(0.0, noise_sd, n) if noise_sd > 0 else 0.0
    half = int(np.ceil(0.5 * fs))
    offsets = np.arange(-half, half + 1)
    beat_times = np.asarray(beat_times, dtype=float)
    # One window of samples around each beat, all beats at once.
    idx = np.rint(beat_times * fs).astype(int)[:, None] + offsets[None, :]
    valid = (idx >= 0) & (idx < n)
    dt = idx / fs - beat_times[:, None]
    wave = np.zeros(idx.shape)
    for offset, amp, width in WAVES:
        wave += amp * np.exp(-0.5 * ((dt - offset) / width) ** 2)
    np.add.at(ecg, idx[valid], wave[valid])
    return ecg


def synth_ecg_rows(
    n_rows: int,
    fs: float,
    row_seconds: float = 30.0,
    mean_hr: float = 60.0,
    rr_sd: float = 0.05,
    noise_sd: float = 0.02,
    rng: int = 0,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """One continuous synthetic ECG cut into ``n_rows`` consecutive rows.

    Returns
    -------
    X : ndarray, shape (n_rows, round(row_seconds * fs))
        The rows.
    beat_times : ndarray
        All beat times (s) from the start of the recording.
    row_beats : list of ndarray
        Per row, the true R-peak sample indices relative to the row start.
    """
    n_per_row = int(round(row_seconds * fs))
    duration = n_rows * n_per_row / fs
    times = make_beat_times(duration, mean_hr=mean_hr, rr_sd=rr_sd, rng=rng)
    ecg = synth_ecg(times, fs, duration, noise_sd=noise_sd, rng=rng + 1)
    X = ecg.reshape(n_rows, n_per_row)
    samples = np.rint(times * fs).astype(int)
    row_of = samples // n_per_row
    row_beats = [samples[row_of == i] - i * n_per_row for i in range(n_rows)]
    return X, times, row_beats


def match_beats(
    detected: np.ndarray, truth: np.ndarray, tolerance: int
) -> tuple[float, float]:
    """Sensitivity and positive predictive value of ``detected`` against ``truth``.

    A detection matches a true beat when within ``tolerance`` samples; each true beat is
    matched at most once (greedy nearest matching; beats are far apart compared with the
    tolerance, so greedy is exact here).
    """
    detected = np.sort(np.asarray(detected, dtype=int))
    truth = np.sort(np.asarray(truth, dtype=int))
    if truth.size == 0 or detected.size == 0:
        sens = 1.0 if truth.size == 0 else 0.0
        ppv = 1.0 if detected.size == 0 else 0.0
        return sens, ppv
    pos = np.searchsorted(truth, detected)
    left = np.clip(pos - 1, 0, truth.size - 1)
    right = np.clip(pos, 0, truth.size - 1)
    d_left = np.abs(detected - truth[left])
    d_right = np.abs(detected - truth[right])
    nearest = np.where(d_left <= d_right, left, right)
    dist = np.minimum(d_left, d_right)
    hit = dist <= tolerance
    n_true_hit = np.unique(nearest[hit]).size
    sens = n_true_hit / truth.size
    ppv = n_true_hit / detected.size
    return float(sens), float(ppv)
