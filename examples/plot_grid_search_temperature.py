"""
Tuning the temperature and alpha with GridSearchCV
==================================================

The soft-label term of :class:`~sleepkd.DistilledECGStager`,
``alpha * T**2 * KL(teacher || student) + (1 - alpha) * CE``, has two knobs: the
share ``alpha`` of the distillation term and the softmax temperature ``T``. The paper
uses ``alpha = 0.5, T = 1`` (an earlier trial ``alpha = 0.2, T = 4``). Here both are
chosen by :class:`~sklearn.model_selection.GridSearchCV`, with folds built on the
**subjects** (:class:`~sklearn.model_selection.GroupKFold`) and the EEG routed to the
stager by scikit-learn's metadata routing.

.. note::
   The data is **synthetic** (:func:`~sleepkd.datasets.make_synthetic_psg`) and
   tiny, and the networks are small and trained for a few epochs, so that the search
   runs in well under a minute on one CPU thread. The scores differ little and
   mostly by chance: the example shows the protocol, not the best setting.
"""

# %%
# Data and routing
# ----------------
# With routing on, ``GridSearchCV.fit(X, y, X_eeg=..., groups=...)`` slices the
# per-epoch ``X_eeg`` and ``groups`` like ``X`` and ``y``, hands ``groups`` to the
# splitter and both to the stager (which requests them in ``fit`` by default).
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import sklearn
from sklearn.model_selection import GridSearchCV, GroupKFold

from sleepkd import DistilledECGStager, ECGStudent, EEGTeacher, HeartRateTransformer
from sleepkd.datasets import add_context, make_synthetic_psg, standardize_per_record

sklearn.set_config(enable_metadata_routing=True)

data = make_synthetic_psg(n_subjects=6, hours=0.5, fs_ecg=50.0, fs_eeg=50.0,
                          scheme="3class", random_state=3)
print(f"{len(data.y)} synthetic epochs of {len(np.unique(data.groups))} subjects")

# %%
# The student reads the heart rate with context, as in :doc:`plot_quickstart`:
# each 30-s ECG epoch becomes a 4-Hz heart-rate series, standardised per night,
# and the 4 epochs on either side are stacked next to it. Every step works within
# one night, so computing it before the search leaks nothing across subjects.
hr = HeartRateTransformer(fs=data.fs_ecg, fs_out=4.0, fill=60.0).fit_transform(data.X_ecg)
X_hr = add_context(standardize_per_record(hr, data.records), data.records, 4,
                   onsets=data.onsets).astype(np.float32)
print("student input:", X_hr.shape, "| teacher input:", data.X_eeg.shape)

# %%
# The stager
# ----------
# A small compact U-Time reads the EEG (teacher), a small
# :class:`~sleepkd.networks.ContextNet` the heart rate (student), a few epochs
# each. ``"sd+cl"`` (soft labels plus the classification loss) is the strategy
# these two parameters act on. Every grid point refits the teacher on the training
# subjects of its fold: a teacher fitted once on all subjects and frozen would have
# seen the test subjects of every fold. With four training subjects per fold,
# ``validation_fraction=None`` trains on all of them and keeps the last training
# epoch (no checkpoint selection, and so no check of the teacher on held-out
# subjects); with more subjects keep the default validation split.
fast = dict(lr=3e-3, batch_size=32, patience=None, verbose=0)
stager = DistilledECGStager(
    teacher=EEGTeacher(module="compact", sfreq=50.0, max_epochs=4,
                       module_params={"widths": (4, 4, 8, 8, 8), "bottleneck_width": 8},
                       **fast),
    student=ECGStudent(module="context", sfreq=4.0, max_epochs=5,
                       module_params={"n_context": 4, "widths": (8, 8, 16, 16)}, **fast),
    strategy="sd+cl", validation_fraction=None, random_state=0,
)

# %%
# The search
# ----------
# Two temperatures x two values of ``alpha``, three subject-wise folds, scored by
# the weighted F1 (the paper's selection metric). The best setting is refitted on
# all subjects.
param_grid = {"temperature": [1.0, 4.0], "alpha": [0.2, 0.8]}
search = GridSearchCV(stager, param_grid, cv=GroupKFold(n_splits=3),
                      scoring="f1_weighted")
search.fit(X_hr, data.y, X_eeg=data.X_eeg, groups=data.groups)

results = pd.DataFrame(search.cv_results_)
table = results.pivot_table(index="param_temperature", columns="param_alpha",
                            values="mean_test_score")
print(table.round(3))
print("best:", search.best_params_, f"weighted F1 {search.best_score_:.3f}")

# %%
# The fold-to-fold spread is as large as the differences between settings: with so
# few subjects the choice is noise. On real data, compare the settings over many
# subjects and seeds with paired statistics
# (:func:`~sleepkd.metrics.summarize_gains`).
spread = results[["param_temperature", "param_alpha", "mean_test_score",
                  "std_test_score"]]
print(spread.round(3).to_string(index=False))

# %%
# Plot
# ----
fig, ax = plt.subplots(figsize=(4.5, 3.2))
image = ax.imshow(table.to_numpy(), cmap="viridis")
ax.set(xticks=range(table.shape[1]), xticklabels=table.columns,
       yticks=range(table.shape[0]), yticklabels=table.index,
       xlabel="alpha", ylabel="temperature T",
       title="Synthetic data: mean weighted F1 (3 folds)")
for (i, j), value in np.ndenumerate(table.to_numpy()):
    ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="w")
fig.colorbar(image, ax=ax)
plt.tight_layout()
plt.show()

# %%
# Routing is a global setting; switch it off again when done.
sklearn.set_config(enable_metadata_routing=False)
