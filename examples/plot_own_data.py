"""
Bringing your own recordings (EDF, WFDB, NumPy)
================================================

To stage your own nights, or to train on them, you need per-epoch arrays (see
:doc:`/conventions`). This example goes from files to arrays:

1. read the ECG of a recording with :func:`~sleepkd.datasets.read_ecg`;
2. read the expert stages and map them with :func:`~sleepkd.to_scheme`;
3. wrap both in a :class:`~sleepkd.datasets.Recording` and cut it into epochs with
   :func:`~sleepkd.datasets.make_epochs`;
4. compare with the real beat and stage annotations of slpdb shipped with sleepkd
   (:func:`~sleepkd.datasets.load_slpdb`).

.. note::
   Steps 1-3 use a **synthetic** night written to files as a stand-in for your own
   recording (no real ECG waveform ships with sleepkd). Step 4 uses **real**
   annotations (PhysioNet slpdb, ODC-By 1.0; see :doc:`/data` for the citation).
"""

# %%
# A stand-in for your files
# -------------------------
# A 1-hour synthetic night written as a WFDB record (``night01.hea`` +
# ``night01.dat``, ECG in mV at 200 Hz) and a scoring file with one R&K label per
# 30-s epoch, as many scoring programs export. Two epochs are marked as movement
# time (``MT``).
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import wfdb

from sleepkd import HeartRateTransformer, to_scheme
from sleepkd.datasets import (Recording, load_slpdb, make_epochs,
                              make_synthetic_psg, read_ecg)

folder = Path(tempfile.mkdtemp())
night = make_synthetic_psg(n_subjects=1, hours=1.0, return_recordings=True,
                           random_state=7).recordings[0]
wfdb.wrsamp("night01", fs=night.fs_ecg, units=["mV"], sig_name=["ECG"],
            p_signal=night.ecg[:, None], fmt=["16"], write_dir=str(folder))
rk = {"W": "W", "N1": "1", "N2": "2", "N3": "3", "R": "R"}
scoring = [rk[s] for s in night.stages]
scoring[20:22] = ["MT", "MT"]
(folder / "night01_stages.txt").write_text("\n".join(scoring))

# %%
# 1. Read the ECG
# ---------------
# :func:`~sleepkd.datasets.read_ecg` picks the first channel named ECG/EKG (or the
# one you name), converts voltages to millivolts and returns the sampling rate
# stored in the file. The same call reads EDF/BDF (``read_ecg("night.edf",
# channel="ECG")``, needs ``pip install "sleepkd[edf]"``), CSV and NumPy files.
ecg, fs, info = read_ecg(folder / "night01.hea")
print(f"{info['n_samples']} samples at {fs:g} Hz, channel {info['channel']!r}, "
      f"units {info['units']}, {info['duration'] / 3600:.2f} h")

# %%
# 2. Read and map the stages
# --------------------------
# :func:`~sleepkd.to_scheme` maps R&K, AASM, 4- and 3-class labels; movement time
# becomes the unscored marker ``"?"``.
labels = (folder / "night01_stages.txt").read_text().split()
stages = to_scheme(labels, "5class")
values, counts = np.unique(stages, return_counts=True)
print(dict(zip(values.tolist(), counts.tolist())))

# %%
# 3. One recording, cut into epochs
# ---------------------------------
# The stages start with the recording here; if your scoring starts later, give the
# onsets of the scored epochs in seconds. ``make_epochs`` resamples the ECG (here to
# 100 Hz), maps the stages to the chosen scheme and leaves out the unscored epochs,
# counting them in ``dropped``.
recording = Recording(
    name="night01", subject="patient01", ecg=ecg, fs_ecg=fs,
    eeg=None, fs_eeg=None, eeg_channels=[], beat_times=None,
    stages=stages, epoch_onsets=np.arange(len(stages)) * 30.0,
    source="synthetic (stand-in for a user's recording)",
)
data = make_epochs([recording], scheme="4class", signals="ecg", fs_ecg=100.0)
print(f"X_ecg {data.X_ecg.shape} {data.X_ecg.dtype}, y {data.y.shape}, "
      f"dropped: {data.dropped['unscored']} unscored")

# %%
# ``data.X_ecg`` can now go to a fitted stager (``stager.predict(data.X_ecg)``, if it
# was trained at 100 Hz) or, with the EEG of the same nights in a second signal,
# to training. Signal transformers work on the same rows, e.g. the heart rate of
# every epoch on a 4-Hz grid:
heart_rate = HeartRateTransformer(fs=100.0).fit_transform(data.X_ecg)
print(f"heart rate rows: {heart_rate.shape}")
for stage in ("W", "L", "D", "R"):
    print(f"  mean heart rate in {stage}: {heart_rate[data.y == stage].mean():.1f} bpm")

# %%
# 4. Real annotations: slpdb
# --------------------------
# sleepkd ships the beat and stage annotations (not the waveforms) of 14 records of
# the MIT-BIH Polysomnographic Database. Beat times give the real heart rate of each
# night; here record slp04 with its expert stages.
real = load_slpdb(records="slp04")[0]
print(real)
rr = np.diff(real.beat_times)
rate = 60.0 / rr
plausible = (rate > 30) & (rate < 200)
print(f"{np.count_nonzero(~plausible)} of {rate.size} RR intervals outside 30-200 bpm "
      "left out of the plot")

order = ["N3", "N2", "N1", "R", "W"]
scored = real.stages != "?"
fig, (ax_hr, ax_st) = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True,
                                   constrained_layout=True)
ax_hr.plot(real.beat_times[1:][plausible] / 3600, rate[plausible], lw=0.3)
ax_hr.set(ylabel="heart rate (bpm)", title="slpdb record slp04 (real annotations)")
ax_st.step(real.epoch_onsets[scored] / 3600,
           [order.index(s) for s in real.stages[scored]], where="post")
ax_st.set(yticks=range(len(order)), yticklabels=order, xlabel="time (h)",
          ylabel="expert stage")
plt.show()

# %%
# slpdb data: Ichimaru Y, Moody GB (1999), *Psychiatry and Clinical Neurosciences*
# 53:175-177; Goldberger AL et al. (2000), *Circulation* 101(23):e215-e220.
# Licence ODC-By 1.0.
