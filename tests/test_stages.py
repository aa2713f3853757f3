"""Tests for the stage vocabularies and :func:`sleepkd.stages.to_scheme`."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import sleepkd.stages
from sleepkd.stages import SCHEMES, UNSCORED, UNSCORED_LABELS, to_scheme

# label -> expected (5class, 4class, 3class); None = refused (too coarse).
EXPECTED = {
    # AASM
    "W": ("W", "W", "W"), "N1": ("N1", "L", "N"), "N2": ("N2", "L", "N"),
    "N3": ("N3", "D", "N"), "R": ("R", "R", "R"),
    # R&K (numbers and S-prefixed), with 3 and 4 merged into N3
    "1": ("N1", "L", "N"), "2": ("N2", "L", "N"), "3": ("N3", "D", "N"),
    "4": ("N3", "D", "N"), "S1": ("N1", "L", "N"), "S2": ("N2", "L", "N"),
    "S3": ("N3", "D", "N"), "S4": ("N3", "D", "N"), "REM": ("R", "R", "R"),
    "N4": ("N3", "D", "N"),
    # no stage
    "MT": ("?", "?", "?"), "M": ("?", "?", "?"), "?": ("?", "?", "?"),
    "U": ("?", "?", "?"), "UNS": ("?", "?", "?"), "UNSCORED": ("?", "?", "?"),
    # coarse vocabularies: only to the same or a coarser scheme
    "L": (None, "L", "N"), "D": (None, "D", "N"), "N": (None, None, "N"),
}
SCHEME_ORDER = ("5class", "4class", "3class")


def test_expected_table_covers_every_known_label():
    assert set(EXPECTED) == sleepkd.stages._known_labels()


@pytest.mark.parametrize("scheme", SCHEME_ORDER)
@pytest.mark.parametrize("label", sorted(EXPECTED))
def test_every_label_to_every_scheme(label, scheme):
    expected = EXPECTED[label][SCHEME_ORDER.index(scheme)]
    if expected is None:
        with pytest.raises(ValueError, match="cannot be mapped to the finer scheme"):
            to_scheme([label], scheme)
    else:
        out = to_scheme([label], scheme)
        assert out.tolist() == [expected]
        assert expected in SCHEMES[scheme] + (UNSCORED,)


def test_scheme_vocabularies():
    assert SCHEMES == {"5class": ("W", "N1", "N2", "N3", "R"),
                       "4class": ("W", "L", "D", "R"), "3class": ("W", "N", "R")}
    assert UNSCORED == "?" and UNSCORED in UNSCORED_LABELS


def test_docstring_example():
    assert to_scheme(["W", "1", "2", "3", "4", "R", "MT"], "4class").tolist() == [
        "W", "L", "L", "D", "D", "R", "?"]
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(to_scheme, "to_scheme", globs={}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries >= 2


def test_default_scheme_is_5class():
    assert to_scheme(["4", "S2"]).tolist() == ["N3", "N2"]


def test_order_and_length_preserved_on_long_mixed_sequence():
    rng = np.random.default_rng(0)
    labels = np.array(["W", "1", "N2", "3", "4", "REM", "MT", "N3", "R"])[
        rng.integers(0, 9, 1000)]
    out = to_scheme(labels, "3class")
    expected = [EXPECTED[label][2] for label in labels]
    assert out.shape == (1000,) and out.tolist() == expected


def test_mixed_vocabularies():
    assert to_scheme(["W", "2", "N3", "REM", "S1", "?"], "5class").tolist() == [
        "W", "N2", "N3", "R", "N1", "?"]
    assert to_scheme(["L", "D", "N1", "3"], "3class").tolist() == ["N", "N", "N", "N"]


def test_case_and_whitespace_insensitive():
    out = to_scheme(["w", "n1", " rem ", "Mt", "s4", "r", "unscored"], "5class")
    assert out.tolist() == ["W", "N1", "R", "?", "N3", "R", "?"]


def test_object_array_and_tuple_input():
    assert to_scheme(np.array(["W", "N1"], dtype=object)).tolist() == ["W", "N1"]
    assert to_scheme(("R", "2")).tolist() == ["R", "N2"]


def test_output_dtype_is_short_string():
    out = to_scheme(["W", "N1"], "5class")
    assert out.dtype == np.dtype("<U2")


def test_unknown_labels_listed_in_message():
    with pytest.raises(ValueError) as info:
        to_scheme(["W", "X", "N2", "Stage 9", "X"], "5class")
    message = str(info.value)
    assert "'X'" in message and "'Stage 9'" in message
    assert "'W'" not in message.split(";")[0]  # only the unknown ones are listed first
    assert "known labels" in message


def test_coarse_to_fine_refused_and_named():
    with pytest.raises(ValueError, match=r"\['L'\].*'5class'"):
        to_scheme(["W", "L"], "5class")
    with pytest.raises(ValueError, match=r"\['N'\].*'4class'"):
        to_scheme(["N", "W"], "4class")
    with pytest.raises(ValueError, match="cannot be mapped"):
        to_scheme(["D"], "5class")


def test_unknown_scheme():
    with pytest.raises(ValueError, match="Unknown scheme '2class'"):
        to_scheme(["W"], "2class")


@pytest.mark.parametrize("y", [[1, 2, 3], np.array([0.0, 1.0]), np.array([True, False])])
def test_non_string_input_refused(y):
    with pytest.raises(ValueError, match="must be strings"):
        to_scheme(y)


@pytest.mark.parametrize("y", [[["W", "N1"], ["N2", "R"]], "W"])
def test_non_1d_input_refused(y):
    with pytest.raises(ValueError, match="must be 1-D"):
        to_scheme(y)


def test_empty_string_array_gives_empty_output():
    out = to_scheme(np.array([], dtype=str), "4class")
    assert out.shape == (0,)


def test_empty_list_gives_empty_output():
    assert to_scheme([], "5class").shape == (0,)


def test_integers_in_object_array_refused():
    with pytest.raises(ValueError, match="must be strings"):
        to_scheme(np.array([1, 2], dtype=object))
