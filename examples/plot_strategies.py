"""
Distillation strategies compared
================================

The paper's proposed model and its ablations are one parameter of
:class:`~sleepkd.DistilledECGStager`:

- ``"baseline"``: the ECG student trained on the labels only (no EEG);
- ``"sd+cl"``: soft-label distillation from the teacher plus the classification
  loss;
- ``"at+cl"``: attention-transfer pre-training, then the classification loss;
- ``"at+sd+cl"``: attention transfer, then soft labels plus classification (the
  paper's model).

The teacher is trained **once** and shared by all students through
:class:`~sklearn.frozen.FrozenEstimator`.

.. note::
   The data is **synthetic** (:func:`~sleepkd.datasets.make_synthetic_psg`) and
   small, and the networks are briefly trained: with two test subjects the
   differences between strategies are mostly noise. This example shows how to run
   the comparison, not which strategy wins; for that, use subject-wise
   cross-validation over many subjects and seeds (see :doc:`/results`).
"""

# %%
# Data: four subjects to train on, two held out.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.frozen import FrozenEstimator

from sleepkd import DistilledECGStager, ECGStudent, EEGTeacher, HeartRateTransformer
from sleepkd.datasets import add_context, make_synthetic_psg
from sleepkd.metrics import staging_report

data = make_synthetic_psg(n_subjects=6, hours=0.75, fs_ecg=50.0, fs_eeg=50.0,
                          scheme="4class", random_state=2)
test = np.isin(data.groups, ["synth04", "synth05"])
train = ~test

# %%
# One teacher for all students
# ----------------------------
# Fitted on the EEG of the training subjects, then frozen: the stager does not
# refit a :class:`~sklearn.frozen.FrozenEstimator`, even after ``clone``.
fast = dict(max_epochs=8, lr=3e-3, batch_size=32, patience=None, verbose=0,
            random_state=0)
teacher = EEGTeacher(module="compact", **fast)
teacher.fit(data.X_eeg[train], data.y[train], groups=data.groups[train])
teacher_report = staging_report(data.y[test], teacher.predict(data.X_eeg[test]))
print(f"EEG teacher on the test subjects: kappa {teacher_report.kappa:.2f}")

# %%
# A heart-rate student
# --------------------
# Sleep stages show in the ECG mainly through the heart rate over several minutes,
# so this student does not read the raw ECG: a
# :class:`~sleepkd.HeartRateTransformer` turns each 30-s ECG epoch into a 4-Hz
# heart-rate series, :func:`~sleepkd.datasets.add_context` stacks the 4 epochs
# before and after each epoch (4.5 minutes in all), and a small
# :class:`~sleepkd.networks.ContextNet` stages the centre epoch. Attention transfer
# still works between this student and the U-Time teacher: the maps of their
# encoder levels are matched by name, after bringing them to the same length.
heart_rate = HeartRateTransformer(fs=data.fs_ecg).fit_transform(data.X_ecg)
X_hr = add_context((heart_rate - 65.0) / 10.0, data.records, 4, pad="edge",
                   onsets=data.onsets).astype(np.float32)
print(f"student input: {X_hr.shape} (9 epochs x 120 heart-rate samples per row)")

# %%
# Four students
# -------------
# The same network and seed for every strategy; only the training differs.
student = ECGStudent(module="context",
                     module_params={"n_context": 4, "widths": (8, 16, 16, 16),
                                    "sequence_width": 16},
                     **{**fast, "max_epochs": 10, "batch_size": 16})
rows = {"EEG teacher (EEG input)": teacher_report}
for strategy in ("baseline", "sd+cl", "at+cl", "at+sd+cl"):
    stager = DistilledECGStager(teacher=FrozenEstimator(teacher), student=student,
                                strategy=strategy, alpha=0.5, temperature=1.0,
                                pretrain_epochs=3, random_state=0)
    stager.fit(X_hr[train], data.y[train], X_eeg=data.X_eeg[train],
               groups=data.groups[train])
    rows[f"ECG {strategy}"] = staging_report(data.y[test], stager.predict(X_hr[test]))

table = pd.DataFrame({name: {"kappa": r.kappa, "weighted F1": r.f1_weighted,
                             "accuracy": r.accuracy} for name, r in rows.items()}).T
print(table.round(3))

# %%
# The attention-transfer strategies record which feature maps were matched:
# the four encoder levels both networks name alike.
print(stager.at_layers_)

# %%
# Plot
# ----
ax = table[["kappa", "weighted F1"]].plot.barh(figsize=(7, 3.2))
ax.invert_yaxis()
ax.set(xlabel="score on 2 held-out synthetic subjects",
       title="Synthetic data, small networks: strategies compared")
plt.tight_layout()
plt.show()

# %%
# Options worth varying in a real comparison: ``alpha`` and ``temperature`` of the
# soft labels, ``at_distance`` (``"l1"``/``"l2"``), ``at_normalize``
# (``"sample"``/``"batch"``, the latter as in the paper's code) and
# ``kl_reduction`` (``"mean"`` reproduces the paper's code). See :doc:`/method`.
