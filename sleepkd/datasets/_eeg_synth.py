"""Synthetic single-channel sleep EEG (a central derivation such as C4-A1), in uV.

The signal is a sum of continuous rhythms and transient events.

Rhythms: a 1/f background, alpha (subject-specific peak 8.5-11.5 Hz), beta/EMG
(16-40 Hz), theta (4-7.5 Hz) and delta (0.5-2 Hz). Each has an amplitude envelope
``table[component] @ stage_weights(t)`` times a subject factor times an epoch-to-epoch
factor (lognormal), smoothed across epoch boundaries, so that stages blend over about
+-10 s and two epochs of one stage are never alike.

Events (Poisson, with stage-dependent rates): sleep spindles (11-16 Hz, 0.5-2 s) and
K-complexes in N2 (fewer in N3), vertex waves in N1, sawtooth-wave bursts in REM, rapid
eye movements (REM, wake) and slow rolling eye movements (N1) leaking into the
channel, movement artefacts (wake, unscored epochs) and arousals (alpha + EMG bursts).

The stage information is deliberately imperfect: wake has eyes-open stretches with
little alpha, N1 and REM share the theta background, the N2/N3 boundary is a continuum
of delta amplitude (N2 next to N3 deepens), spindle counts vary from none to many per
N2 epoch, and subjects differ in alpha, spindle and delta amplitude. A band-power
classifier reaches a Cohen's kappa of about 0.75 on it (see ``docs/synthetic_data.rst``
for the measured values), like human scorers, not 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sleepkd.datasets._ecg_synth import bandlimited_noise
from sleepkd.datasets._hypnogram import smooth_epoch_values, stage_weights
from sleepkd.datasets._recording import EPOCH_SECONDS

#: Resolution (Hz) of the amplitude envelopes and event-rate grid.
ENVELOPE_FS = 2.0

# Rows: W, N1, N2, N3, R, unscored (movement time / unknown: wake-like, restless).
# Standard deviation (uV) of each rhythm, before subject and epoch factors.
_RHYTHMS = {
    "background": np.array([9.0, 11.0, 13.0, 15.0, 9.0, 12.0]),
    "alpha": np.array([13.0, 5.0, 2.0, 1.5, 2.5, 8.0]),
    "beta": np.array([4.5, 2.5, 1.5, 1.2, 1.3, 8.0]),
    "theta": np.array([3.5, 8.5, 7.0, 6.5, 8.0, 4.0]),
    "delta": np.array([4.0, 8.0, 15.0, 43.0, 5.0, 6.0]),
}
# Pass bands (Hz) of the rhythms; alpha is centred on the subject's peak frequency.
_BANDS = {"beta": (16.0, 40.0), "theta": (4.0, 7.5), "delta": (0.5, 2.0)}
# Spread (sd of the log) of the epoch-to-epoch amplitude factor of each rhythm.
_EPOCH_SPREAD = {"background": 0.2, "alpha": 0.45, "beta": 0.35, "theta": 0.3,
                 "delta": 0.25}
# Event rates per minute.
_EVENT_RATES = {
    "spindle": np.array([0.0, 0.3, 5.5, 1.5, 0.1, 0.0]),
    "k_complex": np.array([0.0, 0.15, 1.3, 0.7, 0.0, 0.0]),
    "vertex": np.array([0.0, 3.0, 0.4, 0.0, 0.2, 0.0]),
    "sawtooth": np.array([0.0, 0.2, 0.0, 0.0, 3.0, 0.0]),
    "rapid_eye": np.array([8.0, 0.5, 0.0, 0.0, 6.0, 2.0]),
    "slow_eye": np.array([0.5, 2.5, 0.2, 0.0, 0.3, 0.0]),
    "movement": np.array([0.3, 0.05, 0.02, 0.0, 0.02, 4.0]),
}
# Shared latent physiology (``latent=``): blending width (s) of the stage weights, the
# independent epoch-to-epoch spreads (smaller: the scorer's noise and the shared
# slow-wave deviation now carry part of the imperfection), the gain of the slow-wave
# deviation on log delta amplitude, and the gain of phasic activity on the REM rates of
# sawtooth waves and rapid eye movements (0.3 + 3 * phasic keeps the mean REM rate).
_LATENT_BLEND_SIGMA = 8.0
_LATENT_EPOCH_SPREAD = {"background": 0.15, "alpha": 0.3, "beta": 0.25, "theta": 0.2,
                        "delta": 0.1}
_SWA_DELTA_GAIN = 0.2
_PHASIC_RATE_GAIN = 3.0
# Event durations drawn per event (s) and the template length (s).
_TEMPLATE_SECONDS = {"spindle": 2.0, "k_complex": 1.2, "vertex": 0.5, "sawtooth": 3.0,
                     "rapid_eye": 1.5, "slow_eye": 4.0, "movement": 5.0}


@dataclass
class EEGSignal:
    """A synthetic EEG channel and what was put into it.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,)
        EEG in microvolts (float32).
    fs : float
        Sampling rate in Hz.
    events : dict
        Event type -> onsets in seconds (spindles, K-complexes, ...).
    params : dict
        Subject parameters.
    """

    signal: np.ndarray
    fs: float
    events: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)


def draw_eeg_params(rng: np.random.Generator) -> dict:
    """Draw the EEG parameters of one subject.

    Returns
    -------
    params : dict
        ``amplitude`` (overall scale), per-rhythm scales (``alpha_scale``,
        ``delta_scale``, ``theta_scale``, ``beta_scale``), ``alpha_hz``, ``spindle_hz``,
        ``spindle_density``, ``eyes_closed`` (fraction of wake with eyes closed),
        ``background_exponent`` (1/f slope).
    """
    return {
        "amplitude": float(np.clip(rng.lognormal(0.0, 0.15), 0.7, 1.4)),
        "alpha_scale": float(np.clip(rng.lognormal(0.0, 0.4), 0.25, 3.0)),
        "delta_scale": float(np.clip(rng.lognormal(0.0, 0.22), 0.4, 2.0)),
        "theta_scale": float(np.clip(rng.lognormal(0.0, 0.2), 0.5, 2.0)),
        "beta_scale": float(np.clip(rng.lognormal(0.0, 0.3), 0.4, 2.5)),
        "alpha_hz": float(np.clip(rng.normal(10.0, 0.7), 8.5, 11.5)),
        "spindle_hz": float(np.clip(rng.normal(13.0, 0.7), 11.5, 15.0)),
        "spindle_density": float(np.clip(rng.lognormal(0.0, 0.35), 0.3, 2.5)),
        "eyes_closed": float(rng.uniform(0.5, 0.9)),
        "background_exponent": float(rng.uniform(0.8, 1.4)),
    }


def _pink_noise(n: int, fs: float, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise with a 1/f**exponent power spectrum above 0.3 Hz."""
    from scipy import fft as sfft

    n_fft = sfft.next_fast_len(n, real=True)
    spec = sfft.rfft(rng.standard_normal(n_fft))
    f = sfft.rfftfreq(n_fft, 1.0 / fs)
    gain = np.where(f > 0, (np.maximum(f, 0.3)) ** (-exponent / 2), 0.0)
    gain[f > 0.45 * fs] = 0.0
    x = sfft.irfft(spec * gain, n_fft)[:n]
    return x / x.std()


def _eyes_closed(n_epochs: int, p_closed: float, rng: np.random.Generator) -> np.ndarray:
    """Eyes-closed state per epoch: a two-state Markov chain (mean bout 3 epochs)."""
    state = np.empty(n_epochs, bool)
    state[0] = rng.random() < p_closed
    switch = 1.0 / 3.0
    u = rng.random(n_epochs)
    for i in range(1, n_epochs):
        # Leave the current state with prob. `switch`, re-draw from the stationary law.
        state[i] = (rng.random() < p_closed) if u[i] < switch else state[i - 1]
    return state


def _event_onsets(
    rate_per_min: np.ndarray, grid: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Onsets of an inhomogeneous Poisson process with the given rate on a grid."""
    dt = grid[1] - grid[0] if len(grid) > 1 else 1.0
    counts = rng.poisson(np.maximum(rate_per_min, 0.0) / 60.0 * dt)
    onsets = np.repeat(grid, counts) + rng.uniform(0.0, dt, counts.sum())
    return np.sort(onsets)


def _templates(
    kind: str, n: int, fs: float, params: dict, rng: np.random.Generator
) -> np.ndarray:
    """Waveforms (n, n_template) of ``n`` events of one kind, in uV."""
    tau = np.arange(int(round(_TEMPLATE_SECONDS[kind] * fs))) / fs
    amp = params["amplitude"]

    def gauss(centre, width):
        return np.exp(-0.5 * ((tau - centre) / width) ** 2)

    if kind == "spindle":
        dur = rng.uniform(0.5, 2.0, (n, 1))
        freq = rng.normal(params["spindle_hz"], 0.4, (n, 1))
        a = amp * rng.lognormal(np.log(22.0), 0.35, (n, 1))
        env = np.where(tau < dur, np.sin(np.pi * np.minimum(tau / dur, 1.0)) ** 2, 0.0)
        return a * env * np.sin(2 * np.pi * freq * tau + rng.uniform(0, 2 * np.pi, (n, 1)))
    if kind == "k_complex":
        a = amp * params["delta_scale"] * rng.lognormal(np.log(90.0), 0.3, (n, 1))
        return a * (-gauss(0.3, 0.08) + 0.6 * gauss(0.7, 0.18))
    if kind == "vertex":
        a = amp * rng.lognormal(np.log(45.0), 0.3, (n, 1))
        return a * (-gauss(0.15, 0.04) + 0.3 * gauss(0.3, 0.06))
    if kind == "sawtooth":
        dur = rng.uniform(1.0, 3.0, (n, 1))
        freq = rng.uniform(2.0, 5.0, (n, 1))
        a = amp * rng.lognormal(np.log(20.0), 0.3, (n, 1))
        phase = (freq * tau) % 1.0
        saw = np.where(phase < 0.8, phase / 0.8, (1.0 - phase) / 0.2) * 2 - 1
        env = np.where(tau < dur, np.sin(np.pi * np.minimum(tau / dur, 1.0)), 0.0)
        return a * env * saw
    if kind == "rapid_eye":
        hold = rng.uniform(0.2, 1.0, (n, 1))
        a = rng.choice([-1.0, 1.0], (n, 1)) * rng.lognormal(np.log(25.0), 0.4, (n, 1))

        def sig(x):
            return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))

        return a * (sig((tau - 0.1) / 0.02) - sig((tau - 0.1 - hold) / 0.12))
    if kind == "slow_eye":
        dur = rng.uniform(2.0, 4.0, (n, 1))
        a = rng.choice([-1.0, 1.0], (n, 1)) * rng.lognormal(np.log(30.0), 0.35, (n, 1))
        return a * np.where(tau < dur, np.sin(np.pi * np.minimum(tau / dur, 1.0)), 0.0)
    if kind == "movement":
        from scipy import fft as sfft

        dur = rng.uniform(1.0, 5.0, (n, 1))
        m = len(tau)
        spec = sfft.rfft(rng.standard_normal((n, m)), axis=1)
        f = sfft.rfftfreq(m, 1.0 / fs)
        slow = sfft.irfft(spec * ((f > 0.3) & (f < 4.0)), m, axis=1)
        slow /= slow.std(axis=1, keepdims=True) + 1e-12
        fast = rng.standard_normal((n, m))
        env = np.where(tau < dur, np.sin(np.pi * np.minimum(tau / dur, 1.0)), 0.0)
        a = rng.lognormal(np.log(60.0), 0.5, (n, 1))
        return env * (a * slow + 0.3 * a * fast)
    raise ValueError(f"Unknown EEG event kind {kind!r}.")


def synthesize_eeg(
    stages: np.ndarray,
    fs: float,
    duration: float,
    *,
    epoch_onsets: np.ndarray | None = None,
    epoch_length: float = EPOCH_SECONDS,
    arousal_onsets: np.ndarray | None = None,
    arousal_durations: np.ndarray | None = None,
    params: dict | None = None,
    latent=None,
    random_state: np.random.Generator | int | None = None,
) -> EEGSignal:
    """Synthesise one EEG channel (uV) following a hypnogram.

    Parameters
    ----------
    stages : ndarray of str, shape (n_epochs,)
        AASM labels; unscored epochs (``"?"``) are drawn as restless wake with
        movement artefacts.
    fs : float
        Sampling rate in Hz (at least 50 Hz for the spindle band to exist).
    duration : float
        Length in seconds; the signal has ``round(duration * fs)`` samples.
    epoch_onsets : ndarray, optional
        Epoch onsets (s); ``arange(n_epochs) * epoch_length`` when omitted.
    epoch_length : float
        Epoch duration in seconds.
    arousal_onsets, arousal_durations : ndarray, optional
        Brief arousals (s): bursts of alpha and EMG.
    params : dict, optional
        Output of :func:`draw_eeg_params` (drawn when omitted).
    latent : LatentNight, optional
        Shared latent physiology (:mod:`sleepkd.datasets._latent`). When given, the
        EEG also follows it: the slow-wave deviation ``swa`` scales the delta
        amplitude in NREM (the independent epoch-to-epoch delta factor shrinks), each
        latent arousal gives an alpha/beta burst proportional to its intensity
        (``arousal_onsets`` / ``arousal_durations`` are then ignored), REM phasic
        bursts concentrate the sawtooth waves and rapid eye movements and raise theta,
        and stages blend over about +-13 s instead of +-10 s. The independent
        epoch-to-epoch amplitude factors are smaller, since the scorer's noise now
        makes part of the imperfection.
    random_state : Generator, int or None
        Source of randomness.

    Returns
    -------
    eeg : EEGSignal
        The signal (float32, uV), the event onsets and the parameters.

    Examples
    --------
    >>> import numpy as np
    >>> eeg = synthesize_eeg(np.array(["W", "N2", "N3"]), 100.0, 90.0, random_state=0)
    >>> eeg.signal.shape
    (9000,)
    """
    rng = np.random.default_rng(random_state)
    params = dict(draw_eeg_params(rng) if params is None else params)
    stages = np.asarray(stages)
    n_epochs = len(stages)
    if epoch_onsets is None:
        epoch_onsets = np.arange(n_epochs) * epoch_length
    epoch_onsets = np.asarray(epoch_onsets, dtype=float)
    n = int(round(duration * fs))
    grid = np.arange(0.0, duration + 1.0 / ENVELOPE_FS, 1.0 / ENVELOPE_FS)

    # Stage mixing: components blend over about +-10 s around each epoch boundary
    # (+-20 s with the shared latent physiology: transitions are gradual).
    sigma = 6.0 if latent is None else _LATENT_BLEND_SIGMA
    weights = stage_weights(stages, epoch_onsets, grid, epoch_length=epoch_length,
                            sigma=sigma)
    # Delta also deepens slowly: N2 next to N3 carries more slow waves than N2 far away.
    deep = stage_weights(stages, epoch_onsets, grid, epoch_length=epoch_length, sigma=60.0)[3]

    # Per-epoch factors: eyes open/closed in wake, amplitude variability of every rhythm.
    closed = _eyes_closed(n_epochs, params["eyes_closed"], rng)
    spreads = dict(_EPOCH_SPREAD if latent is None else _LATENT_EPOCH_SPREAD)
    factors = {name: rng.lognormal(0.0, spread, n_epochs)
               for name, spread in spreads.items()}
    is_wake = np.isin(stages, ["W", "?"])
    factors["alpha"] = factors["alpha"] * np.where(is_wake & ~closed, 0.3, 1.0)
    factors["beta"] = factors["beta"] * np.where(is_wake & ~closed, 1.5, 1.0)
    names = list(_RHYTHMS)
    smoothed = smooth_epoch_values(np.stack([factors[k] for k in names]), epoch_onsets, grid,
                                   epoch_length=epoch_length, sigma=6.0)
    subject = {"background": 1.0, "alpha": params["alpha_scale"],
               "beta": params["beta_scale"], "theta": params["theta_scale"],
               "delta": params["delta_scale"]}
    envelopes = {}
    for i, name in enumerate(names):
        level = _RHYTHMS[name] @ weights
        if name == "delta":
            level = level + 7.0 * deep * (1.0 - weights[3])  # N2 near N3 deepens
        envelopes[name] = params["amplitude"] * subject[name] * smoothed[i] * level

    phasic = np.zeros(len(grid))
    if latent is not None:
        # Shared physiology: slow-wave depth, arousal bursts sized by their intensity,
        # and REM phasic activity, all read from the latent state.
        envelopes["delta"] *= np.exp(_SWA_DELTA_GAIN * latent.swa_at(grid))
        inside = latent.arousal_at(grid)
        envelopes["alpha"] += inside * params["amplitude"] * 10.0 * params["alpha_scale"]
        envelopes["beta"] += inside * params["amplitude"] * 6.0
        envelopes["delta"] *= 1.0 - 0.5 * np.clip(inside, 0.0, 1.0)
        phasic = latent.phasic_at(grid)
        envelopes["theta"] *= 1.0 + 0.3 * np.clip(phasic, 0.0, 1.5) * weights[4]
    # Arousals: a few seconds of alpha and EMG (and less delta).
    elif arousal_onsets is not None and len(arousal_onsets):
        ends = np.asarray(arousal_onsets) + np.asarray(arousal_durations)
        inside = np.zeros(len(grid))
        for a, b in zip(np.searchsorted(grid, arousal_onsets), np.searchsorted(grid, ends)):
            inside[a:b] = 1.0
        envelopes["alpha"] += inside * params["amplitude"] * 10.0 * params["alpha_scale"]
        envelopes["beta"] += inside * params["amplitude"] * 6.0
        envelopes["delta"] *= 1.0 - 0.5 * inside

    t = np.arange(n) / fs
    alpha_band = (params["alpha_hz"] - 1.2, params["alpha_hz"] + 1.2)
    tracks = {
        "background": lambda: _pink_noise(n, fs, params["background_exponent"], rng),
        "alpha": lambda: bandlimited_noise(n, fs, *alpha_band, rng),
        "beta": lambda: bandlimited_noise(n, fs, *_BANDS["beta"], rng),
        "theta": lambda: bandlimited_noise(n, fs, *_BANDS["theta"], rng),
        "delta": lambda: bandlimited_noise(n, fs, *_BANDS["delta"], rng),
    }
    eeg = np.zeros(n)
    for name in names:
        eeg += np.interp(t, grid, envelopes[name]) * tracks[name]()

    # Transient events, Poisson with stage-dependent rates; spindle counts vary a lot
    # from epoch to epoch (some N2 epochs have none).
    spindle_epoch = rng.gamma(2.0, 1 / 2.0, n_epochs)
    spindle_factor = smooth_epoch_values(spindle_epoch, epoch_onsets, grid,
                                         epoch_length=epoch_length, sigma=2.0)[0]
    events, pieces = {}, []
    for kind, rates in _EVENT_RATES.items():
        rate = rates @ weights
        if kind == "spindle":
            rate = rate * params["spindle_density"] * spindle_factor
        elif kind in ("sawtooth", "rapid_eye") and latent is not None:
            # REM part of the rate: tonic stretches have few, phasic bursts many.
            rem = rates[4] * weights[4]
            rate = rate - rem + rem * (0.3 + _PHASIC_RATE_GAIN * phasic)
        onsets = _event_onsets(rate, grid, rng)
        onsets = onsets[onsets < duration]
        events[kind] = onsets
        if len(onsets) == 0:
            continue
        waves = _templates(kind, len(onsets), fs, params, rng)
        idx = np.round(onsets * fs).astype(np.int64)[:, None] + np.arange(waves.shape[1])
        inside = idx < n
        pieces.append((idx[inside], waves[inside]))
    if pieces:
        idx = np.concatenate([p[0] for p in pieces])
        eeg += np.bincount(idx, weights=np.concatenate([p[1] for p in pieces]), minlength=n)
    eeg += 0.5 * rng.standard_normal(n)  # amplifier noise
    return EEGSignal(signal=eeg.astype(np.float32), fs=float(fs), events=events,
                     params=params)
