"""Tiny paired nights for fast tests of the night-level estimators (not physiology).

Stages come in long runs, so the night's context carries information: each epoch's
ECG row holds a weak cue of its stage, the EEG row a clear one. A model that reads
the night pools the weak cues of a run; a model that reads one epoch cannot.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

LABELS = np.array(["W", "N2", "R"])


def make_toy_nights(n_subjects=6, nights_per_subject=1, n_epochs=(60, 90), n_times=24,
                    ecg_snr=0.35, unscored_every=0, seed=0):
    """Return ``X_ecg (n, n_times), X_eeg (n, 1, n_times), y, nights, groups``."""
    rng = np.random.default_rng(seed)
    X_ecg, X_eeg, y, nights, groups = [], [], [], [], []
    t = np.arange(n_times) / n_times
    for s in range(n_subjects):
        for k in range(nights_per_subject):
            length = int(rng.integers(*n_epochs))
            runs = rng.integers(0, 3, size=length // 8 + 1)
            lab = np.repeat(runs, 8)[:length]
            ecg = rng.normal(size=(length, n_times)) + ecg_snr * (lab[:, None] - 1.0)
            freq = 2.0 + 3.0 * lab
            eeg = np.sin(2 * np.pi * freq[:, None] * t) + 0.5 * rng.normal(size=(length, n_times))
            labels = LABELS[lab].astype(object)
            if unscored_every:
                labels[::unscored_every] = "?"
            X_ecg.append(ecg)
            X_eeg.append(eeg[:, None, :])
            y.append(labels)
            nights += [f"s{s}n{k}"] * length
            groups += [f"s{s}"] * length
    return (np.concatenate(X_ecg).astype(np.float32), np.concatenate(X_eeg).astype(np.float32),
            np.concatenate(y).astype(str), np.array(nights), np.array(groups))


class TinyNightNet(nn.Module):
    """Per-epoch linear embedding, one masked temporal convolution, per-epoch head."""

    sequence = True
    supports_attention = False
    feature_names = ("embedding",)

    def __init__(self, n_chans, n_outputs, n_times, sfreq=None, width=16):
        super().__init__()
        self.embed = nn.Linear(n_chans * n_times, width)
        self.conv = nn.Conv1d(width, width, kernel_size=9, padding=4)
        self.head = nn.Linear(width, n_outputs)

    def forward(self, x, mask=None, return_features=False):
        batch, length = x.shape[:2]
        if mask is None:
            mask = torch.ones(batch, length, dtype=torch.bool, device=x.device)
        m = mask[..., None].to(x.dtype)
        z = torch.relu(self.embed(x.reshape(batch, length, -1) * m)) * m
        z = torch.relu(self.conv(z.transpose(1, 2))).transpose(1, 2) * m
        logits = self.head(z)
        return (logits, {"embedding": z}) if return_features else logits
