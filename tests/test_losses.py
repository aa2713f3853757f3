"""Known-answer tests for the distillation losses (sleepkd.distillation._losses)."""

from __future__ import annotations

import math
import pickle

import numpy as np

import pytest
import torch

from sleepkd.distillation._losses import (
    AttentionTransferLoss,
    ClassificationLoss,
    DecoupledDistillationLoss,
    DistillationLoss,
    FeatureDistillationLoss,
    attention_map,
    attention_transfer_loss,
    average_teacher_logits,
    decoupled_kd_loss,
    distillation_loss,
    feature_distillation_loss,
    feature_group_weights,
    weighted_cross_entropy,
)

# Tiny fixed problem: 2 samples, 3 classes.
Z_S = [[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]]  # student logits
Z_T = [[3.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # teacher logits
Y = [1, 0]
W = [1.0, 2.0, 3.0]


def _t(values):
    return torch.tensor(values, dtype=torch.float64)


def _logsumexp(row):
    return math.log(sum(math.exp(v) for v in row))


def _softmax(row, temperature=1.0):
    e = [math.exp(v / temperature) for v in row]
    return [v / sum(e) for v in e]


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


NLL = [_logsumexp(r) - r[c] for r, c in zip(Z_S, Y)]  # 1.4076059644, 0.6041306053


# ----------------------------------------------------------------- weighted CE
def test_cross_entropy_unweighted_is_mean_nll():
    loss = weighted_cross_entropy(_t(Z_S), torch.tensor(Y))
    assert NLL[0] == pytest.approx(1.4076059644443801, abs=1e-12)
    assert float(loss) == pytest.approx(1.0058682848905542, abs=1e-6)
    assert float(loss) == pytest.approx(sum(NLL) / 2, abs=1e-6)


def test_cross_entropy_weighted_mean_divides_by_sum_of_sample_weights():
    # w[y] = (2, 1): (2 * nll0 + 1 * nll1) / 3
    loss = weighted_cross_entropy(_t(Z_S), torch.tensor(Y), class_weight=W)
    assert float(loss) == pytest.approx((2 * NLL[0] + NLL[1]) / 3, abs=1e-6)
    assert float(loss) == pytest.approx(1.1397808447418296, abs=1e-6)


def test_cross_entropy_errors():
    z, y = _t(Z_S), torch.tensor(Y)
    with pytest.raises(ValueError, match="one value per class"):
        weighted_cross_entropy(z, y, class_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        weighted_cross_entropy(z, y, class_weight=[1.0, -2.0, 1.0])
    with pytest.raises(ValueError, match="outside"):
        weighted_cross_entropy(z, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="integer"):
        weighted_cross_entropy(z, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        weighted_cross_entropy(z, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="batch, n_classes"):
        weighted_cross_entropy(z[0], torch.tensor([0]))


# ----------------------------------------------------------------- distillation
def test_distillation_loss_known_value():
    temperature, alpha = 2.0, 0.3
    kl = [_kl(_softmax(t, temperature), _softmax(s, temperature)) for t, s in zip(Z_T, Z_S)]
    expected = alpha * temperature**2 * sum(kl) / 2 + (1 - alpha) * (2 * NLL[0] + NLL[1]) / 3
    assert expected == pytest.approx(1.199169681803994, abs=1e-12)
    loss = distillation_loss(_t(Z_S), _t(Z_T), torch.tensor(Y), alpha=alpha,
                             temperature=temperature, class_weight=W)
    assert float(loss) == pytest.approx(expected, abs=1e-6)


def test_unlabelled_rows_enter_the_soft_term_only():
    # row 1 unlabelled: KL averaged over both rows, weighted CE over row 0 alone
    temperature, alpha = 2.0, 0.3
    kl = [_kl(_softmax(t, temperature), _softmax(s, temperature)) for t, s in zip(Z_T, Z_S)]
    expected = alpha * temperature**2 * sum(kl) / 2 + (1 - alpha) * NLL[0]
    loss = distillation_loss(_t(Z_S), _t(Z_T), torch.tensor([1, -1]), alpha=alpha,
                             temperature=temperature, class_weight=W, allow_unlabelled=True)
    assert float(loss) == pytest.approx(expected, abs=1e-6)
    # no label at all: the scaled KL alone; every row labelled: the usual loss
    none = distillation_loss(_t(Z_S), _t(Z_T), torch.tensor([-1, -1]), alpha=alpha,
                             temperature=temperature, allow_unlabelled=True)
    assert float(none) == pytest.approx(alpha * temperature**2 * sum(kl) / 2, abs=1e-6)
    kwargs = dict(alpha=alpha, temperature=temperature, class_weight=W)
    assert float(distillation_loss(_t(Z_S), _t(Z_T), torch.tensor(Y), allow_unlabelled=True,
                                   **kwargs)) == pytest.approx(float(distillation_loss(
                                       _t(Z_S), _t(Z_T), torch.tensor(Y), **kwargs)), abs=1e-12)
    with pytest.raises(ValueError, match="outside"):  # still refused by default
        distillation_loss(_t(Z_S), _t(Z_T), torch.tensor([1, -1]))
    criterion = DistillationLoss(alpha=alpha, temperature=temperature, soft_on_unscored=True)
    assert criterion.soft_on_unscored
    assert float(criterion(_t(Z_S), torch.tensor([-1, -1]), _t(Z_T))) == pytest.approx(
        float(none), abs=1e-6)


def test_alpha_zero_is_cross_entropy_and_alpha_one_is_scaled_kl():
    z_s, z_t, y = _t(Z_S), _t(Z_T), torch.tensor(Y)
    ce = distillation_loss(z_s, z_t, y, alpha=0.0, temperature=3.0, class_weight=W)
    assert float(ce) == pytest.approx(float(weighted_cross_entropy(z_s, y, W)), abs=1e-12)
    for temperature in (1.0, 2.0, 4.0):
        kl = sum(_kl(_softmax(t, temperature), _softmax(s, temperature))
                 for t, s in zip(Z_T, Z_S)) / 2
        loss = distillation_loss(z_s, z_t, y, alpha=1.0, temperature=temperature)
        # the exact T^2 factor on the batch-mean KL
        assert float(loss) == pytest.approx(temperature**2 * kl, abs=1e-6)


def test_kl_term_is_zero_when_student_equals_teacher():
    z = _t(Z_S)
    loss = distillation_loss(z, z.clone(), torch.tensor(Y), alpha=1.0, temperature=4.0)
    assert abs(float(loss)) < 1e-12


def test_mean_reduction_is_batchmean_over_n_classes():
    z_s, z_t, y = _t(Z_S), _t(Z_T), torch.tensor(Y)
    bm = distillation_loss(z_s, z_t, y, alpha=1.0, reduction="batchmean")
    mean = distillation_loss(z_s, z_t, y, alpha=1.0, reduction="mean")
    assert float(mean) == pytest.approx(float(bm) / 3, abs=1e-12)


def test_t_squared_keeps_gradient_scale_at_large_temperature():
    # d(T^2 KL)/dz_s = T (p_s - p_t) -> (z_s - z_t - mean) / K as T grows.
    def grad_norm(temperature):
        z_s = _t(Z_S).requires_grad_(True)
        distillation_loss(z_s, _t(Z_T), torch.tensor(Y), alpha=1.0,
                          temperature=temperature).backward()
        return float(z_s.grad.norm())

    g50, g100, g1000 = grad_norm(50.0), grad_norm(100.0), grad_norm(1000.0)
    assert g100 == pytest.approx(g1000, rel=1e-3)
    assert g50 == pytest.approx(g1000, rel=1e-2)


def test_distillation_gradient_does_not_reach_teacher():
    z_s = _t(Z_S).requires_grad_(True)
    z_t = _t(Z_T).requires_grad_(True)
    distillation_loss(z_s, z_t, torch.tensor(Y), alpha=0.5, temperature=2.0).backward()
    assert z_t.grad is None
    assert z_s.grad is not None and float(z_s.grad.abs().sum()) > 0


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha": -0.1}, "alpha"),
    ({"alpha": 1.5}, "alpha"),
    ({"temperature": 0.0}, "temperature"),
    ({"temperature": -1.0}, "temperature"),
    ({"reduction": "sum"}, "reduction"),
])
def test_distillation_loss_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        distillation_loss(_t(Z_S), _t(Z_T), torch.tensor(Y), **kwargs)
    with pytest.raises(ValueError, match=match):
        DistillationLoss(**kwargs)


def test_distillation_loss_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        distillation_loss(_t(Z_S), _t(Z_T)[:, :2], torch.tensor(Y))


# ----------------------------------------------------------------- attention maps
F_SMALL = [  # (2, 2, 3)
    [[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]],
    [[2.0, 0.0, 1.0], [2.0, 0.0, 0.0]],
]
A_RAW = [[1.0, 5.0, 9.0], [8.0, 0.0, 1.0]]  # sum over channels of F^2


def test_attention_map_exact_values():
    f = _t(F_SMALL)
    assert attention_map(f, normalize=None).tolist() == A_RAW
    sample = attention_map(f, normalize="sample")
    n0, n1 = math.sqrt(1 + 25 + 81), math.sqrt(64 + 0 + 1)
    expected = [[1 / n0, 5 / n0, 9 / n0], [8 / n1, 0.0, 1 / n1]]
    for got, want in zip(sample.tolist(), expected):
        assert got == pytest.approx(want, abs=1e-12)
    batch = attention_map(f, normalize="batch")
    cols = [math.sqrt(1 + 64), 5.0, math.sqrt(81 + 1)]
    expected = [[1 / cols[0], 1.0, 9 / cols[2]], [8 / cols[0], 0.0, 1 / cols[2]]]
    for got, want in zip(batch.tolist(), expected):
        assert got == pytest.approx(want, abs=1e-12)


def test_attention_normalisations_give_unit_rows_or_columns():
    f = torch.randn(5, 7, 40, generator=torch.Generator().manual_seed(0))
    rows = attention_map(f, normalize="sample").norm(dim=1)
    cols = attention_map(f, normalize="batch").norm(dim=0)
    assert torch.allclose(rows, torch.ones(5), atol=1e-6)
    assert torch.allclose(cols, torch.ones(40), atol=1e-6)


def test_attention_map_all_zero_stays_finite():
    att = attention_map(torch.zeros(2, 3, 4), normalize="sample")
    assert torch.equal(att, torch.zeros(2, 4))


def test_attention_map_errors():
    with pytest.raises(ValueError, match="batch, channels, time"):
        attention_map(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="normalize"):
        attention_map(torch.zeros(2, 3, 4), normalize="layer")


# ----------------------------------------------------------------- attention transfer
def test_attention_transfer_resamples_longer_map_by_pair_means():
    # teacher: 1 channel, 8 points; A_t = [1,1,4,4,9,9,0,0] -> pair means [1,4,9,0]
    teacher = _t([[[1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 0.0, 0.0]]])
    # student: 2 channels, 4 points; A_s = [1,4,1,1]
    student = _t([[[1.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, 1.0]]])
    a_t = [v / math.sqrt(98.0) for v in (1.0, 4.0, 9.0, 0.0)]
    a_s = [v / math.sqrt(19.0) for v in (1.0, 4.0, 1.0, 1.0)]
    l1 = sum(abs(a - b) for a, b in zip(a_t, a_s)) / 4
    l2 = sum((a - b) ** 2 for a, b in zip(a_t, a_s)) / 4
    assert float(attention_transfer_loss([teacher], [student])) == pytest.approx(l1, abs=1e-6)
    assert float(attention_transfer_loss([teacher], [student], distance="l2")) \
        == pytest.approx(l2, abs=1e-6)
    # symmetric: a longer student map is shortened the same way
    assert float(attention_transfer_loss([student], [teacher])) == pytest.approx(l1, abs=1e-6)


def test_attention_transfer_resampling_is_span_mean_not_linear_interpolation():
    # ratio 3: A_t = [1, 2, 6, 0, 3, 0] -> triple means [3, 1] (linear interpolation at
    # the output centres would give the middle points [2, 3] instead)
    teacher = _t([[[1.0, math.sqrt(2), math.sqrt(6), 0.0, math.sqrt(3), 0.0]]])
    student = _t([[[math.sqrt(3), 1.0]]])  # A_s = [3, 1]: the same attention
    assert float(attention_transfer_loss([teacher], [student], normalize=None)) \
        == pytest.approx(0.0, abs=1e-12)
    student = _t([[[math.sqrt(2), math.sqrt(3)]]])  # A_s = [2, 3]
    loss = attention_transfer_loss([teacher], [student], normalize=None)
    assert float(loss) == pytest.approx((1.0 + 2.0) / 2, abs=1e-12)


def test_attention_transfer_batch_normalisation_known_value():
    teacher = _t(F_SMALL)
    student = torch.ones(2, 1, 3, dtype=torch.float64)  # A_s = 1 -> batch-normalised 1/sqrt2
    cols = [math.sqrt(65.0), 5.0, math.sqrt(82.0)]
    a_t = [[1 / cols[0], 1.0, 9 / cols[2]], [8 / cols[0], 0.0, 1 / cols[2]]]
    expected = sum(abs(v - 1 / math.sqrt(2)) for row in a_t for v in row) / 6
    loss = attention_transfer_loss([teacher], [student], normalize="batch")
    assert float(loss) == pytest.approx(expected, abs=1e-6)


def test_identical_attention_gives_zero_loss_whatever_the_channels():
    f = torch.randn(3, 4, 16, generator=torch.Generator().manual_seed(1))
    # the same attention with a different channel count: split each channel in two halves
    g = torch.cat([f / math.sqrt(2), f / math.sqrt(2)], dim=1)
    for normalize in ("sample", "batch", None):
        loss = attention_transfer_loss([f, f], [f.clone(), g], normalize=normalize)
        assert float(loss) == pytest.approx(0.0, abs=1e-6)


def test_attention_transfer_is_mean_or_weighted_mean_over_pairs():
    gen = torch.Generator().manual_seed(2)
    ts = [torch.randn(2, 3, 10, generator=gen) for _ in range(3)]
    ss = [torch.randn(2, 5, 10, generator=gen) for _ in range(3)]
    single = [float(attention_transfer_loss([t], [s])) for t, s in zip(ts, ss)]
    assert float(attention_transfer_loss(ts, ss)) == pytest.approx(sum(single) / 3, rel=1e-6)
    weighted = attention_transfer_loss(ts, ss, weights=[1.0, 0.0, 3.0])
    assert float(weighted) == pytest.approx((single[0] + 3 * single[2]) / 4, rel=1e-6)


def test_attention_transfer_gradient_reaches_student_only():
    t = torch.randn(2, 3, 12, requires_grad=True)
    s = torch.randn(2, 4, 12, requires_grad=True)
    attention_transfer_loss([t], [s]).backward()
    assert t.grad is None
    assert s.grad is not None and float(s.grad.abs().sum()) > 0


def test_attention_transfer_errors():
    a, b = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    with pytest.raises(ValueError, match="matched by position"):
        attention_transfer_loss([a, a], [b])
    with pytest.raises(ValueError, match="batch size"):
        attention_transfer_loss([a], [torch.randn(3, 3, 8)])
    with pytest.raises(ValueError, match="batch, channels, time"):
        attention_transfer_loss([a], [torch.randn(2, 8)])
    with pytest.raises(ValueError, match="No feature maps"):
        attention_transfer_loss([], [])
    with pytest.raises(ValueError, match="list"):
        attention_transfer_loss({"enc1": a}, {"enc1": b})
    with pytest.raises(ValueError, match="distance"):
        attention_transfer_loss([a], [b], distance="cosine")
    with pytest.raises(ValueError, match="normalize"):
        attention_transfer_loss([a], [b], normalize="channel")
    with pytest.raises(ValueError, match="weights"):
        attention_transfer_loss([a], [b], weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="weights"):
        attention_transfer_loss([a], [b], weights=[-1.0])


def test_feature_group_weights_reproduce_the_papers_group_mean():
    names = ["enc1", "enc2", "bottleneck", "dec1", "dec2", "dec_end", "dense"]
    groups = {"encoder": ("enc1", "enc2"), "bottleneck": ("bottleneck",),
              "decoder": ("dec1", "dec2"), "dec_end": ("dec_end",), "dense": ("dense",)}
    weights = feature_group_weights(names, groups)
    assert weights == pytest.approx([0.1, 0.1, 0.2, 0.1, 0.1, 0.2, 0.2])
    gen = torch.Generator().manual_seed(3)
    ts = [torch.randn(2, 3, 6, generator=gen) for _ in names]
    ss = [torch.randn(2, 3, 6, generator=gen) for _ in names]
    per = [float(attention_transfer_loss([t], [s], normalize="batch")) for t, s in zip(ts, ss)]
    paper = ((per[0] + per[1]) / 2 + per[2] + (per[3] + per[4]) / 2 + per[5] + per[6]) / 5
    loss = attention_transfer_loss(ts, ss, normalize="batch", weights=weights)
    assert float(loss) == pytest.approx(paper, rel=1e-6)
    # names outside every group count as groups of their own
    assert feature_group_weights(["a", "enc1"], {"encoder": ("enc1", "enc2")}) == [0.5, 0.5]
    with pytest.raises(ValueError, match="duplicates"):
        feature_group_weights(["enc1", "enc1"], groups)


# ----------------------------------------------------------------- criteria modules
def test_classification_loss_module_matches_function_and_moves_with_to():
    crit = ClassificationLoss(class_weight=W)
    assert crit.class_weight.dtype == torch.float32
    crit = crit.to(torch.float64)
    assert crit.class_weight.dtype == torch.float64
    assert float(crit(_t(Z_S), torch.tensor(Y))) == pytest.approx(1.1397808447418296, abs=1e-6)
    assert float(ClassificationLoss()(_t(Z_S), torch.tensor(Y))) \
        == pytest.approx(1.0058682848905542, abs=1e-6)
    assert dict(crit.state_dict()) == {}  # class_weight is a constructor argument
    with pytest.raises(ValueError, match="class_weight"):
        ClassificationLoss(class_weight=[[1.0, 2.0]])


def test_distillation_loss_module_with_and_without_teacher():
    crit = DistillationLoss(alpha=0.3, temperature=2.0, class_weight=W).double()
    z_s, z_t, y = _t(Z_S), _t(Z_T), torch.tensor(Y)
    assert float(crit(z_s, y, z_t)) == pytest.approx(1.199169681803994, abs=1e-6)
    assert float(crit(z_s, y)) == pytest.approx(1.1397808447418296, abs=1e-6)
    clone = pickle.loads(pickle.dumps(crit))
    assert float(clone(z_s, y, z_t)) == pytest.approx(float(crit(z_s, y, z_t)), abs=1e-12)


def test_attention_transfer_module():
    gen = torch.Generator().manual_seed(4)
    ts = [torch.randn(2, 3, 8, generator=gen), torch.randn(2, 3, 4, generator=gen)]
    ss = [torch.randn(2, 5, 8, generator=gen), torch.randn(2, 1, 2, generator=gen)]
    crit = pickle.loads(pickle.dumps(AttentionTransferLoss(distance="l2", normalize="batch")))
    expected = attention_transfer_loss(ts, ss, distance="l2", normalize="batch")
    assert float(crit(ts, ss)) == pytest.approx(float(expected), abs=1e-12)
    with pytest.raises(ValueError, match="distance"):
        AttentionTransferLoss(distance="l3")
    with pytest.raises(ValueError, match="normalize"):
        AttentionTransferLoss(normalize="sum")


# ----------------------------------------------------------------- decoupled KD
def _dkd_parts(z_s, z_t, y, temperature):
    """Hand-written TCKD and NCKD of one sample (Zhao et al. 2022, eqs. 2-5)."""
    p_s, p_t = _softmax(z_s, temperature), _softmax(z_t, temperature)
    tckd = _kl([p_t[y], 1 - p_t[y]], [p_s[y], 1 - p_s[y]])
    q_s = [p_s[k] / (1 - p_s[y]) for k in range(len(p_s)) if k != y]
    q_t = [p_t[k] / (1 - p_t[y]) for k in range(len(p_t)) if k != y]
    return tckd, _kl(q_t, q_s)


def test_decoupled_kd_known_value():
    parts = [_dkd_parts(s, t, c, 2.0) for s, t, c in zip(Z_S, Z_T, Y)]
    assert parts[0][0] == pytest.approx(0.014302553382874603, abs=1e-12)
    assert parts[0][1] == pytest.approx(0.6557846000195793, abs=1e-12)
    expected = 2.0**2 * sum(1.0 * tc + 8.0 * nc for tc, nc in parts) / 2
    assert expected == pytest.approx(12.60354933407064, abs=1e-10)
    loss = decoupled_kd_loss(_t(Z_S), _t(Z_T), torch.tensor(Y), temperature=2.0)
    assert float(loss) == pytest.approx(expected, abs=1e-9)
    # each term alone, at another temperature
    for temperature in (1.0, 4.0):
        parts = [_dkd_parts(s, t, c, temperature) for s, t, c in zip(Z_S, Z_T, Y)]
        tckd = decoupled_kd_loss(_t(Z_S), _t(Z_T), torch.tensor(Y), alpha_tckd=1.0,
                                 beta_nckd=0.0, temperature=temperature)
        nckd = decoupled_kd_loss(_t(Z_S), _t(Z_T), torch.tensor(Y), alpha_tckd=0.0,
                                 beta_nckd=1.0, temperature=temperature)
        assert float(tckd) == pytest.approx(temperature**2 * (parts[0][0] + parts[1][0]) / 2,
                                            abs=1e-10)
        assert float(nckd) == pytest.approx(temperature**2 * (parts[0][1] + parts[1][1]) / 2,
                                            abs=1e-10)


def test_decoupled_kd_recovers_classical_kd_with_the_papers_weights():
    # KL(p_t || p_s) = TCKD + (1 - p_t[target]) * NCKD, per sample
    for temperature in (1.0, 3.0):
        for row in range(2):
            z_s, z_t, y = _t([Z_S[row]]), _t([Z_T[row]]), torch.tensor([Y[row]])
            p_target = _softmax(Z_T[row], temperature)[Y[row]]
            dkd = decoupled_kd_loss(z_s, z_t, y, alpha_tckd=1.0, beta_nckd=1.0 - p_target,
                                    temperature=temperature)
            kd = distillation_loss(z_s, z_t, y, alpha=1.0, temperature=temperature)
            assert float(dkd) == pytest.approx(float(kd), abs=1e-12)


def test_decoupled_kd_zero_for_identical_logits_and_no_nckd_with_two_classes():
    z = _t(Z_S)
    assert float(decoupled_kd_loss(z, z.clone(), torch.tensor(Y))) == pytest.approx(0, abs=1e-12)
    z_s, z_t, y = _t([[1.0, -1.0], [0.0, 2.0]]), _t([[0.0, 1.0], [3.0, 0.0]]), torch.tensor([0, 1])
    nckd = decoupled_kd_loss(z_s, z_t, y, alpha_tckd=0.0, beta_nckd=1.0)
    assert float(nckd) == 0.0
    tckd = decoupled_kd_loss(z_s, z_t, y, alpha_tckd=1.0, beta_nckd=5.0, temperature=2.0)
    kd = distillation_loss(z_s, z_t, y, alpha=1.0, temperature=2.0)
    assert float(tckd) == pytest.approx(float(kd), abs=1e-12)  # binary: TCKD is the KL


def test_decoupled_kd_gradient_and_confident_teacher():
    z_s = _t(Z_S).requires_grad_(True)
    z_t = _t([[0.0, 300.0, -300.0], [200.0, 0.0, 0.0]]).requires_grad_(True)
    loss = decoupled_kd_loss(z_s, z_t, torch.tensor(Y), temperature=1.0)
    loss.backward()
    assert math.isfinite(float(loss.detach()))
    assert z_t.grad is None
    assert torch.all(torch.isfinite(z_s.grad)) and float(z_s.grad.abs().sum()) > 0


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha_tckd": -1.0}, "alpha_tckd"),
    ({"beta_nckd": float("nan")}, "beta_nckd"),
    ({"temperature": 0.0}, "temperature"),
])
def test_decoupled_kd_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        decoupled_kd_loss(_t(Z_S), _t(Z_T), torch.tensor(Y), **kwargs)
    with pytest.raises(ValueError, match=match):
        DecoupledDistillationLoss(**kwargs)


def test_decoupled_kd_shape_errors():
    with pytest.raises(ValueError, match="same shape"):
        decoupled_kd_loss(_t(Z_S), _t(Z_T)[:, :2], torch.tensor(Y))
    with pytest.raises(ValueError, match="two classes"):
        decoupled_kd_loss(_t([[1.0]]), _t([[2.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="weight"):
        DecoupledDistillationLoss(weight=1.5)


def test_decoupled_distillation_module_with_and_without_teacher():
    crit = DecoupledDistillationLoss(temperature=2.0, weight=0.3, class_weight=W).double()
    z_s, z_t, y = _t(Z_S), _t(Z_T), torch.tensor(Y)
    parts = [_dkd_parts(s, t, c, 2.0) for s, t, c in zip(Z_S, Z_T, Y)]
    dkd = 4.0 * sum(tc + 8.0 * nc for tc, nc in parts) / 2
    expected = 0.3 * dkd + 0.7 * (2 * NLL[0] + NLL[1]) / 3
    assert expected == pytest.approx(4.578911391540473, abs=1e-10)
    assert float(crit(z_s, y, z_t)) == pytest.approx(expected, abs=1e-9)
    assert float(crit(z_s, y)) == pytest.approx(1.1397808447418296, abs=1e-9)  # CE only
    ce_only = DecoupledDistillationLoss(weight=0.0, class_weight=W).double()
    assert float(ce_only(z_s, y, z_t)) == pytest.approx(1.1397808447418296, abs=1e-9)
    clone = pickle.loads(pickle.dumps(crit))
    assert float(clone(z_s, y, z_t)) == pytest.approx(float(crit(z_s, y, z_t)), abs=1e-12)
    assert dict(crit.state_dict()) == {}


# ----------------------------------------------------------------- feature distillation
S_EMB = [[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]
T_EMB = [[3.0, 1.0, 0.0], [0.0, 0.0, 2.0], [1.0, 3.0, 1.0]]


def _projection(bias=True):
    proj = torch.nn.Linear(2, 3, bias=bias).double()
    with torch.no_grad():
        proj.weight.copy_(_t([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        if bias:
            proj.bias.copy_(_t([1.0, 0.0, -1.0]))
    return proj


def test_feature_distillation_formula_with_bias():
    # P s + b = [[2, 0, 0], [1, 2, 1], [2, 1, 1]]; minus T: [[-1, -1, 0], [1, 2, -1], [1, -2, 0]]
    s, t, proj = _t(S_EMB), _t(T_EMB), _projection()
    diff = [[-1, -1, 0], [1, 2, -1], [1, -2, 0]]
    flat = [v for row in diff for v in row]
    assert float(feature_distillation_loss(s, t, proj)) == pytest.approx(
        sum(v * v for v in flat) / 9, abs=1e-12)
    assert float(feature_distillation_loss(s, t, proj, distance="l1")) == pytest.approx(
        sum(abs(v) for v in flat) / 9, abs=1e-12)
    projected = [[2, 0, 0], [1, 2, 1], [2, 1, 1]]
    cos = [sum(a * b for a, b in zip(p, q))
           / math.sqrt(sum(a * a for a in p) * sum(b * b for b in q))
           for p, q in zip(projected, T_EMB)]
    assert float(feature_distillation_loss(s, t, proj, distance="cosine")) == pytest.approx(
        sum(1 - c for c in cos) / 3, abs=1e-12)


def test_feature_distillation_standardised_teacher():
    s, t, proj = _t(S_EMB), _t(T_EMB), _projection()
    cols = list(zip(*T_EMB))
    means = [sum(c) / 3 for c in cols]
    stds = [math.sqrt(sum((v - m) ** 2 for v in c) / 3) for c, m in zip(cols, means)]
    z = [[(v - m) / (sd + 1e-8) for v, m, sd in zip(row, means, stds)] for row in T_EMB]
    projected = [[2, 0, 0], [1, 2, 1], [2, 1, 1]]
    expected = sum((a - b) ** 2 for p, q in zip(projected, z) for a, b in zip(p, q)) / 9
    loss = feature_distillation_loss(s, t, proj, teacher_normalize="standardize")
    assert float(loss) == pytest.approx(expected, abs=1e-9)


def test_feature_distillation_identity_and_errors():
    e = _t(T_EMB)
    assert float(feature_distillation_loss(e, e.clone())) == 0.0
    cosine = feature_distillation_loss(e, 2 * e, distance="cosine")
    assert float(cosine) == pytest.approx(0, abs=1e-12)
    empty = feature_distillation_loss(torch.zeros(0, 2, dtype=torch.float64, requires_grad=True),
                                      torch.zeros(0, 3, dtype=torch.float64),
                                      _projection(), distance="cosine")
    assert float(empty) == 0.0 and empty.requires_grad
    with pytest.raises(ValueError, match="pass a projection"):
        feature_distillation_loss(_t(S_EMB), e)
    with pytest.raises(ValueError, match="same rows"):
        feature_distillation_loss(e, e[:2])
    with pytest.raises(ValueError, match="batch, dim"):
        feature_distillation_loss(e[None], e[None])
    with pytest.raises(ValueError, match="distance"):
        feature_distillation_loss(e, e, distance="kl")
    with pytest.raises(ValueError, match="teacher_normalize"):
        FeatureDistillationLoss(3, 3, teacher_normalize="l2")
    with pytest.raises(ValueError, match="student_dim"):
        FeatureDistillationLoss(0, 3)


def test_feature_distillation_module_owns_a_projection():
    crit = FeatureDistillationLoss(2, 3, distance="l1").double()
    assert isinstance(crit.projection, torch.nn.Linear)
    assert crit.projection.in_features == 2 and crit.projection.out_features == 3
    assert {name for name, _ in crit.named_parameters()} == {"projection.weight",
                                                             "projection.bias"}
    with torch.no_grad():
        crit.projection.weight.copy_(_projection().weight)
        crit.projection.bias.copy_(_projection().bias)
    s, t = _t(S_EMB).requires_grad_(True), _t(T_EMB).requires_grad_(True)
    loss = crit(s, t)
    assert float(loss) == pytest.approx(9 / 9, abs=1e-12)
    loss.backward()
    assert t.grad is None and s.grad is not None
    assert crit.projection.weight.grad is not None
    clone = pickle.loads(pickle.dumps(crit))
    assert float(clone(s, t)) == pytest.approx(float(loss), abs=1e-12)


def test_skorch_trains_the_criterions_projection():
    # skorch >= 0.11 builds the optimizer from get_all_learnable_params(), which
    # includes the criterion's parameters: the projection learns with the student.
    from skorch import NeuralNet

    gen = torch.Generator().manual_seed(0)
    X = torch.randn(64, 4, generator=gen)
    teacher = X @ torch.randn(4, 5, generator=gen)
    torch.manual_seed(0)
    net = NeuralNet(torch.nn.Linear(4, 3), criterion=FeatureDistillationLoss(3, 5),
                    optimizer=torch.optim.Adam, lr=3e-2, max_epochs=40, batch_size=64,
                    train_split=None, verbose=0)
    net.initialize()
    in_optimizer = {id(p) for group in net.optimizer_.param_groups for p in group["params"]}
    assert {id(p) for p in net.criterion_.projection.parameters()} <= in_optimizer
    start = net.criterion_.projection.weight.detach().clone()
    net.fit(X.numpy(), teacher.numpy())
    assert not torch.allclose(start, net.criterion_.projection.weight)
    losses = net.history[:, "train_loss"]
    assert losses[-1] < 0.5 * losses[0]


# ----------------------------------------------------------------- teacher ensembles
def test_average_teacher_logits_probs_and_logits():
    z1, z2 = [[0.0, 1.0, 2.0]], [[2.0, 0.0, 0.0]]
    p1, p2 = _softmax(z1[0]), _softmax(z2[0])
    mean_p = [(a + b) / 2 for a, b in zip(p1, p2)]
    out = average_teacher_logits([np.array(z1), np.array(z2)])
    assert isinstance(out, np.ndarray) and out.shape == (1, 3)
    assert out[0].tolist() == pytest.approx([math.log(v) for v in mean_p], abs=1e-12)
    out = average_teacher_logits([np.array(z1), np.array(z2)], mode="logits")
    assert out.tolist() == [[1.0, 0.5, 1.0]]
    weighted = average_teacher_logits([np.array(z1), np.array(z2)], weights=[3, 1])
    assert np.exp(weighted[0]).tolist() == pytest.approx(
        [0.75 * a + 0.25 * b for a, b in zip(p1, p2)], abs=1e-12)
    zero = average_teacher_logits([np.array(z1), np.array(z2)], weights=[1, 0])
    assert np.exp(zero[0]).tolist() == pytest.approx(p1, abs=1e-12)


def test_average_teacher_logits_tensors_feed_the_distillation_loss():
    teachers = [_t(Z_T), _t(Z_S), _t([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])]
    soft = average_teacher_logits(teachers)
    assert isinstance(soft, torch.Tensor) and soft.dtype == torch.float64
    # one teacher: its log-softmax, i.e. the same soft labels
    single = average_teacher_logits([_t(Z_T)])
    assert torch.allclose(single, torch.log_softmax(_t(Z_T), dim=1), atol=1e-12)
    # KD on the averaged soft labels = KL to the mean teacher probabilities
    z_s = _t([[0.2, -0.3, 1.0], [0.0, 1.0, 0.0]])
    mean_p = [[sum(_softmax(z[i])[k] for z in (Z_T, Z_S, [[0.0] * 3, [1.0] * 3])) / 3
               for k in range(3)] for i in range(2)]
    expected = sum(_kl(p, _softmax(s)) for p, s in zip(mean_p, z_s.tolist())) / 2
    loss = distillation_loss(z_s, soft, torch.tensor(Y), alpha=1.0, temperature=1.0)
    assert float(loss) == pytest.approx(expected, abs=1e-12)


def test_average_teacher_logits_errors():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="non-empty list"):
        average_teacher_logits([])
    with pytest.raises(ValueError, match="non-empty list"):
        average_teacher_logits(z)
    with pytest.raises(ValueError, match="same shape"):
        average_teacher_logits([z, np.zeros((2, 4))])
    with pytest.raises(ValueError, match="n_samples, n_classes"):
        average_teacher_logits([np.zeros(3), np.zeros(3)])
    with pytest.raises(ValueError, match="mode"):
        average_teacher_logits([z], mode="votes")
    with pytest.raises(ValueError, match="weights"):
        average_teacher_logits([z, z], weights=[1.0])
    with pytest.raises(ValueError, match="weights"):
        average_teacher_logits([z, z], weights=[-1.0, 2.0])
