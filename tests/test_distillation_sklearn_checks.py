"""sklearn's own estimator checks on every estimator: the per-epoch EEGTeacher and
ECGStudent, the night-level EEGNightTeacher and ECGNightStudent, DistilledECGStager
with either kind of student, and a SeedEnsemble of either kind of student.

The networks are small here (MLPs, a one-layer convolutional night network) because
sklearn's checks feed tiny 2-D feature arrays; the registered networks are exercised by
the other tests.
"""

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from sleepkd import (DistilledECGStager, ECGNightStudent, ECGStudent, EEGNightTeacher, EEGTeacher,
                     SeedEnsemble)
from tests._night_toy import TinyNightNet

_FAST = dict(module="mlp", max_epochs=40, lr=1e-2, batch_size=32,
             validation_fraction=None, random_state=0, verbose=0)

#: Checks we knowingly skip, and why: none at present. (A seeded fit is
#: deterministic, so even check_fit_idempotent and the pickling checks pass; and
#: inference runs on fixed-size batches, so check_methods_subset_invariance passes
#: with any number of torch threads, see the test below.)
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


#: The night-level models read a row together with the rest of its night: without
#: night ids the rows passed are one night, so a subset or a reordering of the rows is
#: another night, and its predictions differ by design.
NIGHT_EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_methods_subset_invariance":
        "a row's prediction depends on the other rows of its night (sequence model)",
    "check_methods_sample_order_invariance":
        "reordering rows reorders the night the sequence model reads",
}

# a small convolutional night network (a GRU over sklearn's 300-row "nights" is slow)
_NIGHT = dict(module=TinyNightNet, window=None, max_epochs=40, lr=2e-2,
              validation_fraction=None, random_state=0, verbose=0)


def _expected(estimator):
    if getattr(estimator, "reads_nights", False) or getattr(
            getattr(estimator, "student", None), "reads_nights", False):
        return NIGHT_EXPECTED_FAILED_CHECKS
    return EXPECTED_FAILED_CHECKS


@parametrize_with_checks(
    [
        EEGTeacher(**_FAST),
        ECGStudent(**_FAST),
        DistilledECGStager(student=ECGStudent(**_FAST), strategy="baseline",
                           validation_fraction=None, random_state=0),
        EEGNightTeacher(**_NIGHT),
        ECGNightStudent(**_NIGHT),
        DistilledECGStager(student=ECGNightStudent(**_NIGHT), strategy="baseline",
                           validation_fraction=None, random_state=0),
        SeedEnsemble(ECGStudent(**_FAST), n_members=2, random_state=0),
        SeedEnsemble(ECGNightStudent(**_NIGHT), n_members=2, random_state=0),
    ],
    expected_failed_checks=_expected,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture
def _two_threads():
    """The suite runs torch on one thread (conftest); users' check_estimator does not."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(n_threads)


@pytest.mark.parametrize("module", ["mlp", "compact"])
def test_predictions_do_not_depend_on_batch_composition(module, _two_threads):
    from tests._toy import make_toy_paired

    X, _, y, _ = make_toy_paired(n_subjects=2, n_per_subject=40)
    params = dict(_FAST, max_epochs=2, batch_size=16)
    if module == "compact":
        params.update(module="compact", module_params={"widths": (4, 4, 4, 4, 4),
                                                       "bottleneck_width": 4,
                                                       "pools": (2, 2, 2, 2, 2)})
    student = ECGStudent(**params).fit(X, y)
    full = student.predict_proba(X)
    rng = np.random.default_rng(0)
    for size in (1, 5, 16, 17, 33, 79):
        rows = np.sort(rng.choice(len(X), size=size, replace=False))
        # bit for bit, not merely close: a row's prediction ignores its batch mates
        np.testing.assert_array_equal(student.predict_proba(X[rows]), full[rows])
