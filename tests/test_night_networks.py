"""Tests of the whole-night heart-rate networks and the instantaneous heart rate.

Covers :class:`sleepkd.networks._heart_rate_tcn.HeartRateTCN`,
:class:`sleepkd.networks._feature_sequence.FeatureSequenceNet` and
:func:`sleepkd.signal._ihr.instantaneous_heart_rate`.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from sleepkd.networks._feature_sequence import FeatureSequenceNet
from sleepkd.networks._heart_rate_tcn import HeartRateTCN
from sleepkd.signal._ihr import instantaneous_heart_rate

TINY_TCN = dict(widths=(4, 8), pools=(2, 3), kernel_size=5, hidden=8, dilations=(1, 2, 4),
                dropout=0.0)
TINY_FSEQ = dict(embedding_dim=8, hidden=6, dropout=0.0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def make(kind: str, n_chans: int = 1, n_outputs: int = 4):
    torch.manual_seed(0)
    if kind == "tcn":
        return HeartRateTCN(n_chans, n_outputs, 12, 0.4, **TINY_TCN).double()
    return FeatureSequenceNet(n_chans, n_outputs, 5, None, **TINY_FSEQ).double()


def padded_batch(lengths, n_epochs, n_chans, n_times, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), n_epochs, n_chans, n_times, generator=gen,
                    dtype=torch.float64)
    mask = torch.arange(n_epochs) < torch.tensor(lengths).unsqueeze(1)
    return x, mask


KINDS = ["tcn", "fseq"]
N_TIMES = {"tcn": 12, "fseq": 5}


# ---------------------------------------------------------------------------- networks
@pytest.mark.parametrize("kind", KINDS)
def test_shapes_and_features(kind):
    net = make(kind, n_chans=2, n_outputs=3).eval()
    x, mask = padded_batch([30, 17], 30, 2, N_TIMES[kind])
    logits = net(x, mask)
    assert logits.shape == (2, 30, 3)
    logits2, feats = net(x, mask, return_features=True)
    assert tuple(feats) == net.feature_names == ("embedding",)
    assert feats["embedding"].shape[:2] == (2, 30)
    torch.testing.assert_close(logits, logits2)
    assert torch.all(logits[1, 17:] == 0)
    assert net.sequence is True and net.supports_attention is False
    assert net(x).shape == (2, 30, 3)  # mask=None: all real


@pytest.mark.parametrize("kind", KINDS)
def test_padding_invariance(kind):
    net = make(kind).eval()
    x, mask = padded_batch([25, 40, 9], 40, 1, N_TIMES[kind])
    with torch.no_grad():
        batched = net(x, mask)
        x_changed = x.clone()
        x_changed[~mask] = float("nan")  # even NaN padding must not leak
        changed = net(x_changed, mask)
        for i, n in enumerate([25, 40, 9]):
            alone = net(x[i:i + 1, :n])
            torch.testing.assert_close(batched[i:i + 1, :n], alone)
            # more padding than needed
            extra = torch.cat([x[i:i + 1, :n], torch.randn(1, 13, *x.shape[2:],
                                                            dtype=x.dtype)], dim=1)
            extra_mask = torch.arange(n + 13)[None] < n
            torch.testing.assert_close(net(extra, extra_mask)[:, :n], alone)
    torch.testing.assert_close(batched, changed)


@pytest.mark.parametrize("kind", KINDS)
def test_masked_loss_gradients_ignore_padding(kind):
    x, mask = padded_batch([20, 11], 20, 1, N_TIMES[kind])
    y = torch.randint(0, 4, (2, 20), generator=torch.Generator().manual_seed(1))

    def grads(inputs):
        net = make(kind).train()  # dropout 0: deterministic
        logits = net(inputs, mask)
        loss = torch.nn.functional.cross_entropy(logits[mask], y[mask])
        loss.backward()
        return [p.grad.clone() for p in net.parameters()]

    x2 = x.clone()
    x2[~mask] = 1e3 * torch.randn(int((~mask).sum()), 1, N_TIMES[kind], dtype=x.dtype)
    for g1, g2 in zip(grads(x), grads(x2)):
        torch.testing.assert_close(g1, g2)


def test_tcn_argument_errors():
    with pytest.raises(ValueError, match="multiple of prod"):
        HeartRateTCN(1, 4, 50, 2.0, pools=(2, 2, 3))
    with pytest.raises(ValueError, match="odd"):
        HeartRateTCN(1, 4, 60, 2.0, kernel_size=4)
    net = HeartRateTCN(1, 4, 60, 2.0)
    with pytest.raises(ValueError, match="n_times=60"):
        net(torch.zeros(1, 3, 1, 50))
    with pytest.raises(ValueError, match="shape"):
        net(torch.zeros(3, 1, 60))
    with pytest.raises(ValueError, match="bool"):
        net(torch.zeros(1, 3, 1, 60), torch.ones(1, 3))


def test_fseq_mask_must_pad_at_end():
    net = make("fseq")
    x, _ = padded_batch([5], 5, 1, 5)
    with pytest.raises(ValueError, match="padding"):
        net(x, torch.tensor([[True, False, True, True, True]]))


# ------------------------------------------------------------------------------ IHR
def test_ihr_known_rate():
    beats = np.arange(0.0, 300.5, 0.8)  # 75 beats/min
    hr, valid, report = instantaneous_heart_rate(beats, fs=2.0, n_epochs=10)
    assert hr.shape == (10, 60)
    np.testing.assert_allclose(hr, 75.0)
    assert valid.all()
    assert report["n_rejected_rr"] == 0 and report["gap_seconds"] < 1.0


def test_ihr_rejects_ectopic_beat():
    beats = np.arange(0.0, 300.5, 1.0)  # 60 beats/min
    ectopic = np.sort(np.append(beats, 100.6))  # premature beat: RR 0.6 then 0.4
    hr, valid, report = instantaneous_heart_rate(ectopic, fs=2.0, n_epochs=10)
    assert report["n_rejected_beats"] == 1
    assert report["n_rejected_rr"] == 2 and report["n_rejected_ectopic"] == 2
    np.testing.assert_allclose(hr, 60.0)  # interpolated across the rejected intervals
    assert valid.all()


def test_ihr_gap_interpolated_and_long_gap_filled():
    rate1 = np.arange(0.0, 100.0, 1.0)  # 60 bpm, then 3 missing beats, then 60 bpm
    beats = np.concatenate([rate1, np.arange(104.0, 301.0, 1.0)])
    hr, valid, report = instantaneous_heart_rate(beats, fs=2.0, n_epochs=10)
    np.testing.assert_allclose(hr, 60.0)  # the 4-s RR is out of range, bridged linearly
    assert report["n_rejected_range"] == 1
    assert 3.0 <= report["gap_seconds"] <= 5.0
    assert report["long_gap_seconds"] == 0.0

    # a 60-s hole with the rate changing across it: linear up to max_gap, else median
    beats = np.concatenate([np.arange(0.0, 100.0, 1.0), np.arange(160.0, 301.0, 0.75)])
    hr, valid, report = instantaneous_heart_rate(beats, fs=2.0, n_epochs=10, max_gap=10.0)
    assert 55.0 <= report["long_gap_seconds"] <= 70.0
    flat = hr.reshape(-1)
    grid = (np.arange(flat.size) + 0.5) / 2.0
    in_hole = (grid > 105) & (grid < 155)
    np.testing.assert_allclose(flat[in_hole], report["fill_value_bpm"])
    assert not valid[4]  # epoch 120-150 s has no real heart rate
    assert valid[0] and valid[9]


def test_ihr_start_and_default_epochs():
    beats = np.arange(600.0, 900.01, 0.5)  # 120 bpm from 600 s to 900 s
    hr, valid, _ = instantaneous_heart_rate(beats, start=600.0)
    assert hr.shape == (10, 60)
    np.testing.assert_allclose(hr, 120.0)


@pytest.mark.parametrize("beats, kwargs, match", [
    ([1.0, 0.5, 2.0], {}, "sorted"),
    ([0.0, np.nan, 2.0], {}, "NaN"),
    (np.arange(0, 60.0), {"fs": 0.0}, "fs"),
    (np.arange(0, 60.0), {"fs": -2.0}, "fs"),
    (np.arange(0, 60.0), {"min_rr": 2.0, "max_rr": 1.0}, "min_rr"),
    (np.arange(0, 60.0), {"fs": 0.75}, "whole number"),
    (np.arange(0, 60.0, 5.0), {}, "No usable RR"),
    (np.zeros((2, 3)), {}, "1-D"),
])
def test_ihr_errors(beats, kwargs, match):
    with pytest.raises(ValueError, match=match):
        instantaneous_heart_rate(np.asarray(beats, dtype=float), **kwargs)


def test_ihr_fast():
    rng = np.random.default_rng(0)
    beats = np.cumsum(rng.uniform(0.8, 1.0, size=32000))  # ~8 hours
    n_epochs = int(beats[-1] // 30)
    instantaneous_heart_rate(beats, n_epochs=n_epochs)  # warm-up
    t0 = time.perf_counter()
    instantaneous_heart_rate(beats, n_epochs=n_epochs)
    assert time.perf_counter() - t0 < 0.05
