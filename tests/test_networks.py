"""Tests of the PyTorch networks (sleepkd.networks)."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from torch import nn

from sleepkd.networks import NETWORKS, CompactUTime, ContextNet, MLPNet, UTime, get_network
from sleepkd.networks._context import auto_pools

# Tiny configurations that train in well under a second.
TINY = {
    "utime": (UTime, dict(widths=(4, 8), bottleneck_width=8, pools=(2, 2))),
    "compact": (CompactUTime, dict(widths=(2, 4), bottleneck_width=4, pools=(2, 2))),
    "context": (ContextNet, dict(n_context=1, widths=(4, 8), pools=(2, 2),
                                 sequence_width=8)),
    "context_tcn": (ContextNet, dict(n_context=1, widths=(4, 8), pools=(2, 2),
                                     sequence="tcn", sequence_width=8)),
    "mlp": (MLPNet, dict(hidden=(16, 16), dropout=0.0)),
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors run fastest on one thread, and OpenMP spin-waits between many tiny
    ops can stall a multi-threaded run for a minute on a busy machine."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# ----------------------------------------------------------------- U-Time
def test_utime_parameter_count_matches_the_paper():
    net = UTime(n_chans=1, n_outputs=4, n_times=6000, sfreq=200)
    # the paper: "about 4.8 M parameters"; exactly, for 1 channel and 4 classes:
    assert n_params(net) == 4_813_240
    assert n_params(UTime(1, 3, 6000)) == 4_813_240 - 25  # 1x1 heads: 4*4+4+16*4+4 vs 3*3+3+16*3+3


def test_compact_utime_is_a_tenth_or_less():
    big = n_params(UTime(1, 4, 6000))
    small = n_params(CompactUTime(1, 4, 6000))
    assert small == 302_848
    assert small <= big / 10


@pytest.mark.parametrize("n_times", [3000, 6000, 7680])
def test_utime_shapes_and_feature_maps(n_times):
    torch.manual_seed(0)
    net = UTime(n_chans=1, n_outputs=4, n_times=n_times).eval()
    with torch.no_grad():
        logits, feats = net(torch.randn(1, 1, n_times), return_features=True)
    assert logits.shape == (1, 4)
    assert tuple(feats) == net.feature_names == (
        "enc1", "enc2", "enc3", "enc4", "enc5", "bottleneck",
        "dec1", "dec2", "dec3", "dec4", "dec5", "dec_end", "dense")
    # encoder outputs after each pool; the decoder mirrors the (pre-pool) skip lengths
    lengths, length = [], n_times
    for pool in (3, 2, 2, 2, 2):
        lengths.append(length)
        length //= pool
        assert feats[f"enc{len(lengths)}"].shape[-1] == length
    assert feats["bottleneck"].shape == (1, 512, length)
    for i, (width, skip_len) in enumerate(zip((256, 128, 64, 32, 16), lengths[::-1]), start=1):
        assert feats[f"dec{i}"].shape == (1, width, skip_len)
    assert feats["dec_end"] is feats["dec5"]
    assert feats["dense"].shape == (1, 4, n_times)
    assert feats["dense"].abs().max() <= 1.0  # tanh map


def test_utime_logits_are_the_classifier_of_the_mean_dense_map():
    net = UTime(1, 3, 96, widths=(4, 8), bottleneck_width=8, pools=(2, 2)).eval()
    x = torch.randn(3, 1, 96)
    with torch.no_grad():
        logits, feats = net(x, return_features=True)
        expected = feats["dense"].mean(-1) @ net.classifier.weight[:, :, 0].T + net.classifier.bias
    assert torch.allclose(logits, expected, atol=1e-6)


def test_utime_feature_groups_cover_feature_names():
    net = CompactUTime(1, 4, 3000)
    groups = net.feature_groups
    assert list(groups) == ["encoder", "bottleneck", "decoder", "dec_end", "dense"]
    assert sorted(n for g in groups.values() for n in g) == sorted(net.feature_names)
    assert net.feature_names == UTime(1, 4, 3000).feature_names


def test_utime_too_short_input_raises():
    with pytest.raises(ValueError, match="at least 48 samples"):
        UTime(1, 4, 47)
    net = UTime(1, 4, 48)
    assert net(torch.randn(2, 1, 48)).shape == (2, 4)
    with pytest.raises(ValueError, match="at least 48 samples"):
        net(torch.randn(2, 1, 40))
    with pytest.raises(ValueError, match="n_chans=1"):
        net(torch.randn(2, 2, 48))
    with pytest.raises(ValueError, match="shape"):
        net(torch.randn(2, 48))


@pytest.mark.parametrize("kwargs, match", [
    (dict(widths=(4, 8), pools=(2,)), "same length"),
    (dict(widths=()), "non-empty"),
    (dict(pools=(3, 2, 0, 2, 2)), "pools"),
    (dict(kernel_size=0), "kernel_size"),
])
def test_utime_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UTime(1, 4, 3000, **kwargs)


@pytest.mark.parametrize("args, match", [
    ((0, 4, 3000), "n_chans"), ((1, 0, 3000), "n_outputs"),
    ((1, 4, 3000.5), "n_times"), ((1, 4, 3000, -1.0), "sfreq"),
])
def test_common_arguments_are_validated(args, match):
    for cls in (UTime, ContextNet, MLPNet):
        with pytest.raises(ValueError, match=match):
            cls(*args)


# ----------------------------------------------------------------- ContextNet
def test_auto_pools():
    assert auto_pools(3000, 4) == (4, 4, 4, 4)
    assert auto_pools(120, 4) == (2, 2, 2, 2)
    assert auto_pools(6000, 4) == (5, 5, 5, 5)
    assert auto_pools(6, 3) == (1, 1, 1)
    for length in (10, 30, 120, 256, 3000, 7680):
        assert math.prod(auto_pools(length, 4)) <= length


@pytest.mark.parametrize("sfreq, n_context, sequence", [
    (4, 4, "gru"),      # heart rate at 4 Hz, 4 epochs each side: 9 x 120 samples
    (4, 4, "tcn"),
    (100, 2, "gru"),    # ECG at 100 Hz, 2 epochs each side: 5 x 3000 samples
    (256, 0, "gru"),    # no context: 7680 samples
])
def test_context_net_shapes(sfreq, n_context, sequence):
    epoch_len = 30 * sfreq
    n_times = (2 * n_context + 1) * epoch_len
    net = ContextNet(1, 4, n_times, sfreq, n_context=n_context, widths=(4, 8, 8, 8),
                     sequence=sequence, sequence_width=8).eval()
    assert net.n_epochs_in_window == 2 * n_context + 1
    with torch.no_grad():
        logits, feats = net(torch.randn(2, 1, n_times), return_features=True)
    assert logits.shape == (2, 4)
    assert tuple(feats) == net.feature_names == ("enc1", "enc2", "enc3", "enc4")
    length = epoch_len
    for i, (pool, width) in enumerate(zip(net.pools, (4, 8, 8, 8)), start=1):
        length //= pool
        assert feats[f"enc{i}"].shape == (2, width, length)


@pytest.mark.parametrize("sequence", ["gru", "tcn"])
def test_context_net_features_are_the_centre_epochs(sequence):
    torch.manual_seed(0)
    net = ContextNet(1, 3, 9 * 40, n_context=4, widths=(4, 8), pools=(2, 2),
                     sequence=sequence).eval()
    x = torch.randn(2, 1, 9 * 40)
    with torch.no_grad():
        logits, feats = net(x, return_features=True)
        # the centre epoch alone through the encoder gives the same maps
        centre = x[:, :, 160:200]
        z = centre
        for i, (level, pool) in enumerate(zip(net.encoder, net.pooling), start=1):
            z = pool(level(z))
            assert torch.allclose(feats[f"enc{i}"], z, atol=1e-6)
        # changing the farthest neighbour changes the logits (the sequence stage sees
        # all 2k+1 epochs) but not the maps
        x2 = x.clone()
        x2[:, :, :40] = torch.randn(2, 1, 40)
        logits2, feats2 = net(x2, return_features=True)
    assert not torch.allclose(logits, logits2)
    for name in net.feature_names:
        assert torch.equal(feats[name], feats2[name])


def test_context_net_validation():
    with pytest.raises(ValueError, match="not a multiple of 2 \\* n_context \\+ 1 = 5"):
        ContextNet(1, 4, 1001, n_context=2)
    with pytest.raises(ValueError, match="at least 16 samples per epoch"):
        ContextNet(1, 4, 5 * 10, n_context=2, widths=(4, 8), pools=(4, 4))
    with pytest.raises(ValueError, match="sequence"):
        ContextNet(1, 4, 5 * 120, sequence="lstm")
    with pytest.raises(ValueError, match="pools"):
        ContextNet(1, 4, 5 * 120, pools="fixed")
    with pytest.raises(ValueError, match="dropout"):
        ContextNet(1, 4, 5 * 120, dropout=1.0)
    net = ContextNet(1, 4, 5 * 120, n_context=2)
    with pytest.raises(ValueError, match="multiple of 5"):
        net(torch.randn(2, 1, 5 * 120 + 1))


def test_context_net_refuses_an_input_built_with_another_context():
    # heart rate at 4 Hz with 4 epochs each side: 9 x 120 = 1080 samples, which also
    # divides by 5 (n_context=2) into "epochs" of 216 samples
    with pytest.raises(ValueError, match=r"n_times=1080 .* n_context=2.*n_times=600"):
        ContextNet(1, 4, 1080, sfreq=4, n_context=2)
    with pytest.raises(ValueError, match="120 samples"):
        ContextNet(1, 4, 1080, sfreq=4, n_context=2)
    net = ContextNet(1, 4, 1080, sfreq=4, n_context=4)
    assert net.samples_per_epoch == 120 and net.epoch_length == 30.0
    assert ContextNet(1, 4, 5 * 60, sfreq=4, n_context=2, epoch_length=15).samples_per_epoch == 60
    with pytest.raises(ValueError, match="expects 9 epochs of 120 samples"):
        net(torch.randn(2, 1, 9 * 121))
    with pytest.raises(ValueError, match="whole number of samples"):
        ContextNet(1, 4, 5 * 100, sfreq=3.33, n_context=2)
    with pytest.raises(ValueError, match="epoch_length"):
        ContextNet(1, 4, 5 * 120, sfreq=4, epoch_length=0)
    # without sfreq the epoch length cannot be known: only divisibility is checked
    assert ContextNet(1, 4, 1080, n_context=2).samples_per_epoch == 216


def test_context_student_with_sfreq_refuses_a_mismatched_context():
    import numpy as np

    from sleepkd import ECGStudent

    X = np.random.default_rng(0).normal(size=(20, 1080)).astype(np.float32)
    y = np.array(["W", "N"] * 10)
    student = ECGStudent(module="context", module_params={"n_context": 2}, sfreq=4,
                         max_epochs=1, verbose=0)
    with pytest.raises(ValueError, match="n_times=1080 does not match n_context=2"):
        student.fit(X, y)


# ----------------------------------------------------------------- MLPNet
def test_mlp_shapes_and_features():
    for norm in ("layer", "batch", None):
        net = MLPNet(2, 3, 10, hidden=(32, 16), norm=norm).eval()
        logits, feats = net(torch.randn(4, 2, 10), return_features=True)
        assert logits.shape == (4, 3)
        assert tuple(feats) == net.feature_names == ("hidden1", "hidden2")
        assert feats["hidden1"].shape == (4, 32) and feats["hidden2"].shape == (4, 16)
        assert bool((feats["hidden2"] >= 0).all())  # ReLU activations
    assert MLPNet.supports_attention is False
    assert UTime.supports_attention and CompactUTime.supports_attention
    assert ContextNet.supports_attention
    with pytest.raises(ValueError, match="n_times=10"):
        MLPNet(1, 3, 10)(torch.randn(4, 1, 12))
    with pytest.raises(ValueError, match="norm"):
        MLPNet(1, 3, 10, norm="group")


# ----------------------------------------------------------------- all networks
def _two_sinusoids(n_times: int, n_per_class: int = 16, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(n_times, dtype=torch.float32)
    xs, ys = [], []
    for label, period in enumerate((16.0, 5.0)):
        phase = torch.rand(n_per_class, 1, generator=gen) * 2 * math.pi
        x = torch.sin(2 * math.pi * t / period + phase)
        xs.append(x + 0.1 * torch.randn(x.shape, generator=gen))
        ys.append(torch.full((n_per_class,), label))
    return torch.cat(xs).unsqueeze(1), torch.cat(ys)


@pytest.mark.parametrize("key", sorted(TINY))
def test_training_steps_reduce_the_loss(key):
    cls, kwargs = TINY[key]
    n_times = 3 * 32 if cls is ContextNet else 32
    x, y = _two_sinusoids(n_times)
    torch.manual_seed(0)
    net = cls(1, 2, n_times, **kwargs)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("key", sorted(TINY))
def test_deterministic_under_manual_seed_and_picklable(key):
    cls, kwargs = TINY[key]
    n_times = 3 * 32 if cls is ContextNet else 32
    x = torch.randn(4, 1, n_times)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        net = cls(1, 3, n_times, **kwargs).eval()
        with torch.no_grad():
            outs.append(net(x))
    assert torch.equal(outs[0], outs[1])
    torch.manual_seed(124)
    other = cls(1, 3, n_times, **kwargs).eval()
    with torch.no_grad():
        assert not torch.equal(other(x), outs[0])
    clone = pickle.loads(pickle.dumps(net))
    with torch.no_grad():
        assert torch.equal(clone(x), outs[0])


@pytest.mark.parametrize("key", sorted(TINY))
def test_feature_maps_carry_gradients(key):
    cls, kwargs = TINY[key]
    n_times = 3 * 32 if cls is ContextNet else 32
    net = cls(1, 3, n_times, **kwargs)
    logits, feats = net(torch.randn(4, 1, n_times), return_features=True)
    assert list(feats) == list(net.feature_names)
    for name, f in feats.items():
        assert f.requires_grad, name
        if cls.supports_attention:
            assert f.ndim == 3 and f.shape[0] == 4, name


# ----------------------------------------------------------------- registry
def test_get_network():
    from sleepkd.networks import EpochSequenceNet, FeatureSequenceNet, HeartRateTCN

    assert NETWORKS == {"utime": UTime, "compact": CompactUTime, "context": ContextNet,
                        "mlp": MLPNet, "heart_rate_tcn": HeartRateTCN,
                        "feature_sequence": FeatureSequenceNet,
                        "epoch_sequence": EpochSequenceNet}
    assert all(getattr(NETWORKS[name], "sequence", False) for name in
               ("heart_rate_tcn", "feature_sequence", "epoch_sequence"))
    for name, cls in NETWORKS.items():
        assert get_network(name) is cls
    assert get_network("UTime") is UTime
    assert get_network(MLPNet) is MLPNet

    class MyNet(nn.Module):
        pass

    assert get_network(MyNet) is MyNet
    known = r"\['compact', 'context', 'epoch_sequence', 'feature_sequence', 'heart_rate_tcn', "
    with pytest.raises(ValueError, match=known + r"'mlp', 'utime'\]"):
        get_network("resnet")
    with pytest.raises(ValueError, match="nn.Module subclass"):
        get_network(UTime(1, 4, 3000))
    with pytest.raises(ValueError, match="nn.Module subclass"):
        get_network(int)
