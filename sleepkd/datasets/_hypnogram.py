"""Synthetic hypnograms: plausible sleep architecture in 30-s epochs.

The night is built in two layers.

1. A *cycle template*: sleep-onset latency (wake, then N1), then NREM-REM cycles of
   about 90 minutes. Each cycle runs N1 -> N2 -> N3 -> N2 -> REM; the N3 share is
   large in the first cycle and decays geometrically, the REM share grows from cycle
   to cycle. Subject parameters (latency, cycle length, N3 and REM propensity, number
   of awakenings and arousals) are drawn once per night.
2. *Fragmentation* on top of the template (a semi-Markov layer): short intrusions of a
   neighbouring stage (N2 inside N3, N1 inside REM, ...), awakenings of lognormal
   duration followed by N1, and brief arousals (3-15 s) that do not change the scored
   stage but are returned so that the ECG and EEG generators can show them.

Short nights
------------
Below :data:`COMPRESSION_HOURS` (4 h) every duration of the template (latency, cycle
length, minimum bouts) is scaled by ``hours / 4`` so that a short demo night still
runs through whole cycles and contains all five stages: a 1-h night has cycles of
about 22 minutes. This is a convenience for tests and demos, not physiology. All five
stages are guaranteed for nights of at least :data:`MIN_HOURS_ALL_STAGES` hours.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sleepkd.datasets._recording import EPOCH_SECONDS

#: Below this night length (hours) the cycle structure is compressed proportionally.
COMPRESSION_HOURS = 4.0
#: Nights at least this long (hours) always contain W, N1, N2, N3 and R.
MIN_HOURS_ALL_STAGES = 0.5

_STAGES = ("W", "N1", "N2", "N3", "R")
# Stage that briefly interrupts a bout of the key stage, with per-epoch probability.
_INTRUSIONS = {
    "W": (("N1", 0.04),),
    "N1": (("N2", 0.06), ("W", 0.05)),
    "N2": (("N1", 0.015), ("N3", 0.01)),
    "N3": (("N2", 0.07),),
    "R": (("N1", 0.025), ("W", 0.008)),
}


@dataclass
class Hypnogram:
    """A synthetic night: stages per epoch and brief arousals.

    Parameters
    ----------
    stages : ndarray of str, shape (n_epochs,)
        AASM labels ``W N1 N2 N3 R``.
    arousal_onsets : ndarray of shape (n_arousals,)
        Onsets (s) of brief arousals that do not change the scored stage.
    arousal_durations : ndarray of shape (n_arousals,)
        Their durations (s), 3 to 15 s.
    params : dict
        The subject parameters the night was drawn with.
    epoch_length : float
        Epoch duration in seconds.
    """

    stages: np.ndarray
    arousal_onsets: np.ndarray
    arousal_durations: np.ndarray
    params: dict = field(default_factory=dict)
    epoch_length: float = EPOCH_SECONDS


def draw_sleep_params(rng: np.random.Generator) -> dict:
    """Draw the sleep-architecture parameters of one subject-night.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    params : dict
        ``sol_min`` (sleep-onset latency, min), ``n1_onset_min`` (N1 at sleep onset,
        min), ``cycle_min`` (NREM-REM cycle length, min), ``n3_scale`` and
        ``rem_scale`` (propensities, 1 = typical adult), ``awakenings_per_hour``,
        ``arousals_per_hour``, ``final_wake_min``.
    """
    return {
        "sol_min": float(np.clip(rng.lognormal(np.log(12.0), 0.55), 2.0, 60.0)),
        "n1_onset_min": float(np.clip(rng.lognormal(np.log(4.0), 0.4), 1.5, 12.0)),
        "cycle_min": float(np.clip(rng.normal(92.0, 10.0), 70.0, 120.0)),
        "n3_scale": float(np.clip(rng.lognormal(0.0, 0.35), 0.35, 2.2)),
        "rem_scale": float(np.clip(rng.lognormal(0.0, 0.2), 0.6, 1.6)),
        "awakenings_per_hour": float(np.clip(rng.lognormal(np.log(1.3), 0.5), 0.2, 5.0)),
        "arousals_per_hour": float(np.clip(rng.lognormal(np.log(10.0), 0.45), 2.0, 40.0)),
        "final_wake_min": float(rng.choice([0.0, rng.uniform(1.0, 12.0)], p=[0.4, 0.6])),
    }


def _cycle_segments(
    n_sleep: int, scale: float, params: dict, rng: np.random.Generator
) -> list[tuple[str, int]]:
    """Template of the sleep period: a list of (stage, n_epochs) that sums to n_sleep."""
    per_min = 60.0 / EPOCH_SECONDS
    segments: list[tuple[str, int]] = []
    used, k = 0, 0
    while used < n_sleep:
        length = params["cycle_min"] * scale * per_min * rng.normal(1.0, 0.08)
        length = max(int(round(length)), 8)
        rem_share = min(params["rem_scale"] * (0.13 + 0.075 * k), 0.5)
        n3_share = params["n3_scale"] * 0.42 * np.exp(-0.9 * k)
        if k > 0 and n3_share < 0.04:
            n3_share = 0.0
        n_n1 = max(1, int(round(length * rng.uniform(0.02, 0.06))))
        if k == 0:
            n_n1 = max(1, int(round(params["n1_onset_min"] * scale * per_min)))
        n_rem = max(2, int(round(length * rem_share)))
        n_n3 = int(round(length * n3_share))
        if k == 0:
            n_n3 = max(n_n3, 3)  # the first cycle always reaches slow-wave sleep
        n_n2 = max(length - n_n1 - n_rem - n_n3, 4)
        n_n2a = max(2, int(round(n_n2 * rng.uniform(0.35, 0.6))))
        n_n2b = max(n_n2 - n_n2a, 2)
        segments += [("N1", n_n1), ("N2", n_n2a), ("N3", n_n3), ("N2", n_n2b), ("R", n_rem)]
        used += n_n1 + n_n2a + n_n3 + n_n2b + n_rem
        k += 1
    # Truncate the last cycle at the end of the night.
    out, total = [], 0
    for stage, n in segments:
        n = min(n, n_sleep - total)
        if n > 0:
            out.append((stage, n))
            total += n
    return out


def _fragment(stages: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add short intrusions of neighbouring stages (geometric bouts, mean 1.5 epochs)."""
    out = stages.copy()
    u = rng.random(len(stages))
    i = 0
    while i < len(stages):
        key = stages[i]
        threshold = 0.0
        for intruder, p in _INTRUSIONS[key]:
            if u[i] < threshold + p:
                n = min(int(rng.geometric(1 / 1.5)), len(stages) - i)
                out[i:i + n] = intruder
                i += n
                break
            threshold += p
        else:
            i += 1
    return out


def _add_awakenings(
    stages: np.ndarray, start: int, scale: float, params: dict, rng: np.random.Generator
) -> np.ndarray:
    """Insert awakenings (lognormal duration, then 1-3 epochs of N1) into the sleep period."""
    out = stages.copy()
    n = len(stages)
    sleep_hours = (n - start) * EPOCH_SECONDS / 3600.0
    n_awake = rng.poisson(params["awakenings_per_hour"] * sleep_hours)
    if n_awake == 0 or n - start < 10:
        return out
    # Half of the awakenings end a REM episode (the end of a cycle), half fall anywhere.
    rem_ends = np.flatnonzero((stages[:-1] == "R") & (stages[1:] != "R")) + 1
    rem_ends = rem_ends[rem_ends > start]
    onsets = rng.integers(start + 2, n - 1, n_awake)
    at_rem_end = rng.random(n_awake) < 0.5
    if len(rem_ends):
        onsets[at_rem_end] = rng.choice(rem_ends, at_rem_end.sum())
    for onset in onsets:
        dur = int(np.clip(round(rng.lognormal(np.log(2.0), 0.8) * max(scale, 0.5)), 1, 30))
        n1 = int(rng.integers(1, 4))
        out[onset:onset + dur] = "W"
        out[onset + dur:onset + dur + n1] = "N1"
    return out


def make_hypnogram(
    hours: float,
    random_state: np.random.Generator | int | None = None,
    *,
    params: dict | None = None,
) -> Hypnogram:
    """Generate a synthetic hypnogram with a plausible sleep architecture.

    Parameters
    ----------
    hours : float
        Night length in hours (time in bed); the number of 30-s epochs is
        ``round(hours * 120)``, at least 1.
    random_state : Generator, int or None
        Source of randomness.
    params : dict, optional
        Subject parameters as returned by :func:`draw_sleep_params` (drawn when
        omitted).

    Returns
    -------
    hypnogram : Hypnogram
        Stages per epoch, brief arousals and the parameters used.

    Raises
    ------
    ValueError
        If ``hours`` is not a positive finite number.

    Notes
    -----
    Nights shorter than :data:`COMPRESSION_HOURS` have their cycle structure compressed
    by ``hours / 4`` (see the module docstring); nights of at least
    :data:`MIN_HOURS_ALL_STAGES` hours contain all five stages.

    Examples
    --------
    >>> from sleepkd.datasets._hypnogram import make_hypnogram
    >>> hyp = make_hypnogram(1.0, random_state=0)
    >>> sorted(set(hyp.stages.tolist()))
    ['N1', 'N2', 'N3', 'R', 'W']
    """
    if not np.isfinite(hours) or hours <= 0:
        raise ValueError(f"hours must be a positive number, got {hours!r}.")
    rng = np.random.default_rng(random_state)
    params = dict(draw_sleep_params(rng) if params is None else params)
    per_min = 60.0 / EPOCH_SECONDS
    n_epochs = max(int(round(hours * 60 * per_min)), 1)
    scale = min(1.0, hours / COMPRESSION_HOURS)
    params["time_scale"] = scale

    n_sol = max(int(round(params["sol_min"] * scale * per_min)), 2)
    n_final = int(round(params["final_wake_min"] * scale * per_min))
    n_sol = min(n_sol, max(n_epochs // 8, 1))
    n_final = min(n_final, n_epochs // 10)
    n_sleep = max(n_epochs - n_sol - n_final, 0)

    template = ["W"] * n_sol
    for stage, n in _cycle_segments(n_sleep, scale, params, rng) if n_sleep else []:
        template += [stage] * n
    template += ["W"] * (n_epochs - len(template))
    template = np.asarray(template[:n_epochs], dtype="<U2")

    stages = _add_awakenings(_fragment(template, rng), n_sol, scale, params, rng)
    # The latency stays wake, with its own drift into N1 (no awakenings inserted there).
    stages[:n_sol] = _fragment(template[:n_sol], rng)
    stages[0] = "W"
    if hours >= MIN_HOURS_ALL_STAGES and set(stages.tolist()) != set(_STAGES):
        # Fragmentation can (rarely) overwrite a short bout entirely: fall back to the
        # template, which contains every stage by construction.
        stages = template

    # Brief arousals in sleep: 3-15 s, anywhere in a sleep epoch.
    asleep = np.flatnonzero(stages != "W")
    sleep_hours = len(asleep) * EPOCH_SECONDS / 3600.0
    n_arousals = rng.poisson(params["arousals_per_hour"] * sleep_hours) if len(asleep) else 0
    epochs = np.sort(rng.choice(asleep, n_arousals)) if n_arousals else np.zeros(0, int)
    onsets = (epochs + rng.uniform(0.0, 0.8, n_arousals)) * EPOCH_SECONDS
    durations = rng.uniform(3.0, 15.0, n_arousals)
    return Hypnogram(
        stages=stages,
        arousal_onsets=onsets.astype(float),
        arousal_durations=durations.astype(float),
        params=params,
    )


def stage_fractions(stages: np.ndarray) -> dict[str, float]:
    """Fraction of epochs in each of the five AASM stages (unscored epochs excluded)."""
    stages = np.asarray(stages)
    scored = stages[np.isin(stages, _STAGES)]
    return {s: float(np.mean(scored == s)) if len(scored) else 0.0 for s in _STAGES}


#: Row of each stage in :func:`stage_weights` (unscored epochs get the last row).
STAGE_ROWS = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "R": 4}


def smooth_epoch_values(
    values: np.ndarray,
    epoch_onsets: np.ndarray,
    times: np.ndarray,
    *,
    epoch_length: float = EPOCH_SECONDS,
    sigma: float = 10.0,
) -> np.ndarray:
    """Per-epoch values as a smooth function of time.

    Each epoch's value is held over the epoch on a 1-s grid, smoothed with a Gaussian
    of ``sigma`` seconds, and interpolated at ``times``. Time before the first epoch
    takes the first epoch's value, time after the last epoch the last one's.

    Parameters
    ----------
    values : ndarray of shape (n_rows, n_epochs)
        One or more per-epoch series.
    epoch_onsets : ndarray of shape (n_epochs,)
        Epoch onsets in seconds (increasing).
    times : ndarray of shape (n_times,)
        Where to evaluate, in seconds.
    epoch_length : float
        Epoch duration in seconds.
    sigma : float
        Width (s) of the Gaussian smoothing; 0 keeps steps.

    Returns
    -------
    smoothed : ndarray of shape (n_rows, n_times)
    """
    from scipy.ndimage import gaussian_filter1d

    values = np.atleast_2d(np.asarray(values, dtype=float))
    onsets = np.asarray(epoch_onsets, dtype=float)
    times = np.asarray(times, dtype=float)
    if len(times) == 0:
        return np.zeros((values.shape[0], 0))
    t0 = min(float(times[0]), float(onsets[0]))
    t1 = max(float(times[-1]), float(onsets[-1]) + epoch_length)
    pad = 4 * sigma + 1
    grid = np.arange(t0 - pad, t1 + pad + 1.0, 1.0)
    idx = np.clip(np.searchsorted(onsets, grid, side="right") - 1, 0, len(onsets) - 1)
    on_grid = values[:, idx]
    if sigma > 0:
        on_grid = gaussian_filter1d(on_grid, sigma, axis=1, mode="nearest")
    return np.stack([np.interp(times, grid, row) for row in on_grid])


def stage_weights(
    stages: np.ndarray,
    epoch_onsets: np.ndarray,
    times: np.ndarray,
    *,
    epoch_length: float = EPOCH_SECONDS,
    sigma: float = 10.0,
) -> np.ndarray:
    """Smoothed one-hot stage weights at arbitrary times (gradual transitions).

    The stage of each epoch is written on a 1-s grid, then smoothed with a Gaussian of
    ``sigma`` seconds, so that the physiology of two neighbouring stages mixes across an
    epoch boundary instead of switching at it. Time before the first epoch takes the
    first epoch's stage, time after the last epoch the last one's.

    Parameters
    ----------
    stages : ndarray of str, shape (n_epochs,)
        AASM labels; anything else (e.g. ``"?"``) goes to the unscored row.
    epoch_onsets : ndarray of shape (n_epochs,)
        Epoch onsets in seconds (increasing).
    times : ndarray of shape (n_times,)
        Where to evaluate the weights, in seconds.
    epoch_length : float
        Epoch duration in seconds.
    sigma : float
        Width (s) of the Gaussian smoothing; 0 gives step changes.

    Returns
    -------
    weights : ndarray of shape (6, n_times)
        Rows W, N1, N2, N3, R, unscored; each column sums to 1.
    """
    stages = np.asarray(stages)
    codes = np.array([STAGE_ROWS.get(x, 5) for x in stages.tolist()], dtype=int)
    onehot = np.zeros((6, len(stages)))
    onehot[codes, np.arange(len(stages))] = 1.0
    return smooth_epoch_values(onehot, epoch_onsets, times, epoch_length=epoch_length,
                               sigma=sigma)
