"""Semi-real nights: real beats and stages, synthesised waveforms (:func:`make_semireal_psg`)."""

from __future__ import annotations

import logging
from typing import Iterable

import numpy as np

from sleepkd.datasets._latent import check_physiology, independent_arousals
from sleepkd.datasets._recording import Recording
from sleepkd.datasets._synthetic import (
    EEG_CHANNEL,
    FS_ECG_RANGE,
    FS_EEG_RANGE,
    check_common,
    check_rate,
    latent_stages_of,
    seed_sequence,
)

logger = logging.getLogger(__name__)

#: Provenance string of every recording made by :func:`make_semireal_psg`.
SEMIREAL_SOURCE = "semi-real: real slpdb beats and stages, synthetic ECG waveform and EEG"

#: slpdb event tokens that include an arousal (``HA``, ``OA``, ``CAA``, ``LA``, ``A``).
_AROUSAL_TOKENS = frozenset({"HA", "OA", "CAA", "LA", "A"})

_ABOUT = (
    "The data is SEMI-REAL: the beat times and the expert sleep stages are real, the "
    "waveforms are synthetic. The ECG waveform is synthesised by sleepkd with each "
    "R-peak exactly on a real beat (rounded to the nearest sample) plus noise and "
    "artefacts; the EEG is synthesised from the real hypnogram by the same generator "
    "as make_synthetic_psg (deliberately imperfect stage information). Unscored "
    "epochs stay unscored and are dropped by make_epochs."
)
_PHYSIOLOGY_ABOUT = {
    "shared": (
        "Physiology 'shared': EEG arousals sit at heart-rate surges detected in the real "
        "RR series, a vagal-tone proxy (HF power of the real RR) scales the EEG slow-wave "
        "amplitude in NREM, and the most irregular REM heart-rate stretches get phasic "
        "EEG bursts; the labels are the real expert labels."
    ),
    "labels": "Physiology 'labels': the EEG follows the real stages and annotated arousals.",
    "independent": ("Physiology 'independent': the EEG follows the real stages, with its "
                    "arousals at random sleep epochs (the labels are the only link)."),
}


def _source_of(recordings: list[Recording]) -> str:
    sources = sorted({r.source for r in recordings})
    if all("slpdb" in s for s in sources):
        return SEMIREAL_SOURCE
    return ("semi-real: real beats and stages (" + "; ".join(sources)
            + "), synthetic ECG waveform and EEG")


def _check_recordings(recordings: Iterable[Recording]) -> list[Recording]:
    if isinstance(recordings, Recording):
        recordings = [recordings]
    try:
        recordings = list(recordings)
    except TypeError:
        raise ValueError(
            f"recordings must be a list of Recording, got {type(recordings).__name__}."
        ) from None
    if not recordings:
        raise ValueError("recordings is empty: pass at least one Recording.")
    for rec in recordings:
        if not isinstance(rec, Recording):
            raise ValueError(f"recordings must hold Recording objects, got "
                             f"{type(rec).__name__}.")
        beats = None if rec.beat_times is None else np.asarray(rec.beat_times, dtype=float)
        if beats is None or beats.ndim != 1 or len(beats) < 2:
            raise ValueError(f"Recording {rec.name!r} has no beat times; semi-real nights "
                             "need real beats (e.g. from load_slpdb).")
        if not np.all(np.isfinite(beats)) or np.any(np.diff(beats) <= 0) or beats[0] < 0:
            raise ValueError(f"Recording {rec.name!r}: beat_times must be finite, >= 0 "
                             "and strictly increasing.")
        if len(rec.stages) == 0 or len(rec.stages) != len(rec.epoch_onsets):
            raise ValueError(f"Recording {rec.name!r}: needs stages and epoch_onsets of "
                             "the same, non-zero length.")
    return recordings


def _arousals(rec: Recording, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Arousals at a random time inside each epoch whose events include one (slpdb)."""
    events = rec.info.get("events") if isinstance(rec.info, dict) else None
    if not events or len(events) != len(rec.stages):
        return np.zeros(0), np.zeros(0)
    hit = np.array([bool(_AROUSAL_TOKENS.intersection(ev)) for ev in events])
    onsets = np.asarray(rec.epoch_onsets, float)[hit]
    onsets = onsets + rng.uniform(0.0, 0.8 * rec.epoch_length, len(onsets))
    return onsets, rng.uniform(3.0, 15.0, len(onsets))


def _merge_annotated(latent, onsets: np.ndarray, durations: np.ndarray,
                     epoch_length: float) -> None:
    """Add slpdb-annotated arousals whose epoch holds no detected heart-rate surge."""
    if len(onsets) == 0:
        return
    surge_epoch = np.floor(latent.arousal_onsets / epoch_length)
    keep = ~np.isin(np.floor(onsets / epoch_length), surge_epoch)
    order_on = np.concatenate([latent.arousal_onsets, onsets[keep]])
    order = np.argsort(order_on, kind="stable")
    latent.arousal_onsets = order_on[order]
    latent.arousal_durations = np.concatenate([latent.arousal_durations,
                                               durations[keep]])[order]
    latent.arousal_intensity = np.concatenate([latent.arousal_intensity,
                                               np.ones(keep.sum())])[order]
    latent.surge_latency = np.concatenate([latent.surge_latency,
                                           np.full(keep.sum(), np.nan)])[order]
    latent.params["n_annotated_without_surge"] = int(keep.sum())


def semireal_recording(
    rec: Recording, *, fs_ecg: float, fs_eeg: float, seed: np.random.SeedSequence,
    source: str = SEMIREAL_SOURCE, physiology: str = "labels",
) -> Recording:
    """One semi-real night: ``rec``'s beats and stages with synthesised waveforms."""
    from sleepkd.datasets._ecg_synth import synthesize_ecg
    from sleepkd.datasets._eeg_synth import synthesize_eeg
    from sleepkd.datasets._latent import latent_from_beats

    # spawn(4)[:3] == spawn(3): the "labels" model keeps its streams.
    seed_ecg, seed_eeg, seed_arousal, seed_latent = seed.spawn(4)
    beats = np.asarray(rec.beat_times, dtype=float)
    onsets = np.asarray(rec.epoch_onsets, dtype=float)
    recorded = rec.info.get("duration", 0.0) if isinstance(rec.info, dict) else 0.0
    # Cover the whole record: every beat (with room for its T wave) and every epoch.
    duration = max(float(recorded or 0.0), beats[-1] + 1.0, onsets[-1] + rec.epoch_length)
    ecg = synthesize_ecg(beats, fs_ecg, duration,
                         random_state=np.random.default_rng(seed_ecg))
    arousal_onsets, arousal_durations = _arousals(rec, np.random.default_rng(seed_arousal))
    latent = None
    if physiology == "shared":
        latent = latent_from_beats(beats, np.asarray(rec.stages), onsets, duration,
                                   epoch_length=rec.epoch_length,
                                   random_state=np.random.default_rng(seed_latent))
        _merge_annotated(latent, arousal_onsets, arousal_durations, rec.epoch_length)
        arousal_onsets = latent.arousal_onsets
        arousal_durations = latent.arousal_durations
    elif physiology == "independent":
        arousal_onsets, arousal_durations = independent_arousals(
            np.asarray(rec.stages), onsets, len(arousal_onsets),
            np.random.default_rng(seed_latent), rec.epoch_length)
    eeg = synthesize_eeg(np.asarray(rec.stages), fs_eeg, duration, epoch_onsets=onsets,
                         epoch_length=rec.epoch_length, arousal_onsets=arousal_onsets,
                         arousal_durations=arousal_durations, latent=latent,
                         random_state=np.random.default_rng(seed_eeg))
    info = dict(rec.info) if isinstance(rec.info, dict) else {}
    info.update({
        "generator": "sleepkd.datasets.make_semireal_psg",
        "physiology": physiology,
        "latent_stages": np.asarray(rec.stages).copy(),
        "latent": None if latent is None else latent.as_info(),
        "original_source": rec.source,
        "r_peak_samples": np.round(beats * fs_ecg).astype(np.int64),
        "ecg_params": ecg.params,
        "eeg_params": eeg.params,
        "ecg_artefacts": ecg.artefacts,
        "ecg_artefact_fraction": float(ecg.artefact_mask.mean()) if len(ecg.signal) else 0.0,
        "eeg_event_counts": {k: int(len(v)) for k, v in eeg.events.items()},
        "arousal_onsets": arousal_onsets,
        "arousal_durations": arousal_durations,
        "has_waveforms": True,
        "waveforms": "synthetic",
    })
    return Recording(
        name=rec.name, subject=rec.subject, ecg=ecg.signal, fs_ecg=fs_ecg,
        eeg=eeg.signal[np.newaxis, :], fs_eeg=fs_eeg,
        eeg_channels=list(rec.eeg_channels[:1]) or [EEG_CHANNEL],
        beat_times=beats.copy(), stages=np.asarray(rec.stages).copy(),
        epoch_onsets=onsets.copy(), epoch_length=rec.epoch_length, source=source,
        info=info,
    )


def make_semireal_psg(
    recordings: list[Recording] | None = None,
    *,
    fs_ecg: float = 200.0,
    fs_eeg: float = 100.0,
    scheme: str = "5class",
    context: int = 0,
    physiology: str = "labels",
    return_recordings: bool = False,
    random_state=None,
):
    """Real beat times and expert hypnograms with synthesised ECG and EEG waveforms.

    For each recording an ECG waveform is synthesised with its R-peaks exactly on the
    real beats (``round(beat_time * fs_ecg)``), and an EEG is synthesised from the real
    stages with the generator of :func:`make_synthetic_psg`. The heart-rate dynamics,
    ectopy and sleep architecture are therefore those of real people; the waveform
    morphology and the EEG are not.

    Parameters
    ----------
    recordings : list of Recording, optional
        Nights with real ``beat_times`` and ``stages``. ``None`` reads the slpdb
        annotations shipped with sleepkd (:func:`~sleepkd.datasets.load_slpdb`;
        14 records of 12 men with sleep apnea). Waveforms they carry are replaced.
    fs_ecg : float, default=200.0
        ECG sampling rate in Hz, in [50, 2000].
    fs_eeg : float, default=100.0
        EEG sampling rate in Hz, in [50, 1000].
    scheme : {"5class", "4class", "3class"}, default="5class"
        Label scheme of ``y``.
    context : int, default=0
        Epochs of signal before and after each epoch (see
        :func:`~sleepkd.datasets.make_epochs`).
    physiology : {"labels", "shared", "independent"}, default="labels"
        What the synthesised EEG takes from the real heart beyond the stages.

        - ``"shared"``: what the real beats allow. Arousal-like heart-rate surges of
          the real RR series (heart rate more than 8 bpm above its 60-s running
          median, rising within 8 s) get an EEG arousal (alpha/beta burst) starting
          0.5-3 s before the rise, sized by the surge; a vagal-tone proxy (log HF
          power of the real RR series, z-scored over the night's NREM) scales the
          slow-wave (delta) amplitude in NREM; in REM, the most irregular stretches of
          the real heart rate get phasic bursts (sawtooth waves, eye movements).
          Annotated slpdb arousals without a detected surge keep a burst at a random
          time of their epoch. The labels stay the real expert labels (no scorer
          model: ``latent_stages`` equals ``y``).
        - ``"labels"``: the EEG follows the real stages and the annotated arousals
          only (the model of earlier versions; same seed, same arrays).
        - ``"independent"``: as ``"labels"`` with the annotated arousals moved to
          random sleep epochs: the labels are the only link to the real heart (a
          control).
    return_recordings : bool, default=False
        Also return the semi-real :class:`~sleepkd.datasets.Recording` objects
        (with ``physiology="shared"`` the latent traces in ``info["latent"]``).
    random_state : int, numpy Generator, RandomState or None, default=None
        Seed of the synthesised waveforms; the same int gives identical arrays.

    Returns
    -------
    data : sklearn.utils.Bunch
        The output of :func:`~sleepkd.datasets.make_epochs` with a ``DESCR`` stating
        that the data is semi-real, plus ``recordings`` when ``return_recordings=True``.
        Unscored epochs (movement time, ``?``) are dropped and counted in ``dropped``.

    Raises
    ------
    ValueError
        If a recording has no beat times or no stages, a sampling rate is out of range,
        or ``scheme`` / ``context`` / ``physiology`` / ``random_state`` is invalid.

    Notes
    -----
    Recordings keep their real name, subject, beat times and stages and get
    ``source = "semi-real: real slpdb beats and stages, synthetic ECG waveform and
    EEG"``. Before the first scored epoch the EEG follows the first epoch's stage.
    Arousals marked in slpdb's event notes (``HA``, ``OA``, ``CAA``, ``LA``, ``A``)
    add an alpha/EMG burst at a random time within their epoch. Beat types are not
    used: every complex has normal morphology.

    Examples
    --------
    >>> from sleepkd.datasets import load_slpdb, make_semireal_psg
    >>> recs = load_slpdb(records="slp01a")
    >>> data = make_semireal_psg(recs, random_state=0)
    >>> data.X_ecg.shape[1], "SEMI-REAL" in data.DESCR
    (6000, True)
    """
    from sleepkd.datasets._epochs import make_epochs

    fs_ecg = check_rate(fs_ecg, "fs_ecg", FS_ECG_RANGE)
    fs_eeg = check_rate(fs_eeg, "fs_eeg", FS_EEG_RANGE)
    check_common(scheme, return_recordings)
    physiology = check_physiology(physiology)
    seeds_root = seed_sequence(random_state)
    if recordings is None:
        from sleepkd.io._slpdb import load_slpdb

        recordings = load_slpdb()
    recordings = _check_recordings(recordings)
    source = _source_of(recordings)
    seeds = seeds_root.spawn(len(recordings))
    out = [semireal_recording(rec, fs_ecg=fs_ecg, fs_eeg=fs_eeg, seed=seed, source=source,
                              physiology=physiology)
           for rec, seed in zip(recordings, seeds)]
    data = make_epochs(out, scheme=scheme, context=context)
    data.latent_stages = latent_stages_of(data, out)
    data.DESCR = (
        f"Semi-real paired EEG + ECG nights from sleepkd.datasets.make_semireal_psg "
        f"({len(out)} recording(s), fs_ecg={fs_ecg:g}, fs_eeg={fs_eeg:g}, "
        f"physiology={physiology!r}, random_state={random_state!r}). {_ABOUT} "
        f"{_PHYSIOLOGY_ABOUT[physiology]}\n\n{data.DESCR}"
    )
    if return_recordings:
        data.recordings = out
    return data
