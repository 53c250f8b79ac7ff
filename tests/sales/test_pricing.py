"""sales/pricing.py against figures computed by hand (the rule: each line amount rounded to cents, half up;
quote totals are sums of the rounded line amounts)."""

from decimal import Decimal as D

import pytest

from sales import pricing


def test_a_line_with_discount_and_tax_by_hand():
    # 3 x 19.99 = 59.97; 10 % of it = 5.997 -> 6.00; (59.97 - 6.00) x 20 % = 10.794 -> 10.79;
    # 59.97 - 6.00 + 10.79 = 64.76
    line = pricing.line_amounts(
        quantity=D("3"), unit_price=D("19.99"), discount_pct=D("10"), tax_rate=D("20")
    )
    assert (line.subtotal, line.discount, line.tax, line.total) == (
        D("59.97"),
        D("6.00"),
        D("10.79"),
        D("64.76"),
    )


@pytest.mark.parametrize(
    ("quantity", "unit_price", "discount_pct", "tax_rate", "expected"),
    [
        # discount 0.05 x 10 % = 0.005 -> 0.01 (half up; banker's rounding would give 0.00)
        ("1", "0.05", "10", "0", (D("0.05"), D("0.01"), D("0.00"), D("0.04"))),
        # tax 0.10 x 5 % = 0.005 -> 0.01
        ("1", "0.10", "0", "5", (D("0.10"), D("0.00"), D("0.01"), D("0.11"))),
        # subtotal 0.5 x 0.01 = 0.005 -> 0.01
        ("0.5", "0.01", "0", "0", (D("0.01"), D("0.00"), D("0.00"), D("0.01"))),
        # 2.5 x 1.07 = 2.675 exactly in Decimal -> 2.68 (as a float it would be 2.67499... -> 2.67)
        ("2.5", "1.07", "0", "0", (D("2.68"), D("0.00"), D("0.00"), D("2.68"))),
        # 0.004 rounds down: 1 x 0.04 x 10 % = 0.004 -> 0.00
        ("1", "0.04", "10", "0", (D("0.04"), D("0.00"), D("0.00"), D("0.04"))),
        # 100 % discount leaves nothing to tax
        ("2", "50.00", "100", "20", (D("100.00"), D("100.00"), D("0.00"), D("0.00"))),
        # 1.333 x 3.00 = 3.999 -> 4.00; 12.5 % of 4.00 = 0.50; 3.50 x 7.7 % = 0.2695 -> 0.27
        ("1.333", "3.00", "12.5", "7.7", (D("4.00"), D("0.50"), D("0.27"), D("3.77"))),
    ],
)
def test_each_line_amount_is_rounded_half_up_to_cents(quantity, unit_price, discount_pct, tax_rate, expected):
    line = pricing.line_amounts(
        quantity=D(quantity), unit_price=D(unit_price), discount_pct=D(discount_pct), tax_rate=D(tax_rate)
    )
    assert (line.subtotal, line.discount, line.tax, line.total) == expected


def test_quote_totals_are_sums_of_rounded_lines_and_keep_the_largest_discount():
    lines = [
        # 2 x 100.00 = 200.00; 15 % = 30.00; 170.00 x 8 % = 13.60; total 183.60
        pricing.line_amounts(quantity=D("2"), unit_price=D("100.00"), discount_pct=D("15"), tax_rate=D("8")),
        # 0.05, discount 0.005 -> 0.01, total 0.04
        pricing.line_amounts(quantity=D("1"), unit_price=D("0.05"), discount_pct=D("10")),
    ]
    summary = pricing.totals(lines)
    assert (summary.subtotal, summary.discount, summary.tax, summary.total) == (
        D("200.05"),
        D("30.01"),
        D("13.60"),
        D("183.64"),
    )
    assert summary.max_discount_pct == D("15") and summary.lines == 2


def test_rounding_per_line_is_what_the_quote_adds_up():
    # Three lines each taxed 0.10 x 5 % = 0.005 -> 0.01: the quote's tax is 0.03 (the printed lines add up),
    # not round(0.015) = 0.02 as rounding the quote's tax once would give.
    line = pricing.line_amounts(quantity=D("1"), unit_price=D("0.10"), tax_rate=D("5"))
    summary = pricing.totals([line, line, line])
    assert summary.tax == D("0.03") and summary.total == D("0.33")


def test_no_lines_make_zero_totals():
    assert pricing.totals([]) == pricing.Totals()


def test_approval_is_needed_only_above_the_limits():
    rules = {"discount_limit_pct": D("15"), "total_limit": D("50000")}
    at_limits = pricing.Totals(total=D("50000.00"), max_discount_pct=D("15"))
    assert pricing.approval_reasons(at_limits, **rules) == []
    above = pricing.Totals(total=D("50000.01"), max_discount_pct=D("15.01"))
    assert pricing.approval_reasons(above, **rules) == [
        {"rule": "discount", "value": "15.01", "limit": "15"},
        {"rule": "total", "value": "50000.01", "limit": "50000.00"},
    ]


def test_to_cents_rounds_ties_away_from_zero():
    assert [pricing.to_cents(D(v)) for v in ("0.005", "0.015", "0.025", "1.0049", "-0.005")] == [
        D("0.01"),
        D("0.02"),
        D("0.03"),
        D("1.00"),
        D("-0.01"),
    ]
