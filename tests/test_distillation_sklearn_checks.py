"""sklearn's own estimator checks on EEGTeacher, ECGStudent and DistilledECGStager.

The networks are MLPs here because sklearn's checks feed tiny 2-D feature arrays; the
convolutional networks are exercised by the other tests.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sleepkd import DistilledECGStager, ECGStudent, EEGTeacher

_FAST = dict(module="mlp", max_epochs=40, lr=1e-2, batch_size=32,
             validation_fraction=None, random_state=0, verbose=0)

#: Checks we knowingly skip, and why: none at present. (A seeded fit is
#: deterministic, so even check_fit_idempotent and the pickling checks pass.)
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


def _expected(estimator):
    return EXPECTED_FAILED_CHECKS


@parametrize_with_checks(
    [
        EEGTeacher(**_FAST),
        ECGStudent(**_FAST),
        DistilledECGStager(student=ECGStudent(**_FAST), strategy="baseline",
                           validation_fraction=None, random_state=0),
    ],
    expected_failed_checks=_expected,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
