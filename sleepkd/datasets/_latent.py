"""Shared latent physiology: one hidden night state that drives both the EEG and the ECG.

In a real night the EEG and the heart share more than the scored stage: a cortical
arousal comes with a heart-rate surge, slow-wave depth within NREM goes with vagal tone,
phasic REM comes with heart-rate irregularity, and stage changes are gradual in both.
The expert labels are one scorer's reading of that state, and scorers disagree most
where the state is ambiguous (transitions, N2/N3 borders, arousals).

This module builds that hidden state (a :class:`LatentNight`):

- ``true_stages``: the latent stage per epoch (the hypnogram model's sequence);
- ``swa``: a continuous slow-wave / vagal-tone deviation (z units, 1-Hz grid) that
  wanders within NREM on a time scale of minutes and declines over the night;
- arousal events (onset, duration, intensity), more frequent in light sleep;
- REM phasic bursts (onset, duration, intensity);
- ``labels``: a noisy scorer's reading of the latent state (:func:`score_latent`),
  with disagreement concentrated at transitions, N2/N3 depth borders and arousals.

For semi-real nights (:func:`latent_from_beats`) the state is derived from the real
beats instead: heart-rate surges found in the real RR series become EEG arousals, a
high-frequency (vagal) power proxy of the real RR series becomes ``swa``, and RR
irregularity in REM becomes phasic activity; the labels stay the real expert labels.

What is physiology from the literature and what is a modelling choice is listed in
``docs/synthetic_data.rst`` ("Shared latent physiology").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sleepkd.datasets._recording import EPOCH_SECONDS

#: Accepted values of the ``physiology`` parameter of the generators.
PHYSIOLOGY_MODES = ("shared", "labels", "independent")

#: Sampling rate (Hz) of the latent traces stored in ``Recording.info["latent"]``.
LATENT_FS = 1.0

_STAGES = ("W", "N1", "N2", "N3", "R")
# Relative arousal rate per latent stage (W, N1, N2, N3, R): more in light sleep, few in
# slow-wave sleep (modelling choice in line with the arousal literature).
_AROUSAL_RATE = {"W": 0.0, "N1": 1.8, "N2": 1.0, "N3": 0.35, "R": 0.9, "?": 0.0}
# Scorer: probability that an epoch far from any ambiguity is read as another stage,
# and which stage it is confused with (weights). N1 is the least reliable stage.
_BASE_ERROR = {"W": 0.03, "N1": 0.30, "N2": 0.025, "N3": 0.03, "R": 0.025}
_CONFUSED_WITH = {
    "W": (("N1", 0.8), ("N2", 0.2)),
    "N1": (("W", 0.35), ("N2", 0.45), ("R", 0.2)),
    "N2": (("N1", 0.55), ("N3", 0.25), ("R", 0.2)),
    "N3": (("N2", 1.0),),
    "R": (("N1", 0.6), ("N2", 0.3), ("W", 0.1)),
}
# Scorer: probability of reading a transition epoch as its neighbour's stage.
_TRANSITION_ERROR = 0.22
# Scorer: N2 epochs with deep slow waves read as N3 and N3 epochs with shallow ones as
# N2: p = scale * sigmoid((+-swa - centre) / width).
_DEPTH_ERROR = (0.35, 1.0, 0.35)
# Scorer: an epoch holding an arousal is read as lighter sleep with probability
# scale * intensity * (seconds of arousal / 15).
_AROUSAL_ERROR = 0.25


def independent_arousals(
    stages: np.ndarray, epoch_onsets: np.ndarray, n_arousals: int,
    rng: np.random.Generator, epoch_length: float = EPOCH_SECONDS,
) -> tuple[np.ndarray, np.ndarray]:
    """``n_arousals`` EEG arousals in random sleep epochs, unrelated to the heart."""
    asleep = np.flatnonzero(np.isin(stages, ["N1", "N2", "N3", "R"]))
    if len(asleep) == 0 or n_arousals == 0:
        return np.zeros(0), np.zeros(0)
    epochs = np.sort(rng.choice(asleep, n_arousals))
    onsets = np.asarray(epoch_onsets, float)[epochs] + rng.uniform(
        0.0, 0.8 * epoch_length, n_arousals)
    return onsets, rng.uniform(3.0, 15.0, n_arousals)


def check_physiology(physiology) -> str:
    """Return ``physiology`` if it is a known mode, else raise a ValueError naming it."""
    if not isinstance(physiology, str) or physiology not in PHYSIOLOGY_MODES:
        raise ValueError(f"physiology must be one of {PHYSIOLOGY_MODES}, got "
                         f"{physiology!r}.")
    return physiology


@dataclass
class LatentNight:
    """The hidden physiological state of one night.

    Parameters
    ----------
    true_stages : ndarray of str, shape (n_epochs,)
        Latent stage of each epoch (what the physiology follows).
    labels : ndarray of str, shape (n_epochs,)
        The scorer's reading (the expert labels the generator returns).
    epoch_onsets : ndarray of shape (n_epochs,)
        Epoch onsets in seconds.
    times : ndarray of shape (n_grid,)
        1-Hz grid (s) of the traces.
    swa : ndarray of shape (n_grid,)
        Slow-wave / vagal-tone deviation in z units (0 = the stage's norm); drives the
        delta amplitude of the EEG and the heart rate and RSA amplitude of the ECG in
        NREM.
    arousal_onsets, arousal_durations, arousal_intensity : ndarray of shape (n_arousals,)
        Arousal events (s, s, relative size ~1); each gives an EEG alpha/beta burst and
        a heart-rate surge of proportional size.
    phasic_onsets, phasic_durations, phasic_intensity : ndarray of shape (n_bursts,)
        REM phasic bursts; each gives more sawtooth waves and eye movements in the EEG
        and heart-rate irregularity in the ECG.
    surge_latency : ndarray of shape (n_arousals,)
        Delay (s) of the heart-rate surge after the EEG arousal onset.
    scorer_reason : ndarray of str, shape (n_epochs,)
        Why the scorer deviated (``"transition"``, ``"depth"``, ``"arousal"``,
        ``"base"``) or ``""`` where the label equals the latent stage.
    params : dict
        Parameters used.
    """

    true_stages: np.ndarray
    labels: np.ndarray
    epoch_onsets: np.ndarray
    times: np.ndarray
    swa: np.ndarray
    arousal_onsets: np.ndarray
    arousal_durations: np.ndarray
    arousal_intensity: np.ndarray
    phasic_onsets: np.ndarray
    phasic_durations: np.ndarray
    phasic_intensity: np.ndarray
    surge_latency: np.ndarray
    scorer_reason: np.ndarray
    params: dict = field(default_factory=dict)

    def swa_at(self, t: np.ndarray) -> np.ndarray:
        """The slow-wave deviation interpolated at times ``t`` (s)."""
        return np.interp(t, self.times, self.swa)

    def arousal_at(self, t: np.ndarray) -> np.ndarray:
        """Arousal intensity envelope at times ``t`` (0 outside arousals)."""
        return event_envelope(t, self.arousal_onsets, self.arousal_durations,
                              self.arousal_intensity)

    def phasic_at(self, t: np.ndarray) -> np.ndarray:
        """REM phasic intensity envelope at times ``t`` (0 outside bursts)."""
        return event_envelope(t, self.phasic_onsets, self.phasic_durations,
                              self.phasic_intensity)

    def as_info(self) -> dict:
        """The latent state as a plain dict (for ``Recording.info["latent"]``)."""
        return {
            "true_stages": self.true_stages.copy(),
            "times": self.times, "swa": self.swa,
            "arousal": self.arousal_at(self.times),
            "phasic": self.phasic_at(self.times),
            "arousal_onsets": self.arousal_onsets,
            "arousal_durations": self.arousal_durations,
            "arousal_intensity": self.arousal_intensity,
            "surge_latency": self.surge_latency,
            "phasic_onsets": self.phasic_onsets,
            "phasic_durations": self.phasic_durations,
            "phasic_intensity": self.phasic_intensity,
            "scorer_reason": self.scorer_reason,
            "params": dict(self.params),
        }


def event_envelope(
    t: np.ndarray, onsets: np.ndarray, durations: np.ndarray, amplitudes: np.ndarray,
    *, ramp: float = 0.5,
) -> np.ndarray:
    """Sum of trapezoids (rise and fall of ``ramp`` s) with the given heights, at ``t``.

    With ``ramp=0`` each event is a box over ``[onset, onset + duration)``.
    """
    t = np.asarray(t, dtype=float)
    out = np.zeros(len(t))
    if len(onsets) == 0 or len(t) == 0:
        return out
    for on, dur, amp in zip(onsets, durations, amplitudes):
        a = max(int(np.searchsorted(t, on - ramp)), 0)
        b = int(np.searchsorted(t, on + dur + ramp))
        if b <= a:
            continue
        tt = t[a:b]
        shape = np.clip(np.minimum((tt - on) / ramp + 1.0, (on + dur - tt) / ramp + 1.0)
                        if ramp > 0 else 1.0, 0.0, 1.0)
        out[a:b] += amp * shape
    return out


def _stage_at(stages: np.ndarray, onsets: np.ndarray, t: np.ndarray,
              epoch_length: float) -> np.ndarray:
    idx = np.clip(np.searchsorted(onsets, t, side="right") - 1, 0, len(stages) - 1)
    return stages[idx]


def _poisson_events(rate_per_s: np.ndarray, times: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Onsets of an inhomogeneous Poisson process (rate on a regular grid)."""
    dt = times[1] - times[0] if len(times) > 1 else 1.0
    counts = rng.poisson(np.maximum(rate_per_s, 0.0) * dt)
    return np.sort(np.repeat(times, counts) + rng.uniform(0.0, dt, counts.sum()))


def draw_latent_params(rng: np.random.Generator) -> dict:
    """Draw the latent-physiology parameters of one subject-night."""
    return {
        "swa_sd": float(rng.uniform(0.8, 1.2)),
        "swa_decline": float(rng.uniform(0.6, 1.4)),
        "phasic_per_min": float(rng.uniform(1.5, 3.0)),
        "phasic_density_growth": float(rng.uniform(0.3, 1.0)),
    }


def make_latent_night(
    true_stages: np.ndarray,
    *,
    arousals_per_hour: float,
    epoch_onsets: np.ndarray | None = None,
    epoch_length: float = EPOCH_SECONDS,
    params: dict | None = None,
    random_state: np.random.Generator | int | None = None,
) -> LatentNight:
    """The latent state of a synthetic night whose latent stages are ``true_stages``.

    Parameters
    ----------
    true_stages : ndarray of str, shape (n_epochs,)
        Latent stages (e.g. :func:`~sleepkd.datasets._hypnogram.make_hypnogram`).
    arousals_per_hour : float
        Mean arousal rate over sleep; spread over the latent stages with the weights
        N1 1.8, N2 1, N3 0.35, REM 0.9 (none in wake).
    epoch_onsets : ndarray, optional
        Epoch onsets (s); ``arange(n_epochs) * epoch_length`` when omitted.
    epoch_length : float
        Epoch duration in seconds.
    params : dict, optional
        Output of :func:`draw_latent_params` (drawn when omitted).
    random_state : Generator, int or None
        Source of randomness.

    Returns
    -------
    latent : LatentNight
        With ``labels`` read by :func:`score_latent`.

    Examples
    --------
    >>> import numpy as np
    >>> stages = np.array(["W"] * 20 + ["N1"] * 4 + ["N2"] * 40 + ["N3"] * 30 + ["R"] * 26)
    >>> latent = make_latent_night(stages, arousals_per_hour=10.0, random_state=0)
    >>> latent.labels.shape, latent.swa.shape
    ((120,), (3601,))
    """
    from sleepkd.datasets._ecg_synth import bandlimited_noise
    from sleepkd.datasets._hypnogram import stage_weights

    rng = np.random.default_rng(random_state)
    params = dict(draw_latent_params(rng) if params is None else params)
    stages = np.asarray(true_stages)
    n_epochs = len(stages)
    if epoch_onsets is None:
        epoch_onsets = np.arange(n_epochs) * epoch_length
    onsets = np.asarray(epoch_onsets, dtype=float)
    duration = float(onsets[-1] + epoch_length)
    times = np.arange(int(np.ceil(duration * LATENT_FS)) + 1) / LATENT_FS

    # Slow-wave / vagal depth: wanders over minutes (periods 2-20 min), declines over
    # the night (process S), and ramps in and out of NREM over about a minute.
    w = stage_weights(stages, onsets, times, epoch_length=epoch_length, sigma=30.0)
    nrem = w[2] + w[3]
    wander = bandlimited_noise(len(times), LATENT_FS, 1.0 / 1200.0, 1.0 / 120.0, rng)
    trend = params["swa_decline"] * (0.5 - times / max(times[-1], 1.0))
    swa = nrem * (params["swa_sd"] * wander + trend)

    # Arousals: Poisson with stage-dependent rate, 3-15 s, intensity lognormal; the
    # heart-rate surge follows the EEG onset by 0.5-3 s.
    stage_t = _stage_at(stages, onsets, times, epoch_length)
    rel = np.array([_AROUSAL_RATE.get(s, 0.0) for s in stage_t.tolist()])
    mean_rel = rel[rel > 0].mean() if np.any(rel > 0) else 1.0
    rate = rel / mean_rel * arousals_per_hour / 3600.0
    ar_on = _poisson_events(rate, times, rng)
    ar_on = ar_on[ar_on < duration - 3.0]
    n_ar = len(ar_on)
    ar_dur = rng.uniform(3.0, 15.0, n_ar)
    ar_int = np.clip(rng.lognormal(0.0, 0.4, n_ar), 0.3, 3.0)
    latency = rng.uniform(0.5, 3.0, n_ar)

    # REM phasic bursts: Poisson inside REM, density growing across the night and
    # varying between REM epochs (tonic stretches without bursts).
    is_rem = stage_t == "R"
    density = np.exp(0.6 * bandlimited_noise(len(times), LATENT_FS, 1.0 / 600.0,
                                             1.0 / 60.0, rng))
    density *= 1.0 + params["phasic_density_growth"] * times / max(times[-1], 1.0)
    ph_on = _poisson_events(is_rem * density * params["phasic_per_min"] / 60.0, times, rng)
    ph_on = ph_on[ph_on < duration - 1.0]
    ph_dur = np.clip(rng.lognormal(np.log(4.0), 0.5, len(ph_on)), 1.0, 15.0)
    ph_int = np.clip(rng.lognormal(0.0, 0.35, len(ph_on)), 0.3, 3.0)

    latent = LatentNight(
        true_stages=stages.copy(), labels=stages.copy(), epoch_onsets=onsets,
        times=times, swa=swa, arousal_onsets=ar_on, arousal_durations=ar_dur,
        arousal_intensity=ar_int, phasic_onsets=ph_on, phasic_durations=ph_dur,
        phasic_intensity=ph_int, surge_latency=latency,
        scorer_reason=np.full(n_epochs, "", dtype="<U10"), params=params,
    )
    labels, reason = score_latent(latent, epoch_length=epoch_length, random_state=rng)
    latent.labels, latent.scorer_reason = labels, reason
    return latent


def _epoch_means(values: np.ndarray, times: np.ndarray, onsets: np.ndarray,
                 epoch_length: float) -> np.ndarray:
    idx = np.searchsorted(onsets, times, side="right") - 1
    inside = (idx >= 0) & (times < onsets[-1] + epoch_length)
    sums = np.bincount(idx[inside], weights=values[inside], minlength=len(onsets))
    counts = np.bincount(idx[inside], minlength=len(onsets))
    return sums / np.maximum(counts, 1)


def _pick(choices, rng: np.random.Generator) -> str:
    names = [c[0] for c in choices]
    p = np.array([c[1] for c in choices], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def score_latent(
    latent: LatentNight,
    *,
    epoch_length: float = EPOCH_SECONDS,
    random_state: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A noisy scorer's reading of the latent state: one label per epoch.

    The scorer checks, in order: a transition epoch (its latent stage differs from a
    neighbour's) is read as the neighbour's stage with probability 0.22; an N2 epoch
    with deep slow waves (``swa`` above about 1 sd) is read as N3 and an N3 epoch with
    shallow ones as N2 (probability up to 0.35); an epoch holding an arousal is read
    as lighter sleep (N1, or W from N1) with probability ``0.25 * intensity *
    seconds / 15``; any other epoch deviates with a small stage-dependent probability
    (0.3 for N1, 0.025-0.03 otherwise) towards the stages scorers confuse it with.

    Returns
    -------
    labels : ndarray of str, shape (n_epochs,)
    reason : ndarray of str, shape (n_epochs,)
        ``"transition"``, ``"depth"``, ``"arousal"``, ``"base"``, or ``""`` where the
        label is the latent stage.
    """
    rng = np.random.default_rng(random_state)
    true = np.asarray(latent.true_stages)
    n = len(true)
    onsets = np.asarray(latent.epoch_onsets, dtype=float)
    swa = _epoch_means(latent.swa, latent.times, onsets, epoch_length)
    arousal = _epoch_means(latent.arousal_at(latent.times), latent.times, onsets,
                           epoch_length) * epoch_length / 15.0
    labels = true.copy()
    reason = np.full(n, "", dtype="<U10")
    u = rng.random((4, n))

    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    scale, centre, width = _DEPTH_ERROR
    for i in range(n):
        s = true[i]
        if s not in _BASE_ERROR:
            continue
        neighbours = [true[j] for j in (i - 1, i + 1)
                      if 0 <= j < n and true[j] != s and true[j] in _BASE_ERROR]
        if neighbours and u[0, i] < _TRANSITION_ERROR:
            labels[i] = neighbours[int(rng.integers(len(neighbours)))]
            reason[i] = "transition"
            continue
        if s == "N2" and u[1, i] < scale * sigmoid((swa[i] - centre) / width):
            labels[i], reason[i] = "N3", "depth"
            continue
        if s == "N3" and u[1, i] < scale * sigmoid((-swa[i] - centre) / width):
            labels[i], reason[i] = "N2", "depth"
            continue
        if s != "W" and u[2, i] < _AROUSAL_ERROR * arousal[i]:
            labels[i], reason[i] = ("W" if s == "N1" else "N1"), "arousal"
            continue
        if u[3, i] < _BASE_ERROR[s]:
            labels[i], reason[i] = _pick(_CONFUSED_WITH[s], rng), "base"
    reason[labels == true] = ""
    return labels, reason


# ------------------------------------------------------------------ semi-real nights
def _hr_series(beats: np.ndarray, fs: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Heart rate (bpm) of the real beats on a regular grid; implausible RR bridged."""
    rr = np.diff(beats)
    t = beats[1:]
    ok = (rr > 0.3) & (rr < 2.0)
    if ok.sum() < 2:
        grid = np.arange(0.0, beats[-1] + 1.0, 1.0 / fs)
        return grid, np.full(len(grid), 60.0)
    grid = np.arange(0.0, beats[-1] + 1.0, 1.0 / fs)
    # Isolated premature beats give a short-long pair: a 3-beat median removes them.
    rr_ok = rr[ok]
    if len(rr_ok) >= 3:
        from scipy.ndimage import median_filter

        rr_ok = median_filter(rr_ok, size=3, mode="nearest")
    return grid, np.interp(grid, t[ok], 60.0 / rr_ok)


def detect_hr_surges(
    beats: np.ndarray, *, threshold_bpm: float = 8.0, baseline_s: float = 60.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arousal-like heart-rate surges in a real beat series.

    The heart rate (4 Hz) is compared with a running median baseline of
    ``baseline_s`` seconds; a surge is a stretch where it exceeds the baseline by more
    than ``threshold_bpm`` for at least 2 s and rises to that level within 8 s.

    Returns
    -------
    onsets : ndarray
        Start of each rise (s): the last time before the peak where the excess was
        below a third of the threshold.
    peaks : ndarray
        Excess heart rate (bpm) at the peak.
    durations : ndarray
        Time (s) above the threshold.
    """
    from scipy.ndimage import median_filter

    fs = 4.0
    grid, hr = _hr_series(np.asarray(beats, dtype=float), fs)
    base = median_filter(hr, size=int(baseline_s * fs) | 1, mode="nearest")
    excess = hr - base
    above = excess > threshold_bpm
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    onsets, peaks, durations = [], [], []
    low = excess < threshold_bpm / 3.0
    for a, b in zip(starts, ends):
        if b - a < 2 * fs:
            continue
        peak = a + int(np.argmax(excess[a:b]))
        before = np.flatnonzero(low[max(0, a - int(8 * fs)):a + 1])
        if len(before) == 0:
            continue  # a slow drift, not a surge
        start = max(0, a - int(8 * fs)) + before[-1]
        onsets.append(grid[start])
        peaks.append(excess[peak])
        durations.append((b - a) / fs)
    return np.array(onsets), np.array(peaks), np.array(durations)


def hf_power_proxy(beats: np.ndarray, times: np.ndarray, *, window_s: float = 60.0
                   ) -> np.ndarray:
    """Log high-frequency (0.15-0.4 Hz) power of the real RR series, at ``times``.

    A vagal-tone proxy: the RR tachogram at 4 Hz is band-passed, squared and averaged
    over ``window_s`` seconds.
    """
    from scipy.ndimage import uniform_filter1d
    from scipy.signal import butter, sosfiltfilt

    fs = 4.0
    grid, hr = _hr_series(np.asarray(beats, dtype=float), fs)
    rr_ms = 60000.0 / hr
    sos = butter(2, [0.15, 0.4], btype="band", fs=fs, output="sos")
    hf = sosfiltfilt(sos, rr_ms - rr_ms.mean()) if len(rr_ms) > 30 else np.zeros(len(rr_ms))
    power = uniform_filter1d(hf ** 2, size=int(window_s * fs), mode="nearest")
    return np.interp(times, grid, np.log(power + 1.0))


def latent_from_beats(
    beats: np.ndarray,
    stages: np.ndarray,
    epoch_onsets: np.ndarray,
    duration: float,
    *,
    epoch_length: float = EPOCH_SECONDS,
    random_state: np.random.Generator | int | None = None,
) -> LatentNight:
    """The latent state that the real beats of a night allow (semi-real nights).

    - Arousals: heart-rate surges of the real RR series (:func:`detect_hr_surges`)
      during scored sleep; the EEG arousal starts 0.5-3 s before the rise, lasts the
      surge's time above threshold plus 2 s (3-15 s) and has an intensity
      proportional to the surge's peak.
    - ``swa``: the HF-power proxy (:func:`hf_power_proxy`), z-scored over the NREM
      epochs of the night, clipped to +-2.5, weighted by NREM.
    - Phasic REM: in REM epochs, where the beat-to-beat irregularity of the heart
      rate is in the top fifth of the night's REM, a phasic burst.

    The labels are the real expert labels (``labels = true_stages = stages``): there
    is no scorer model for real hypnograms.
    """
    from scipy.ndimage import uniform_filter1d

    from sleepkd.datasets._hypnogram import stage_weights

    rng = np.random.default_rng(random_state)
    beats = np.asarray(beats, dtype=float)
    stages = np.asarray(stages)
    onsets = np.asarray(epoch_onsets, dtype=float)
    times = np.arange(int(np.ceil(duration * LATENT_FS)) + 1) / LATENT_FS
    stage_t = _stage_at(stages, onsets, times, epoch_length)
    stage_t = np.where(times < onsets[0], "?", stage_t)

    # Arousals at the real heart-rate surges, in sleep only.
    s_on, s_peak, s_dur = detect_hr_surges(beats)
    asleep = np.isin(_stage_at(stages, onsets, s_on, epoch_length) if len(s_on)
                     else np.zeros(0, str), ["N1", "N2", "N3", "R"])
    if len(s_on):
        asleep &= s_on >= onsets[0]
    s_on, s_peak, s_dur = s_on[asleep], s_peak[asleep], s_dur[asleep]
    latency = rng.uniform(0.5, 3.0, len(s_on))
    ar_on = np.maximum(s_on - latency, 0.0)
    ar_dur = np.clip(s_dur + 2.0, 3.0, 15.0)
    ar_int = np.clip(s_peak / max(np.median(s_peak), 1e-9), 0.3, 3.0) if len(s_peak) \
        else np.zeros(0)

    # Vagal-tone proxy -> slow-wave depth deviation within NREM.
    w = stage_weights(stages, onsets, times, epoch_length=epoch_length, sigma=30.0)
    nrem = w[2] + w[3]
    hf = hf_power_proxy(beats, times)
    in_nrem = np.isin(stage_t, ["N2", "N3"])
    if in_nrem.sum() > 10:
        z = (hf - hf[in_nrem].mean()) / (hf[in_nrem].std() + 1e-9)
    else:
        z = np.zeros(len(times))
    swa = nrem * np.clip(z, -2.5, 2.5)

    # Phasic REM where the real heart rate is most irregular within REM.
    fs = 4.0
    grid, hr = _hr_series(beats, fs)
    irregular = uniform_filter1d(np.abs(hr - uniform_filter1d(hr, int(10 * fs))),
                                 int(5 * fs))
    irr_t = np.interp(times, grid, irregular)
    in_rem = stage_t == "R"
    ph_on, ph_dur, ph_int = np.zeros(0), np.zeros(0), np.zeros(0)
    if in_rem.sum() > 30:
        cut = np.quantile(irr_t[in_rem], 0.8)
        hot = in_rem & (irr_t > cut)
        edges = np.diff(np.concatenate([[0], hot.astype(np.int8), [0]]))
        a, b = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        keep = (b - a) >= 2
        a, b = a[keep], b[keep]
        ph_on = times[a]
        ph_dur = np.clip((b - a) / LATENT_FS, 1.0, 15.0)
        ph_int = np.array([irr_t[i:j].mean() / cut for i, j in zip(a, b)])
        ph_int = np.clip(ph_int, 0.3, 3.0)

    return LatentNight(
        true_stages=stages.copy(), labels=stages.copy(), epoch_onsets=onsets,
        times=times, swa=swa, arousal_onsets=ar_on, arousal_durations=ar_dur,
        arousal_intensity=ar_int, phasic_onsets=ph_on, phasic_durations=ph_dur,
        phasic_intensity=ph_int, surge_latency=latency,
        scorer_reason=np.full(len(stages), "", dtype="<U10"),
        params={"source": "real beats", "n_hr_surges": int(len(s_on)),
                "surge_threshold_bpm": 8.0},
    )
