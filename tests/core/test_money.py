"""Parts that add up to their whole (portal.core.money.round_parts): examples and properties."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from portal.core.money import CENT, money, round_field, round_parts

D = Decimal


def test_the_cent_rounding_each_part_alone_loses_is_given_to_the_largest_remainder():
    parts = [D("39.875")] * 3  # each alone: 39.88, three of them 119.64; the total is 119.62
    assert sum(money(p) for p in parts) == D("119.64") and money(sum(parts)) == D("119.62")
    assert round_parts(parts) == [D("39.88"), D("39.87"), D("39.87")]
    parts = [D("33.333"), D("33.333"), D("33.334")]  # alone: 99.99; the total is 100.00
    assert round_parts(parts) == [D("33.33"), D("33.33"), D("33.34")]
    parts = [D("0.005")] * 3  # total 0.015 → 0.02: the first two of equal remainders
    assert round_parts(parts) == [D("0.01"), D("0.01"), D("0.00")]


def test_credits_none_and_the_empty_breakdown():
    assert round_parts([D("-1.005"), D("3.333"), None]) == [D("-1.00"), D("3.33"), D("0.00")]
    assert round_parts([]) == []
    rows = [{"a": D("1.005")}, {"a": None}, {"a": D("1.005")}]
    round_field(rows, "a")
    assert [r["a"] for r in rows] == [D("1.01"), None, D("1.00")]


amounts = st.lists(
    st.decimals(min_value=-1000, max_value=100000, places=6, allow_nan=False),
    min_size=1,
    max_size=60,
)


@given(amounts)
def test_the_parts_sum_to_the_rounded_total_and_each_is_within_a_cent(values):
    parts = round_parts(values)
    assert sum(parts) == money(sum(values))
    for exact, part in zip(values, parts, strict=True):
        assert part == part.quantize(CENT)
        assert abs(part - exact) < CENT


@given(amounts)
def test_a_part_that_is_already_in_cents_is_never_changed(values):
    in_cents = [v.quantize(CENT) for v in values]
    assert round_parts(in_cents) == in_cents
