"""Synthetic ECG: beat times from a stage-dependent heart rate, and the waveform.

Two independent parts:

- :func:`simulate_beat_times` builds an instantaneous heart rate (bpm) on a 10-Hz grid
  (subject resting rate, stage offsets smoothed across epoch boundaries, respiratory
  sinus arrhythmia, LF fluctuations, slow drift, surges at arousals and awakenings) and
  turns it into beats with integral pulse frequency modulation (IPFM); occasional
  ectopic beats are premature with a compensatory pause.
- :func:`synthesize_ecg` draws a P-QRS-T complex (a sum of Gaussians as in McSharry's
  ECGSYN, with the T wave following Bazett's QT-RR law) centred on each given beat
  sample, so that the R-peak sits exactly on ``round(beat_time * fs)``; then adds
  respiratory amplitude modulation, baseline wander, EMG and powerline noise, motion
  artefacts and electrode-off flat lines (both returned as a mask).

Everything is vectorised: an 8-h night at 256 Hz takes a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sleepkd.datasets._hypnogram import smooth_epoch_values, stage_weights
from sleepkd.datasets._recording import EPOCH_SECONDS

#: Sampling rate (Hz) of the heart-rate and respiration grid.
HR_GRID_FS = 10.0

# Stage order of the per-stage tables below (the unscored row behaves like wake).
_ROWS = ("W", "N1", "N2", "N3", "R", "?")
# Heart rate relative to N2 (bpm), before the subject's scale factor.
_HR_OFFSET = np.array([4.0, 2.0, 0.0, -1.0, 2.0, 4.0])
# Respiratory sinus arrhythmia amplitude (relative), stronger in NREM and N3.
_RSA_GAIN = np.array([0.75, 0.85, 1.0, 1.1, 0.8, 0.75])
# LF (~0.1 Hz) fluctuation amplitude (relative), stronger in wake and REM.
_LF_GAIN = np.array([1.2, 1.0, 0.85, 0.7, 1.15, 1.2])
# Breathing irregularity (sd of log breathing rate), high in wake and REM.
_RESP_IRREG = np.array([0.09, 0.07, 0.05, 0.04, 0.09, 0.09])


@dataclass
class BeatTrain:
    """Beats of a synthetic night and the signals they were drawn from.

    Parameters
    ----------
    times : ndarray of shape (n_beats,)
        R-peak times in seconds.
    types : ndarray of str, shape (n_beats,)
        ``"N"`` normal, ``"V"`` premature ventricular, ``"S"`` premature
        supraventricular.
    grid_times : ndarray of shape (n_grid,)
        Times (s) of the heart-rate grid (:data:`HR_GRID_FS`).
    heart_rate : ndarray of shape (n_grid,)
        Instantaneous heart rate (bpm) that drove the IPFM model.
    respiration : ndarray of shape (n_grid,)
        Respiration (arbitrary units, about -1..1) that drove the RSA.
    params : dict
        Subject parameters.
    """

    times: np.ndarray
    types: np.ndarray
    grid_times: np.ndarray
    heart_rate: np.ndarray
    respiration: np.ndarray
    params: dict = field(default_factory=dict)


@dataclass
class ECGWaveform:
    """A synthetic ECG and where it is corrupted.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
        The ECG in millivolts (float32).
    fs : float
        Sampling rate in Hz.
    artefact_mask : ndarray of bool, shape (n_samples,)
        True inside motion artefacts and electrode-off flat lines.
    artefacts : list of tuple
        ``(onset_s, duration_s, kind)`` with kind ``"motion"`` or ``"electrode_off"``.
    params : dict
        Waveform parameters used.
    """

    signal: np.ndarray
    fs: float
    artefact_mask: np.ndarray
    artefacts: list = field(default_factory=list)
    params: dict = field(default_factory=dict)


def bandlimited_noise(
    n: int, fs: float, f_lo: float, f_hi: float, rng: np.random.Generator
) -> np.ndarray:
    """Gaussian noise with a flat spectrum between ``f_lo`` and ``f_hi``, unit variance.

    The band edges are smooth (raised-cosine over 20 % of the band) to avoid ringing.
    Frequencies above the Nyquist frequency are ignored. A band that holds no
    frequency bin of a series this short (or lies above Nyquist) gives zeros.
    """
    from scipy import fft as sfft

    if n == 0:
        return np.zeros(0)
    n_fft = sfft.next_fast_len(n, real=True)
    spec = sfft.rfft(rng.standard_normal(n_fft))
    f = sfft.rfftfreq(n_fft, 1.0 / fs)
    f_hi = min(f_hi, 0.98 * fs / 2)
    if f_hi <= f_lo:
        return np.zeros(n)
    edge = 0.2 * (f_hi - f_lo)
    gain = np.clip(np.minimum((f - f_lo) / edge + 0.5, (f_hi - f) / edge + 0.5), 0.0, 1.0)
    gain = 0.5 - 0.5 * np.cos(np.pi * gain)
    if np.count_nonzero(gain > 1e-3) == 0:
        return np.zeros(n)
    x = sfft.irfft(spec * gain, n_fft)[:n]
    sd = x.std()
    return x / sd if sd > 1e-12 else np.zeros(n)


def draw_cardiac_params(rng: np.random.Generator) -> dict:
    """Draw the heart-rate parameters of one subject.

    Returns
    -------
    params : dict
        ``hr_rest`` (bpm in N2, 50-80), ``stage_scale`` (size of the stage effects),
        ``hrv_scale``, ``rsa_bpm``, ``lf_bpm``, ``vlf_bpm``, ``night_trend_bpm``,
        ``resp_rate_hz``, ``arousal_surge_bpm``, ``ectopic_rate``.
    """
    hrv = float(np.clip(rng.lognormal(0.0, 0.3), 0.4, 2.2))
    return {
        "hr_rest": float(rng.uniform(50.0, 80.0)),
        "stage_scale": float(np.clip(rng.lognormal(0.0, 0.35), 0.5, 2.5)),
        "hrv_scale": hrv,
        "rsa_bpm": 3.0 * hrv,
        "lf_bpm": 2.2 * hrv,
        "vlf_bpm": float(rng.uniform(1.0, 2.5)),
        "night_trend_bpm": float(rng.uniform(0.0, 5.0)),
        "resp_rate_hz": float(rng.uniform(0.2, 0.267)),
        "arousal_surge_bpm": float(rng.uniform(5.0, 14.0)),
        "ectopic_rate": float(10 ** rng.uniform(-4.0, -2.5)),
    }


def simulate_respiration(
    weights: np.ndarray, fs: float, params: dict, rng: np.random.Generator
) -> np.ndarray:
    """Respiration (about -1..1) whose rate and depth are irregular in wake and REM."""
    n = weights.shape[1]
    irregular = _RESP_IRREG @ weights
    log_rate = np.log(params["resp_rate_hz"]) + irregular * bandlimited_noise(
        n, fs, 0.002, 0.05, rng
    )
    depth = np.exp(0.8 * irregular * bandlimited_noise(n, fs, 0.005, 0.1, rng))
    phase = 2 * np.pi * np.cumsum(np.exp(log_rate)) / fs + rng.uniform(0, 2 * np.pi)
    return depth * np.sin(phase)


def _surge_train(
    t: np.ndarray, onsets: np.ndarray, amplitudes: np.ndarray, fs: float
) -> np.ndarray:
    """Heart-rate surges: fast rise (~2 s), decay over ~12 s, peak = amplitude."""
    from scipy import fft as sfft

    impulses = np.zeros(len(t))
    idx = np.round((onsets - t[0]) * fs).astype(int)
    ok = (idx >= 0) & (idx < len(t))
    np.add.at(impulses, idx[ok], amplitudes[ok])
    tau = np.arange(0.0, 60.0, 1.0 / fs)
    kernel = (1 - np.exp(-tau / 2.0)) * np.exp(-tau / 12.0)
    kernel /= kernel.max()
    n_fft = sfft.next_fast_len(len(t) + len(kernel), real=True)
    out = sfft.irfft(sfft.rfft(impulses, n_fft) * sfft.rfft(kernel, n_fft), n_fft)
    return out[: len(t)]


def simulate_heart_rate(
    stages: np.ndarray,
    epoch_onsets: np.ndarray | None = None,
    *,
    duration: float | None = None,
    arousal_onsets: np.ndarray | None = None,
    epoch_length: float = EPOCH_SECONDS,
    params: dict | None = None,
    latent=None,
    random_state: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Instantaneous heart rate and respiration of a night with the given stages.

    Parameters
    ----------
    stages : ndarray of str, shape (n_epochs,)
        AASM labels; unscored epochs behave like wake.
    epoch_onsets : ndarray, optional
        Epoch onsets (s); ``arange(n_epochs) * epoch_length`` when omitted.
    duration : float, optional
        Length (s) of the output; the end of the last epoch when omitted.
    arousal_onsets : ndarray, optional
        Onsets (s) of brief arousals (each gives a heart-rate surge).
    epoch_length : float
        Epoch duration in seconds.
    params : dict, optional
        Output of :func:`draw_cardiac_params` (drawn when omitted).
    latent : LatentNight, optional
        Shared latent physiology (:mod:`sleepkd.datasets._latent`). When given, the
        heart rate also follows it: the slow-wave / vagal deviation ``swa`` lowers the
        rate and strengthens the RSA in NREM, every latent arousal gives a surge
        proportional to its intensity after its ``surge_latency``, and REM phasic
        bursts add heart-rate irregularity. ``arousal_onsets`` is then ignored.
    random_state : Generator, int or None
        Source of randomness.

    Returns
    -------
    times, heart_rate, respiration : ndarray of shape (n_grid,)
        On a grid of :data:`HR_GRID_FS` Hz; heart rate in bpm.
    params : dict
        The parameters used.
    """
    rng = np.random.default_rng(random_state)
    params = dict(draw_cardiac_params(rng) if params is None else params)
    stages = np.asarray(stages)
    if epoch_onsets is None:
        epoch_onsets = np.arange(len(stages)) * epoch_length
    epoch_onsets = np.asarray(epoch_onsets, dtype=float)
    if duration is None:
        duration = float(epoch_onsets[-1] + epoch_length)
    fs = HR_GRID_FS
    t = np.arange(int(np.ceil(duration * fs)) + 1) / fs
    n = len(t)
    # Heart rate follows the stage with a lag of about a minute (autonomic tone
    # changes gradually); breathing and HRV composition change faster.
    slow = stage_weights(stages, epoch_onsets, t, epoch_length=epoch_length, sigma=40.0)
    fast = stage_weights(stages, epoch_onsets, t, epoch_length=epoch_length, sigma=10.0)

    # Epoch-to-epoch state fluctuation of the stage offset (not every W epoch is alike).
    # Autonomic state also wanders independently of the scored stage (per-epoch level
    # and LF/RSA amplitude factors, smoothed): HRV carries stage information, but weakly.
    state = smooth_epoch_values(
        np.stack([rng.normal(0.0, 2.5, len(stages)),
                  rng.normal(0.0, 0.45, len(stages)),
                  rng.normal(0.0, 0.3, len(stages))]),
        epoch_onsets, t, epoch_length=epoch_length, sigma=30.0)
    jitter, lf_state, rsa_state = state[0], np.exp(state[1]), np.exp(state[2])
    level = params["hr_rest"] + params["stage_scale"] * (_HR_OFFSET @ slow) + jitter
    level -= params["night_trend_bpm"] * t / max(t[-1], 1.0)

    resp = simulate_respiration(fast, fs, params, rng)
    rsa = params["rsa_bpm"] * (_RSA_GAIN @ fast) * rsa_state * resp
    lf = params["lf_bpm"] * (_LF_GAIN @ fast) * lf_state * bandlimited_noise(
        n, fs, 0.04, 0.15, rng)
    vlf = params["vlf_bpm"] * bandlimited_noise(n, fs, 0.001, 0.04, rng)

    # Surges: brief arousals and the first epoch of every awakening from sleep.
    wake = np.isin(stages, ["W", "?"])
    woke = wake[1:] & ~wake[:-1]
    wake_onsets = epoch_onsets[1:][woke] + rng.uniform(0, 10, woke.sum())
    if latent is None:
        ar = np.zeros(0) if arousal_onsets is None else np.asarray(arousal_onsets, float)
        onsets = np.concatenate([ar, wake_onsets])
        amps = params["arousal_surge_bpm"] * rng.lognormal(0.0, 0.35, len(onsets))
        amps[len(ar):] *= 1.5
        surges = _surge_train(t, onsets, amps, fs)
        shared = 0.0
    else:
        # Shared physiology: the surge size follows the arousal's (EEG) intensity.
        ar = latent.arousal_onsets + latent.surge_latency
        onsets = np.concatenate([ar, wake_onsets])
        amps = params["arousal_surge_bpm"] * rng.lognormal(0.0, 0.35, len(onsets))
        amps[:len(ar)] = (params["arousal_surge_bpm"] * latent.arousal_intensity
                          * rng.lognormal(0.0, 0.15, len(ar)))
        amps[len(ar):] *= 1.5
        surges = _surge_train(t, onsets, amps, fs)
        swa = latent.swa_at(t)
        phasic = latent.phasic_at(t)
        gain = params.setdefault("swa_hr_bpm", 2.0)
        # Deeper slow-wave sleep: slower heart and stronger RSA (vagal tone).
        level = level - gain * swa
        rsa = rsa * np.exp(0.25 * swa)
        # Phasic REM: heart-rate irregularity and a slight acceleration.
        irregular = bandlimited_noise(n, fs, 0.05, 0.5, rng)
        shared = phasic * (params.setdefault("phasic_bpm", 3.0) * irregular + 1.5)

    hr = np.clip(level + rsa + lf + vlf + surges + shared, 35.0, 170.0)
    return t, hr, resp, params


def ipfm_beat_times(
    heart_rate: np.ndarray, fs: float, *, t0: float = 0.0, phase0: float = 0.0
) -> np.ndarray:
    """Beat times from an instantaneous heart rate (integral pulse frequency modulation).

    A beat fires each time the integral of ``heart_rate / 60`` crosses an integer.

    Parameters
    ----------
    heart_rate : ndarray of shape (n,)
        Heart rate in bpm sampled at ``fs``; must be positive.
    fs : float
        Sampling rate of ``heart_rate`` in Hz.
    t0 : float
        Time of the first sample.
    phase0 : float
        Initial phase in [0, 1) (fraction of a beat already elapsed).

    Returns
    -------
    times : ndarray
        Beat times in seconds (linear interpolation between grid points).

    Examples
    --------
    >>> import numpy as np
    >>> ipfm_beat_times(np.full(101, 60.0), fs=10.0)[:3]
    array([1., 2., 3.])
    """
    hr = np.asarray(heart_rate, dtype=float)
    if np.any(hr <= 0):
        raise ValueError("heart_rate must be positive everywhere.")
    phase = np.concatenate([[phase0], phase0 + np.cumsum((hr[1:] + hr[:-1]) / 2) / 60 / fs])
    k = np.arange(np.floor(phase0) + 1, np.floor(phase[-1]) + 1)
    return t0 + np.interp(k, phase, np.arange(len(hr)) / fs)


def _add_ectopics(
    times: np.ndarray, rate: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Make some beats premature (ventricular or supraventricular), pause compensatory."""
    times = times.copy()
    types = np.full(len(times), "N", dtype="<U1")
    if len(times) < 3:
        return times, types
    hit = np.flatnonzero(rng.random(len(times) - 2) < rate) + 1
    hit = hit[np.diff(np.concatenate([[-2], hit])) > 1]  # no two in a row
    ventricular = rng.random(len(hit)) < 0.6
    prematurity = np.where(ventricular, rng.uniform(0.55, 0.75, len(hit)),
                           rng.uniform(0.65, 0.85, len(hit)))
    times[hit] = times[hit - 1] + prematurity * (times[hit] - times[hit - 1])
    types[hit] = np.where(ventricular, "V", "S")
    return times, types


def simulate_beat_times(
    stages: np.ndarray,
    epoch_onsets: np.ndarray | None = None,
    *,
    duration: float | None = None,
    arousal_onsets: np.ndarray | None = None,
    epoch_length: float = EPOCH_SECONDS,
    params: dict | None = None,
    latent=None,
    random_state: np.random.Generator | int | None = None,
) -> BeatTrain:
    """Beat times of a night with the given stages (IPFM on a simulated heart rate).

    Parameters
    ----------
    stages, epoch_onsets, duration, arousal_onsets, epoch_length, params, latent
        See :func:`simulate_heart_rate`.
    random_state : Generator, int or None
        Source of randomness.

    Returns
    -------
    beats : BeatTrain
        Beat times and types, plus the heart rate and respiration behind them.

    Examples
    --------
    >>> import numpy as np
    >>> beats = simulate_beat_times(np.array(["W"] * 10 + ["N3"] * 10), random_state=0)
    >>> bool(np.all(np.diff(beats.times) > 0.25))
    True
    """
    rng = np.random.default_rng(random_state)
    t, hr, resp, params = simulate_heart_rate(
        stages, epoch_onsets, duration=duration, arousal_onsets=arousal_onsets,
        epoch_length=epoch_length, params=params, latent=latent, random_state=rng,
    )
    times = ipfm_beat_times(hr, HR_GRID_FS, t0=float(t[0]), phase0=float(rng.random()))
    # Beat-to-beat jitter not captured by the 10-Hz rate model (a few ms).
    times = times + rng.normal(0.0, 0.003, len(times))
    times, types = _add_ectopics(np.sort(times), params["ectopic_rate"], rng)
    return BeatTrain(times=times, types=types, grid_times=t, heart_rate=hr,
                     respiration=resp, params=params)


# Waves of a normal beat: (offset from R in s, amplitude in mV, width (sd) in s).
# Q and S are small and close enough to R that the R-peak stays on its sample.
_NORMAL = {"P": (-0.16, 0.12, 0.022), "Q": (-0.028, -0.10, 0.008),
           "R": (0.0, 1.0, 0.009), "S": (0.028, -0.22, 0.009), "T": (0.27, 0.28, 0.045)}
# A premature ventricular beat: no P wave, wide QRS (symmetric lobes keep the peak on
# its sample), discordant T wave.
_VENTRICULAR = {"P": (-0.16, 0.0, 0.022), "Q": (-0.07, -0.25, 0.022),
                "R": (0.0, 1.3, 0.024), "S": (0.07, -0.25, 0.022), "T": (0.32, -0.35, 0.06)}


def draw_waveform_params(rng: np.random.Generator) -> dict:
    """Draw the ECG morphology and noise parameters of one subject-night."""
    return {
        "r_amplitude_mv": float(rng.uniform(0.6, 1.8)),
        "p_scale": float(rng.uniform(0.6, 1.4)),
        "t_scale": float(rng.uniform(0.6, 1.5)),
        "s_scale": float(rng.uniform(0.5, 1.5)),
        "resp_modulation": float(rng.uniform(0.03, 0.15)),
        "wander_mv": float(rng.uniform(0.03, 0.15)),
        "emg_mv": float(rng.uniform(0.004, 0.02)),
        "powerline_mv": float(rng.uniform(0.0, 0.02)),
        "powerline_hz": float(rng.choice([50.0, 60.0])),
        "motion_per_hour": float(rng.uniform(0.5, 3.0)),
        "electrode_off_per_night": float(rng.uniform(0.0, 0.6)),
    }


def _wave_samples(
    n: int, centres: np.ndarray, amps: np.ndarray, widths: np.ndarray, fs: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sample indices and values of Gaussians (centre s, amplitude, sd s), vectorised."""
    keep = amps != 0
    centres, amps, widths = centres[keep], amps[keep], widths[keep]
    out = []
    # Split by width so that narrow waves do not pay for the widest window.
    order = np.argsort(widths)
    for chunk in np.array_split(order, max(1, int(np.ceil(len(order) / 10000)))):
        half = int(np.ceil(4.0 * widths[chunk].max() * fs)) + 1
        offsets = np.arange(-half, half + 1, dtype=np.int64)
        c = centres[chunk, None] * fs
        idx = np.round(c).astype(np.int64) + offsets
        z = ((idx - c) / (widths[chunk, None] * fs)).astype(np.float32)
        values = amps[chunk, None].astype(np.float32) * np.exp(-0.5 * z * z)
        outside = (idx < 0) | (idx >= n)
        if outside.any():
            values[outside] = 0.0
            np.clip(idx, 0, n - 1, out=idx)
        out.append((idx.ravel(), values.ravel()))
    return out


def clean_ecg(
    beat_times: np.ndarray,
    fs: float,
    n_samples: int,
    *,
    beat_types: np.ndarray | None = None,
    amplitudes: np.ndarray | None = None,
    params: dict | None = None,
) -> np.ndarray:
    """Noise-free ECG (mV): one P-QRS-T complex centred on each beat sample.

    The R wave of beat ``k`` is centred exactly on sample ``round(beat_times[k] * fs)``;
    the T wave moves with the preceding RR interval (Bazett: offset and width scale with
    ``sqrt(RR)``).

    Parameters
    ----------
    beat_times : ndarray of shape (n_beats,)
        R-peak times in seconds (increasing).
    fs : float
        Sampling rate in Hz.
    n_samples : int
        Length of the output.
    beat_types : ndarray of str, optional
        ``"V"`` draws a ventricular complex, anything else a normal one.
    amplitudes : ndarray of shape (n_beats,), optional
        Per-beat amplitude factor (e.g. respiratory modulation); 1 when omitted.
    params : dict, optional
        Output of :func:`draw_waveform_params` (defaults: typical values).

    Returns
    -------
    ecg : ndarray of shape (n_samples,)
    """
    beat_times = np.asarray(beat_times, dtype=float)
    n_beats = len(beat_times)
    if n_beats == 0 or n_samples == 0:
        return np.zeros(n_samples)
    p = params or {"r_amplitude_mv": 1.0, "p_scale": 1.0, "t_scale": 1.0, "s_scale": 1.0}
    centre = np.round(beat_times * fs) / fs  # the R-peak sample, as a time
    rr = np.diff(beat_times)
    rr = np.clip(np.concatenate([rr[:1], rr]) if n_beats > 1 else np.ones(1), 0.3, 2.0)
    qt = np.sqrt(rr)
    ventricular = np.zeros(n_beats, bool) if beat_types is None else np.asarray(beat_types) == "V"
    amp = p["r_amplitude_mv"] * (np.ones(n_beats) if amplitudes is None else amplitudes)
    scale = {"P": p["p_scale"], "Q": 1.0, "R": 1.0, "S": p["s_scale"], "T": p["t_scale"]}
    pieces = []
    for wave in _NORMAL:
        off = np.where(ventricular, _VENTRICULAR[wave][0], _NORMAL[wave][0])
        a = np.where(ventricular, _VENTRICULAR[wave][1], _NORMAL[wave][1] * scale[wave])
        w = np.where(ventricular, _VENTRICULAR[wave][2], _NORMAL[wave][2])
        if wave == "T":
            off, w = off * qt, w * qt
        elif wave == "P":
            off = off * np.sqrt(qt)  # PR shortens a little at high heart rates
        pieces += _wave_samples(
            n_samples, centre + off, amp * a, np.broadcast_to(w, (n_beats,)).copy(), fs
        )
    # One bincount for all waves: far cheaper than one pass over the signal per wave.
    idx = np.concatenate([piece[0] for piece in pieces])
    values = np.concatenate([piece[1] for piece in pieces])
    return np.bincount(idx, weights=values, minlength=n_samples)


def _segments(
    rate: float, duration: float, lo: float, hi: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    n = rng.poisson(rate)
    onsets = np.sort(rng.uniform(0.0, max(duration - hi, 0.0), n))
    return onsets, rng.uniform(lo, hi, n)


def synthesize_ecg(
    beat_times: np.ndarray,
    fs: float,
    duration: float,
    *,
    beat_types: np.ndarray | None = None,
    respiration: tuple[np.ndarray, np.ndarray] | None = None,
    noise: bool = True,
    artefacts: bool = True,
    params: dict | None = None,
    random_state: np.random.Generator | int | None = None,
) -> ECGWaveform:
    """Synthesise a single-lead ECG (mV) whose R-peaks sit on the given beats.

    Parameters
    ----------
    beat_times : ndarray of shape (n_beats,)
        R-peak times in seconds; each R wave is centred on ``round(t * fs)``.
    fs : float
        Sampling rate in Hz.
    duration : float
        Length in seconds; the signal has ``round(duration * fs)`` samples.
    beat_types : ndarray of str, optional
        Beat types (``"V"`` draws a ventricular complex).
    respiration : (times, values), optional
        Respiration driving amplitude modulation and part of the baseline wander; an
        independent breathing signal at 12-16 breaths/min is drawn when omitted.
    noise : bool
        Add baseline wander, EMG and powerline noise.
    artefacts : bool
        Add motion artefacts and electrode-off flat lines.
    params : dict, optional
        Output of :func:`draw_waveform_params` (drawn when omitted).
    random_state : Generator, int or None
        Source of randomness.

    Returns
    -------
    ecg : ECGWaveform
        The signal (float32, mV) with its artefact mask.

    Examples
    --------
    >>> import numpy as np
    >>> beats = np.arange(1.0, 9.0, 0.8)
    >>> ecg = synthesize_ecg(beats, 250.0, 10.0, noise=False, artefacts=False,
    ...                      random_state=0)
    >>> peaks = np.round(beats * 250).astype(int)
    >>> bool(all(np.argmax(ecg.signal[p - 20:p + 21]) == 20 for p in peaks))
    True
    """
    rng = np.random.default_rng(random_state)
    params = dict(draw_waveform_params(rng) if params is None else params)
    n = int(round(duration * fs))
    beat_times = np.asarray(beat_times, dtype=float)
    if respiration is None:
        grid = np.arange(0.0, duration + 1.0, 1.0 / HR_GRID_FS)
        rate = rng.uniform(0.2, 0.267) * np.exp(
            0.08 * bandlimited_noise(len(grid), HR_GRID_FS, 0.002, 0.05, rng))
        resp = np.sin(2 * np.pi * np.cumsum(rate) / HR_GRID_FS + rng.uniform(0, 2 * np.pi))
        respiration = (grid, resp)
    resp_t, resp_v = respiration
    beat_amp = 1.0 + params["resp_modulation"] * np.interp(beat_times, resp_t, resp_v)
    beat_amp *= rng.normal(1.0, 0.02, len(beat_times))
    ecg = clean_ecg(beat_times, fs, n, beat_types=beat_types, amplitudes=beat_amp,
                    params=params)

    if noise and n:
        # Slow components are drawn on the coarse grid and interpolated (fast).
        coarse = np.arange(int(np.ceil(duration * HR_GRID_FS)) + 2) / HR_GRID_FS
        wander = params["wander_mv"] * (
            0.5 * np.interp(coarse, resp_t, resp_v)
            + bandlimited_noise(len(coarse), HR_GRID_FS, 0.01, 0.4, rng)
        )
        t = np.arange(n) / fs
        ecg += np.interp(t, coarse, wander)
        ecg += params["emg_mv"] * rng.standard_normal(n, dtype=np.float32)
        if params["powerline_hz"] < 0.45 * fs:
            # Phase in cycles, wrapped before the float32 sine (keeps it exact and fast).
            cycles = (t * params["powerline_hz"] + rng.random()) % 1.0
            ecg += params["powerline_mv"] * np.sin(
                (2 * np.pi) * cycles.astype(np.float32))

    mask = np.zeros(n, bool)
    found = []
    if artefacts and n:
        hours = duration / 3600.0
        on, dur = _segments(params["motion_per_hour"] * hours, duration, 2.0, 15.0, rng)
        for o, d in zip(on, dur):
            a, b = int(o * fs), min(int((o + d) * fs), n)
            if b - a < 2:
                continue
            burst = rng.uniform(0.3, 1.2) * bandlimited_noise(b - a, fs, 0.3, 8.0, rng)
            burst += rng.uniform(0.02, 0.1) * bandlimited_noise(b - a, fs, 20.0, 0.45 * fs, rng)
            ecg[a:b] += burst * np.hanning(b - a)
            mask[a:b] = True
            found.append((float(o), float(d), "motion"))
        on, dur = _segments(params["electrode_off_per_night"] * min(hours / 8, 1.0),
                            duration, 5.0, 60.0, rng)
        for o, d in zip(on, dur):
            a, b = int(o * fs), min(int((o + d) * fs), n)
            ecg[a:b] = rng.choice([0.0, rng.uniform(-5.0, 5.0)])
            mask[a:b] = True
            found.append((float(o), float(d), "electrode_off"))
    return ECGWaveform(signal=ecg.astype(np.float32), fs=float(fs), artefact_mask=mask,
                       artefacts=found, params=params)
