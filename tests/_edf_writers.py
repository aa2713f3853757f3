"""Writers of small EDF files and NSRR / Profusion XML annotations for the tests."""

from __future__ import annotations

import numpy as np


def write_edf_signals(path, channels, annotations=()):
    """An EDF(+) file of ``channels``: ``(label, values, fs, unit)`` each.

    Every channel must cover the same whole number of seconds (one data record per
    second, as edfio writes them). ``annotations`` are ``(onset, duration, text)``.
    """
    import edfio

    signals = [edfio.EdfSignal(np.asarray(values, dtype=np.float64), sampling_frequency=fs,
                               label=label, physical_dimension=unit)
               for label, values, fs, unit in channels]
    edfio.Edf(signals, annotations=[edfio.EdfAnnotation(*a) for a in annotations]).write(path)


def nsrr_xml(events, epoch_length=30):
    """NSRR XML text; ``events`` are (type, concept, start, duration)."""
    rows = "".join(
        f"<ScoredEvent><EventType>{kind}</EventType><EventConcept>{concept}"
        f"</EventConcept><Start>{start}</Start><Duration>{duration}</Duration>"
        "<SignalLocation>ABDO RES</SignalLocation></ScoredEvent>\n"
        for kind, concept, start, duration in events)
    return ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<PSGAnnotation>'
            f"<SoftwareVersion>Compumedics</SoftwareVersion><EpochLength>{epoch_length}"
            "</EpochLength><ScoredEvents>\n<ScoredEvent><EventType/><EventConcept>"
            "Recording Start Time</EventConcept><Start>0</Start><Duration>300.0"
            "</Duration><ClockTime>00.00.00 23.00.00</ClockTime></ScoredEvent>\n"
            f"{rows}</ScoredEvents></PSGAnnotation>\n")


def profusion_xml(codes, epoch_length=30):
    """Compumedics Profusion XML text with one stage code per epoch."""
    stages = "".join(f"<SleepStage>{c}</SleepStage>" for c in codes)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<CMPStudyConfig>'
            f"<EpochLength>{epoch_length}</EpochLength><StepChannels/><ScoredEvents>"
            "<ScoredEvent><Name>Hypopnea</Name><Start>95.2</Start><Duration>14.1"
            "</Duration><Input>ABDO RES</Input></ScoredEvent><ScoredEvent><Name>"
            "SpO2 desaturation</Name><Start>101</Start><Duration>12</Duration>"
            f"</ScoredEvent></ScoredEvents><SleepStages>{stages}</SleepStages>"
            "</CMPStudyConfig>\n")


#: AASM label -> NSRR stage concept.
NSRR_CONCEPTS = {"W": "Wake|0", "N1": "Stage 1 sleep|1", "N2": "Stage 2 sleep|2",
                 "N3": "Stage 3 sleep|3", "R": "REM sleep|5", "?": "Unscored|9"}


def stages_to_nsrr_events(stages, epoch_length=30.0):
    """One NSRR stage event per run of equal labels (as NSRR writes them)."""
    events, start = [], 0
    stages = list(stages)
    for i in range(1, len(stages) + 1):
        if i == len(stages) or stages[i] != stages[start]:
            events.append(("Stages|Stages", NSRR_CONCEPTS[stages[start]],
                           start * epoch_length, (i - start) * epoch_length))
            start = i
    return events
