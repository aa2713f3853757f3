"""FitNets-style feature distillation: the formula, and the projection is trained."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sleepkd.distillation._losses import FeatureDistillationLoss, feature_distillation_loss


def test_formula_by_hand():
    s = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    proj = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    # P s = [[1, 0, 1], [0, 2, 2]]; differences [[-2, -1, 1], [0, 2, 0]]
    assert float(feature_distillation_loss(s, t, proj)) == pytest.approx((4 + 1 + 1 + 4) / 6)
    assert float(feature_distillation_loss(s, t, proj, distance="l1")) == pytest.approx(6 / 6)
    cos = [(3 + 0 + 0) / (np.sqrt(2) * np.sqrt(10)), (0 + 0 + 4) / (np.sqrt(8) * 2)]
    assert float(feature_distillation_loss(s, t, proj, distance="cosine")) == pytest.approx(
        np.mean([1 - c for c in cos]), rel=1e-6)


def test_teacher_gets_no_gradient_and_shapes_are_checked():
    s = torch.randn(4, 3, requires_grad=True)
    t = torch.randn(4, 3, requires_grad=True)
    feature_distillation_loss(s, t).backward()
    assert s.grad is not None and t.grad is None
    with pytest.raises(ValueError, match="same rows"):
        feature_distillation_loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="distance"):
        FeatureDistillationLoss(3, 3, distance="kl")


def test_the_projection_is_trained_in_stage_two():
    from sleepkd import DistilledECGStager, ECGNightStudent, EEGNightTeacher
    from sleepkd.distillation import _night_nets
    from tests._night_toy import TinyNightNet, make_toy_nights

    X, X_eeg, y, nights, groups = make_toy_nights(n_subjects=4, seed=5)
    seen = {}

    class Spy(_night_nets.NightTransferNet):
        def initialize_criterion(self, *args, **kwargs):
            out = super().initialize_criterion(*args, **kwargs)
            seen["start"] = self.criterion_.projection.weight.detach().clone()
            seen["criterion"] = self.criterion_
            return out

    monkey = pytest.MonkeyPatch()
    monkey.setattr(_night_nets, "NightTransferNet", Spy)
    try:
        DistilledECGStager(
            teacher=EEGNightTeacher(module=TinyNightNet, max_epochs=2, verbose=0),
            student=ECGNightStudent(module=TinyNightNet, max_epochs=1, verbose=0),
            strategy="fd+cl", pretrain_epochs=3, random_state=0,
        ).fit(X, y, X_eeg=X_eeg, groups=groups, nights=nights)
    finally:
        monkey.undo()
    after = seen["criterion"].projection.weight.detach()
    assert not torch.allclose(seen["start"], after)
