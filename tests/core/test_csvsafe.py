"""CSV cells that a spreadsheet would run as a formula are written as text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.core.csvsafe import TRIGGERS, neutralise, restore


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'already quoted", "''already quoted"),
        ("-12.50", "-12.50"),
        ("+3", "+3"),
        ("1e-3", "1e-3"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_cells_are_neutralised_and_numbers_stay_numbers(value, written):
    assert neutralise(value) == written
    assert restore(written) == value


def test_values_that_are_not_text_pass_through():
    assert neutralise(None) is None
    assert neutralise(-3) == -3


@given(st.text())
def test_restore_gives_back_what_was_written_and_no_cell_starts_a_formula(value):
    cell = neutralise(value)
    assert restore(cell) == value
    if cell.startswith(TRIGGERS):
        float(cell)  # only a plain number may start with + or -
