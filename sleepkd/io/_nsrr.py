"""Reader for NSRR cohorts (SHHS, MESA, CFS, MrOS, ...): an EDF plus XML annotations.

Two XML dialects are in use:

- the **NSRR XML** (``*-nsrr.xml``): ``<PSGAnnotation><ScoredEvents><ScoredEvent>``
  elements; sleep stages have ``<EventType>Stages|Stages</EventType>``, an
  ``<EventConcept>`` such as ``Stage 2 sleep|2`` and ``<Start>`` / ``<Duration>`` in
  seconds (one event per run of equal epochs);
- the **Compumedics Profusion XML** (``*-profusion.xml``): ``<CMPStudyConfig>`` with
  ``<EpochLength>`` and ``<SleepStages>``, one ``<SleepStage>`` code per epoch from the
  start of the EDF.

Both use the Compumedics stage codes (:data:`PROFUSION_STAGES`).
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import numpy as np

from sleepkd.datasets._recording import EPOCH_SECONDS, Recording
from sleepkd.io import _common
from sleepkd.stages import UNSCORED

logger = logging.getLogger(__name__)

#: Compumedics stage codes (NSRR and Profusion XML) -> AASM label. 4 is R&K stage 4
#: (N3); 6 is movement time, 7 / 8 artefact or technician codes found in some
#: exports, 9 unscored: all four are :data:`~sleepkd.stages.UNSCORED`.
PROFUSION_STAGES = {
    "0": "W", "1": "N1", "2": "N2", "3": "N3", "4": "N3", "5": "R",
    "6": UNSCORED, "7": UNSCORED, "8": UNSCORED, "9": UNSCORED,
}

#: NSRR ``EventConcept`` names (without the ``|code``) -> Compumedics code, for files
#: whose concepts carry no code.
_CONCEPT_NAMES = {
    "wake": "0", "stage 1 sleep": "1", "stage 2 sleep": "2", "stage 3 sleep": "3",
    "stage 4 sleep": "4", "rem sleep": "5", "movement": "6", "movement time": "6",
    "unscored": "9", "unsure": "9", "artifact": "9", "artefact": "9",
}


def load_nsrr(
    edf: str | os.PathLike,
    xml: str | os.PathLike,
    *,
    ecg_channel: str | Sequence[str] | None = None,
    eeg_channel: str | Sequence[str] | None = None,
    name: str | None = None,
    subject: str | None = None,
) -> Recording:
    """Read one night of an NSRR cohort: the EDF signals and the XML sleep stages.

    Works for the cohorts of the National Sleep Research Resource (SHHS, MESA, CFS,
    MrOS, CHAT, ...), with either annotation file they ship: the NSRR XML
    (``*-nsrr.xml``, root ``<PSGAnnotation>``) or the Compumedics Profusion XML
    (``*-profusion.xml``, root ``<CMPStudyConfig>``).

    Stage codes (both dialects):

    ==== ============ =========================================================
    code AASM label   meaning
    ==== ============ =========================================================
    0    ``W``        wake
    1    ``N1``       stage 1
    2    ``N2``       stage 2
    3    ``N3``       stage 3
    4    ``N3``       R&K stage 4 (older SHHS / MrOS scoring)
    5    ``R``        REM
    6-9  ``"?"``      movement (6), artefact / technician codes (7, 8), unscored
                      (9): :data:`~sleepkd.stages.UNSCORED`, counted in ``info``
    ==== ============ =========================================================

    Any other code is an error. In the NSRR XML the code is the part after ``|`` of
    the ``EventConcept`` (``"Stage 2 sleep|2"``); without it the name is used.

    Parameters
    ----------
    edf : str or path-like
        The EDF file of the night.
    xml : str or path-like
        Its annotation file, NSRR or Profusion XML.
    ecg_channel, eeg_channel : str or list of str, optional
        Channel to read as the ECG (stored in mV) / EEG (µV). Matched exactly, then
        ignoring case and spaces, then by alias ("EKG" = "ECG"; "EEG C4-M1" =
        "C4-M1" = "C4-A1"); a list is tried in order. ``None`` looks for the usual
        names (ECG: ``ECG``, ``EKG``, ``ECG1``, ``ECG L``, any name with ECG/EKG;
        EEG: ``C4-A1``/``C4-M1``, ``C3-A2``/``C3-M2``, ``EEG`` (SHHS: C4-A1),
        ``EEG1``, any name starting with EEG) and leaves the signal ``None`` when
        there is none. Referential channels (MrOS and CFS store ``C4`` and ``M1``
        separately) are not re-referenced: name one, e.g. ``eeg_channel="C4"``.
    name : str, optional
        Record name; default: the EDF file name without extension.
    subject : str, optional
        Subject identifier (the CV group); default: ``name``. Give visits of one
        person (SHHS1 and SHHS2) the same subject.

    Returns
    -------
    recording : Recording
        ``stages`` per epoch (``epoch_length`` from the XML, 30 s by default) from the
        start of the EDF; ``ecg`` / ``eeg`` at their own sampling rates;
        ``beat_times=None``; ``source="real (NSRR EDF + XML)"``; ``info`` with
        ``xml_format`` (``"nsrr"`` or ``"profusion"``), ``stage_codes`` (the code of
        each epoch, ``"gap"`` where no event covers it), ``n_unscored``,
        ``unscored_codes`` (count per code), ``n_gap_epochs``, ``n_trimmed_epochs``
        (unscored epochs past the end of the signal, dropped), ``channels`` (name ->
        Hz of every signal in the EDF), ``ecg_channel``, ``eeg_channel``, ``units``,
        ``duration`` and ``files``.

    Raises
    ------
    ImportError
        If MNE is missing (``pip install "sleepkd[edf]"``).
    FileNotFoundError
        If a file does not exist.
    ValueError
        With the file named: a requested channel missing (the message lists the
        channels), malformed or unknown XML, unknown stage codes, stages longer than
        the signal, a truncated or corrupt EDF.

    Examples
    --------
    >>> from sleepkd.io import load_nsrr
    >>> rec = load_nsrr("shhs1-200001.edf",
    ...                 "shhs1-200001-nsrr.xml")  # doctest: +SKIP
    >>> rec.info["ecg_channel"], rec.fs_ecg, rec.eeg_channels  # doctest: +SKIP
    ('ECG', 125.0, ['EEG'])
    """
    mne = _common.import_mne()
    edf = _common.as_path(edf, "EDF file")
    xml = _common.as_path(xml, "XML annotation file")
    header = _common.read_edf_header(edf)
    fmt, epoch_length, events = _read_xml(xml)
    if fmt == "profusion":
        codes = [code for _, _, code in events]
        onsets = np.arange(len(codes)) * epoch_length
        durations = np.full(len(codes), epoch_length)
        origin = 0.0
    else:
        onsets = np.array([e[0] for e in events], dtype=np.float64)
        durations = np.array([e[1] for e in events], dtype=np.float64)
        codes = [e[2] for e in events]
        origin = 0.0  # NSRR XML times count from the start of the EDF
    unknown = sorted({c for c in codes if c not in PROFUSION_STAGES})
    if unknown:
        raise ValueError(f"Unknown sleep-stage code(s) {unknown} in {xml}; known "
                         f"codes: {sorted(PROFUSION_STAGES)} (see load_nsrr).")
    stages = [PROFUSION_STAGES[c] for c in codes]
    grid = _common.intervals_to_epochs(
        onsets, durations, stages, codes, epoch_length=epoch_length,
        signal_duration=header.duration, file=xml, signal_file=edf, origin=origin)
    signals = _common.read_signals(mne, edf, header, ecg_channel, eeg_channel)
    unscored = _common.unscored_counts(grid["stages"], grid["raw"])
    name = edf.stem if name is None else str(name)
    info = {
        "xml_format": fmt,
        "stage_codes": grid["raw"].astype(str),
        "n_unscored": int(sum(unscored.values())),
        "unscored_codes": unscored,
        "n_gap_epochs": grid["n_gap_epochs"],
        "n_trimmed_epochs": grid["n_trimmed_epochs"],
        "channels": {k: v for k, v in header.fs.items() if v > 0},
        "ecg_channel": signals["ecg_channel"],
        "eeg_channel": signals["eeg_channel"],
        "units": signals["units"],
        "duration": header.duration,
        "files": [str(edf), str(xml)],
    }
    logger.info("Read %s: %d epochs (%d unscored), ECG %s, EEG %s.", edf,
                len(grid["stages"]), info["n_unscored"], signals["ecg_channel"],
                signals["eeg_channel"])
    return Recording(
        name=name, subject=name if subject is None else str(subject),
        ecg=signals["ecg"], fs_ecg=signals["fs_ecg"],
        eeg=signals["eeg"], fs_eeg=signals["fs_eeg"],
        eeg_channels=[] if signals["eeg_channel"] is None else [signals["eeg_channel"]],
        beat_times=None, stages=grid["stages"], epoch_onsets=grid["epoch_onsets"],
        epoch_length=epoch_length, source="real (NSRR EDF + XML)", info=info,
    )


# --------------------------------------------------------------------------- XML
def _read_xml(path: Path) -> tuple[str, float, list[tuple[float, float, str]]]:
    """``(format, epoch length, [(onset, duration, code), ...])`` of an XML file."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"Malformed XML in {path}: {exc}.") from exc
    tag = _local(root.tag)
    epoch_length = _epoch_length(root, path)
    if tag == "CMPStudyConfig":
        stages = root.find("SleepStages")
        if stages is None:
            raise ValueError(f"Profusion XML {path} has no <SleepStages> element.")
        codes = [(s.text or "").strip() for s in stages.findall("SleepStage")]
        if not codes:
            raise ValueError(f"Profusion XML {path} holds no <SleepStage>.")
        return "profusion", epoch_length, [(np.nan, np.nan, c) for c in codes]
    if tag == "PSGAnnotation":
        events = []
        for i, event in enumerate(root.iter("ScoredEvent")):
            kind = (event.findtext("EventType") or "").strip()
            if kind.split("|")[0].strip().lower() != "stages":
                continue
            concept = (event.findtext("EventConcept") or "").strip()
            code = _concept_code(concept)
            try:
                onset = float(event.findtext("Start"))
                duration = float(event.findtext("Duration"))
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"Stage event {i} ({concept!r}) in {path} has no valid <Start> / "
                    f"<Duration> in seconds.") from exc
            events.append((onset, duration, code))
        if not events:
            raise ValueError(f"NSRR XML {path} holds no sleep-stage events "
                             "(<EventType>Stages|Stages</EventType>).")
        return "nsrr", epoch_length, events
    raise ValueError(
        f"{path} is neither an NSRR XML (root <PSGAnnotation>) nor a Compumedics "
        f"Profusion XML (root <CMPStudyConfig>); its root is <{tag}>.")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # drop an XML namespace


def _epoch_length(root, path: Path) -> float:
    text = root.findtext("EpochLength")
    if text is None or not text.strip():
        return EPOCH_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"<EpochLength> of {path} must be a positive number of "
                         f"seconds, got {text!r}.")
    return value


def _concept_code(concept: str) -> str:
    """``"Stage 2 sleep|2"`` -> ``"2"``; a concept without code by its name."""
    if "|" in concept:
        return concept.rsplit("|", 1)[1].strip()
    key = re.sub(r"\s+", " ", concept.strip().lower())
    return _CONCEPT_NAMES.get(key, concept)
