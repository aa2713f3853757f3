"""Tests of the whole-night network EpochSequenceNet (sleepkd.networks._epoch_sequence)."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from torch import nn

from sleepkd.distillation._losses import attention_transfer_loss, feature_group_weights
from sleepkd.networks._compact import CompactUTime
from sleepkd.networks._epoch_sequence import EpochSequenceNet

SEQUENCES = ["gru", "tcn"]
# Tiny configuration: 32-sample epochs, two levels.
TINY = dict(widths=(4, 8), bottleneck_width=8, pools=(2, 2), embedding_dim=8, hidden=8,
            tcn_dilations=(1, 2))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def lengths_mask(lengths, n_epochs):
    return torch.arange(n_epochs) < torch.tensor(lengths).unsqueeze(1)


def padded_batch(lengths, n_epochs, n_times, n_chans=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), n_epochs, n_chans, n_times, generator=gen)
    return x, lengths_mask(lengths, n_epochs)


# ----------------------------------------------------------------- shapes and features
@pytest.mark.parametrize("sequence", SEQUENCES)
def test_shapes_and_features_default_widths(sequence):
    torch.manual_seed(0)
    net = EpochSequenceNet(1, 4, 3000, 100, sequence=sequence).eval()
    assert EpochSequenceNet.sequence is True and EpochSequenceNet.supports_attention
    assert net.sequence_model == sequence
    x, mask = padded_batch([3, 2], 3, 3000)
    with torch.no_grad():
        logits, feats = net(x, mask, return_features=True)
        plain = net(x)
    assert logits.shape == plain.shape == (2, 3, 4)
    assert tuple(feats) == net.feature_names == (
        "enc1", "enc2", "enc3", "enc4", "enc5", "bottleneck", "embedding")
    assert net.feature_groups == {"encoder": ("enc1", "enc2", "enc3", "enc4", "enc5"),
                                  "bottleneck": ("bottleneck",)}
    # the same names and time lengths as CompactUTime's encoder maps
    ref = CompactUTime(1, 4, 3000).feature_groups
    assert net.feature_groups["encoder"] == ref["encoder"]
    length = 3000
    for i, (pool, width) in enumerate(zip((3, 2, 2, 2, 2), (4, 8, 16, 32, 64)), start=1):
        length //= pool
        assert feats[f"enc{i}"].shape == (5, width, length)  # 5 real epochs
    assert feats["bottleneck"].shape == (5, 128, 62)
    assert feats["embedding"].shape == (2, 3, 64)
    assert torch.equal(feats["embedding"][1, 2], torch.zeros(64))
    assert torch.equal(logits[1, 2], torch.zeros(4))
    # without a mask: every epoch, in the order of x.reshape(-1, ...)
    with torch.no_grad():
        _, all_feats = net(x, return_features=True)
    assert all_feats["enc1"].shape == (6, 4, 1000)
    assert torch.allclose(all_feats["enc3"][mask.reshape(-1)], feats["enc3"], atol=1e-6)


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_a_full_mask_equals_no_mask(sequence):
    torch.manual_seed(0)
    net = EpochSequenceNet(2, 3, 32, sequence=sequence, **TINY).eval()
    x = torch.randn(3, 7, 2, 32)
    with torch.no_grad():
        a = net(x)
        b = net(x, torch.ones(3, 7, dtype=torch.bool))
    assert torch.allclose(a, b, atol=1e-6)


def test_encoder_is_compact_utimes_encoder():
    """UTime's module names: a per-epoch CompactUTime initialises the encoder, and the
    maps are then the CompactUTime's own encoder maps."""
    torch.manual_seed(0)
    kw = dict(widths=(4, 8, 16), bottleneck_width=16, pools=(3, 2, 2))
    utime = CompactUTime(1, 4, 120, **kw).eval()
    net = EpochSequenceNet(1, 4, 120, embedding_dim=8, hidden=8, **kw).eval()
    assert net.load_encoder_from(utime) is net
    ours = {k: v for k, v in net.state_dict().items() if k.startswith(("encoder.", "bottleneck."))}
    theirs = {k: v for k, v in utime.state_dict().items()
              if k.startswith(("encoder.", "bottleneck."))}
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    x = torch.randn(2, 3, 1, 120)
    with torch.no_grad():
        _, feats = net(x, return_features=True)
        _, ref = utime(x.reshape(6, 1, 120), return_features=True)
    for name in net.feature_groups["encoder"] + ("bottleneck",):
        assert torch.allclose(feats[name], ref[name], atol=1e-6), name
    with pytest.raises(ValueError, match="encoder design"):
        net.load_encoder_from(CompactUTime(1, 4, 120, widths=(4, 8, 8), bottleneck_width=16,
                                           pools=(3, 2, 2)))
    with pytest.raises(ValueError, match="no U-Time encoder"):
        net.load_encoder_from(nn.Linear(2, 2))


# ----------------------------------------------------------------- padding never leaks
@pytest.mark.parametrize("sequence", SEQUENCES)
def test_a_night_alone_equals_the_night_in_a_padded_batch(sequence):
    torch.manual_seed(0)
    net = EpochSequenceNet(1, 4, 32, sequence=sequence, n_layers=2, **TINY).eval()
    lengths = [5, 11, 2, 8]
    x, mask = padded_batch(lengths, 12, 32)
    with torch.no_grad():
        logits, feats = net(x, mask, return_features=True)
    start = 0
    for i, n in enumerate(lengths):
        with torch.no_grad():
            alone, alone_feats = net(x[i:i + 1, :n], return_features=True)
        assert torch.allclose(logits[i, :n], alone[0], atol=1e-5), i
        assert torch.equal(logits[i, n:], torch.zeros(12 - n, 4))
        assert torch.allclose(feats["embedding"][i, :n], alone_feats["embedding"][0],
                              atol=1e-5)
        for name in ("enc1", "enc2", "bottleneck"):  # rows in the order of mask.reshape(-1)
            assert torch.allclose(feats[name][start:start + n], alone_feats[name], atol=1e-5)
        start += n
    assert feats["enc1"].shape[0] == sum(lengths)


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_padded_values_change_nothing_in_train_mode(sequence):
    """Train mode (BatchNorm batch statistics, dropout): outputs at real epochs and the
    gradients of a loss on real epochs do not depend on what the padding holds."""
    lengths = [6, 3, 9]
    x, mask = padded_batch(lengths, 9, 32)
    y = torch.randint(0, 3, (3, 9), generator=torch.Generator().manual_seed(1))
    x_other = x.clone()
    x_other[~mask] = 100.0 * torch.randn(int((~mask).sum()), 1, 32)
    x_nan = x.clone()
    x_nan[~mask] = float("nan")
    torch.manual_seed(0)
    net = EpochSequenceNet(1, 3, 32, sequence=sequence, dropout=0.3, **TINY).train()
    results = []
    for inputs in (x, x_other, x_nan):
        net.zero_grad()
        torch.manual_seed(7)  # the same dropout masks
        logits, feats = net(inputs, mask, return_features=True)
        loss = nn.functional.cross_entropy(logits[mask], y[mask])
        loss.backward()
        grads = {name: p.grad.clone() for name, p in net.named_parameters()}
        results.append((logits.detach(), feats["bottleneck"].detach(), grads))
    ref_logits, ref_bottleneck, ref_grads = results[0]
    assert torch.isfinite(ref_logits).all()
    for logits, bottleneck, grads in results[1:]:
        assert torch.allclose(logits, ref_logits, atol=1e-6)
        assert torch.allclose(bottleneck, ref_bottleneck, atol=1e-6)
        for name, grad in grads.items():
            assert torch.allclose(grad, ref_grads[name], atol=1e-6), name


def test_a_night_without_real_epochs_gives_zeros():
    torch.manual_seed(0)
    net = EpochSequenceNet(1, 3, 32, **TINY).eval()
    x, mask = padded_batch([4, 0], 4, 32)
    with torch.no_grad():
        logits = net(x, mask)
        alone = net(x[:1])
    assert torch.equal(logits[1], torch.zeros(4, 3))
    assert torch.allclose(logits[0], alone[0], atol=1e-5)


# ----------------------------------------------------------------- validation
def test_input_validation():
    net = EpochSequenceNet(1, 4, 3000, 100, **TINY)
    with pytest.raises(ValueError, match=r"x\[None\]"):
        net(torch.randn(5, 1, 3000))
    with pytest.raises(ValueError, match="n_chans=1"):
        net(torch.randn(1, 5, 2, 3000))
    with pytest.raises(ValueError, match=r"n_times=3000 .*30 s at 100 Hz"):
        net(torch.randn(1, 5, 1, 6000))
    with pytest.raises(ValueError, match="empty"):
        net(torch.randn(1, 0, 1, 3000))
    x = torch.randn(2, 4, 1, 3000)
    with pytest.raises(ValueError, match="bool"):
        net(x, torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        net(x, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="padding at the end"):
        net(x, torch.tensor([[True, False, True, True], [True] * 4]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(widths=(4, 8), pools=(2,)), "same length"),
    (dict(pools=(3, 2, 0, 2, 2)), "pools"),
    (dict(sequence="lstm"), "sequence"),
    (dict(hidden=0), "hidden"),
    (dict(embedding_dim=0), "embedding_dim"),
    (dict(n_layers=0), "n_layers"),
    (dict(dropout=1.0), "dropout"),
    (dict(tcn_dilations=()), "tcn_dilations"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EpochSequenceNet(1, 4, 3000, **kwargs)


def test_bad_common_arguments():
    with pytest.raises(ValueError, match="at least 48 samples"):
        EpochSequenceNet(1, 4, 47)
    for args, match in (((0, 4, 3000), "n_chans"), ((1, 0, 3000), "n_outputs"),
                        ((1, 4, 3000, -1.0), "sfreq")):
        with pytest.raises(ValueError, match=match):
            EpochSequenceNet(*args)


def test_deterministic_and_picklable():
    x, mask = padded_batch([4, 2], 4, 32)
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        net = EpochSequenceNet(1, 3, 32, sequence="tcn", **TINY).eval()
        with torch.no_grad():
            outs.append(net(x, mask))
    assert torch.equal(outs[0], outs[1])
    clone = pickle.loads(pickle.dumps(net))
    with torch.no_grad():
        assert torch.equal(clone(x, mask), outs[0])


# ----------------------------------------------------------------- attention transfer
def test_attention_transfer_between_an_eeg_and_an_ecg_network():
    """A 100-Hz EEG teacher and a 200-Hz ECG student: the same layer names, rows
    matched by the shared mask, time lengths resampled by the loss."""
    torch.manual_seed(0)
    teacher = EpochSequenceNet(1, 4, 3000, 100).eval()
    student = EpochSequenceNet(1, 4, 6000, 200, sequence="tcn").train()
    mask = lengths_mask([3, 1], 3)
    eeg = torch.randn(2, 3, 1, 3000)
    ecg = torch.randn(2, 3, 1, 6000)
    with torch.no_grad():
        _, f_t = teacher(eeg, mask, return_features=True)
    _, f_s = student(ecg, mask, return_features=True)
    names = [n for group in student.feature_groups.values() for n in group]
    assert names == [n for group in teacher.feature_groups.values() for n in group]
    assert f_t["enc1"].shape == (4, 4, 1000) and f_s["enc1"].shape == (4, 4, 2000)
    loss = attention_transfer_loss([f_t[n] for n in names], [f_s[n] for n in names],
                                   weights=feature_group_weights(names, student.feature_groups))
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    grad = student.encoder[0][0].conv.weight.grad
    assert grad is not None and grad.abs().sum() > 0


# ----------------------------------------------------------------- learning
def _sequence_task(n_nights, n_epochs, n_times=32, seed=0):
    """Each epoch is a noisy sine of period 16 (bit 0) or 4 (bit 1) samples; its label
    is ``2 * previous bit + own bit`` (4 classes): without the previous epoch, at most
    50 % accuracy is reachable."""
    gen = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, (n_nights, n_epochs), generator=gen)
    period = torch.where(bits == 1, 4.0, 16.0).unsqueeze(-1)
    t = torch.arange(n_times, dtype=torch.float32)
    phase = torch.rand(n_nights, n_epochs, 1, generator=gen) * 2 * math.pi
    x = torch.sin(2 * math.pi * t / period + phase)
    x = x + 0.1 * torch.randn(x.shape, generator=gen)
    previous = torch.cat([torch.zeros(n_nights, 1, dtype=bits.dtype), bits[:, :-1]], dim=1)
    lengths = torch.randint(n_epochs // 2, n_epochs + 1, (n_nights,), generator=gen)
    return x.unsqueeze(2), 2 * previous + bits, lengths_mask(lengths.tolist(), n_epochs)


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_learns_labels_that_need_the_previous_epoch(sequence):
    x, y, mask = _sequence_task(16, 16, seed=0)
    x_test, y_test, mask_test = _sequence_task(16, 16, seed=1)
    torch.manual_seed(0)
    net = EpochSequenceNet(1, 4, 32, sequence=sequence, dropout=0.0, **{**TINY, "hidden": 16})
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x, mask)[mask], y[mask])
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(x_test, mask_test).argmax(-1)
    accuracy = (pred[mask_test] == y_test[mask_test]).float().mean().item()
    assert accuracy > 0.8, accuracy  # chance 0.25; without context at most 0.5


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_evaluation_encodes_long_nights_in_chunks_with_the_same_logits(sequence,
                                                                        monkeypatch):
    """Without a graph, epochs are encoded a chunk at a time (memory bounded for whole
    nights): the logits are those of encoding every epoch at once; training and
    return_features encode everything together, as before."""
    import sleepkd.networks._epoch_sequence as module

    torch.manual_seed(0)
    net = EpochSequenceNet(n_chans=1, n_outputs=3, n_times=32, sequence=sequence, **TINY)
    x, mask = padded_batch([40, 23], 40, 32)
    calls = []
    original = EpochSequenceNet._encode

    def counting(self, z, features):
        calls.append(len(z))
        return original(self, z, features)

    monkeypatch.setattr(EpochSequenceNet, "_encode", counting)
    net.eval()
    with torch.no_grad():
        monkeypatch.setattr(module, "ENCODE_CHUNK", 10_000)
        whole = net(x, mask)
        monkeypatch.setattr(module, "ENCODE_CHUNK", 7)
        calls.clear()
        chunked = net(x, mask)
    assert calls == [7] * 9  # 63 real epochs
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)
    calls.clear()
    net(x, mask)  # with autograd: one piece
    net(x, mask, return_features=True)
    assert calls == [63, 63]
