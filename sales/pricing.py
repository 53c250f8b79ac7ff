"""Quote and order arithmetic: pure functions over `Decimal`, no database.

The rule (documented in docs/sales.md, "Quotes, approvals and orders"): every amount of a line is rounded to
cents, half up (0.005 -> 0.01), as soon as it is computed, and the quote's totals are the sums of the rounded
line amounts. So the lines printed on a quote always add up to its totals, to the cent:

    line subtotal = round(quantity * unit price)
    line discount = round(line subtotal * discount % / 100)
    line tax      = round((line subtotal - line discount) * tax rate % / 100)
    line total    = line subtotal - line discount + line tax          (exact: already in cents)

    quote subtotal = Σ line subtotal, discount = Σ line discount, tax = Σ line tax, total = Σ line total

Tax is charged on the discounted amount. The largest line discount % decides whether a quote needs approval.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


def to_cents(value: Decimal | int | str) -> Decimal:
    """`value` rounded to cents, half up (away from zero for a tie: 0.005 -> 0.01, 2.675 -> 2.68)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineAmounts:
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    total: Decimal
    discount_pct: Decimal = ZERO


def line_amounts(
    *, quantity: Decimal, unit_price: Decimal, discount_pct: Decimal = ZERO, tax_rate: Decimal = ZERO
) -> LineAmounts:
    """The amounts of one line, each rounded to cents half up (see the module docstring)."""
    quantity, unit_price = Decimal(quantity), Decimal(unit_price)
    discount_pct, tax_rate = Decimal(discount_pct), Decimal(tax_rate)
    subtotal = to_cents(quantity * unit_price)
    discount = to_cents(subtotal * discount_pct / HUNDRED)
    tax = to_cents((subtotal - discount) * tax_rate / HUNDRED)
    return LineAmounts(
        subtotal=subtotal,
        discount=discount,
        tax=tax,
        total=subtotal - discount + tax,
        discount_pct=discount_pct,
    )


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal = ZERO
    discount: Decimal = ZERO
    tax: Decimal = ZERO
    total: Decimal = ZERO
    max_discount_pct: Decimal = ZERO
    lines: int = 0


def totals(lines: Iterable[LineAmounts]) -> Totals:
    """The sums of already-rounded line amounts, and the largest line discount %."""
    subtotal = discount = tax = total = ZERO
    max_discount = ZERO
    count = 0
    for line in lines:
        count += 1
        subtotal += line.subtotal
        discount += line.discount
        tax += line.tax
        total += line.total
        max_discount = max(max_discount, line.discount_pct)
    return Totals(
        subtotal=subtotal,
        discount=discount,
        tax=tax,
        total=total,
        max_discount_pct=max_discount,
        lines=count,
    )


def approval_reasons(
    summary: Totals, *, discount_limit_pct: Decimal, total_limit: Decimal
) -> list[dict[str, str]]:
    """Why a quote with these totals needs a manager's approval (empty: it does not). A limit is allowed
    as such: only a discount *above* the limit % or a total *above* the limit needs approval."""
    reasons = []
    if summary.max_discount_pct > discount_limit_pct:
        reasons.append(
            {
                "rule": "discount",
                "value": f"{summary.max_discount_pct.normalize():f}",
                "limit": f"{Decimal(discount_limit_pct).normalize():f}",
            }
        )
    if summary.total > total_limit:
        reasons.append({"rule": "total", "value": f"{summary.total:.2f}", "limit": f"{total_limit:.2f}"})
    return reasons
