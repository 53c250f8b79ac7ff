"""A/B tests: the significance tests, the decision rule, and the numbers of a test's sample.

The statistics are pure functions of counts (no scipy; the standard library's `math` is enough):

- rates (open rate, click rate, conversions per recipient): the pooled two-proportion z-test, two-sided;
  z is standard normal under "no difference", so p = erfc(|z| / sqrt(2)). The normal approximation is the
  textbook one for binomial counts and holds well above the minimum sample a test needs anyway
  (n·p and n·(1 - p) of at least ~5 per variant: 100 recipients and a 5 % rate already give 5);
- revenue per recipient: Welch's unequal-variances t-test on each recipient's revenue (0 for recipients
  who brought none), two-sided, with the Welch-Satterthwaite degrees of freedom; the Student t tail is
  computed exactly through the regularized incomplete beta function (continued fraction), since revenue is
  skewed and samples can be small, where a normal approximation would overstate the confidence.

The decision (`decide`): the best variant (highest observed metric) is compared with every other one; with
k variants that is k - 1 comparisons, so each p-value is Bonferroni-corrected (multiplied by k - 1, capped
at 1) to keep the chance of a false winner at most 1 - confidence level. The best variant wins when every
corrected p is at most 1 - confidence level; any variant with fewer recipients than the minimum sample, or
any comparison short of the level, makes the test inconclusive and the default variant is sent.
docs/marketing.md ("A/B tests") states the same with the formulas.
"""

from __future__ import annotations

import datetime
import math
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection

# --- Distributions -----------------------------------------------------------------------------------------


def normal_two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny, epsilon = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 1000):
        m2 = 2 * m
        numerator = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        result *= d * c
        numerator = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        result *= step
        if abs(step - 1.0) < epsilon:
            break
    return result


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The continued fraction converges fast for x < (a + 1) / (a + b + 2); otherwise use the symmetry
    # I_x(a, b) = 1 - I_{1-x}(b, a).
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` (possibly fractional) degrees of freedom:
    I_{df / (df + t²)}(df / 2, 1 / 2)."""
    if math.isinf(t):
        return 0.0
    return regularized_incomplete_beta(df / (df + t * t), df / 2.0, 0.5)


# --- The two tests -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestResult:
    statistic: float  # z or t
    p_value: float  # two-sided
    df: float | None = None  # Welch's degrees of freedom


def two_proportion_z_test(successes_a: int, n_a: int, successes_b: int, n_b: int) -> TestResult:
    """Pooled two-proportion z-test: z = (p_a - p_b) / sqrt(p̂ (1 - p̂) (1/n_a + 1/n_b)), p̂ the pooled rate.
    No spread at all (everyone or no one succeeded in both): z = 0, p = 1."""
    if n_a <= 0 or n_b <= 0:
        return TestResult(statistic=0.0, p_value=1.0)
    rate_a, rate_b = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    variance = pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b)
    if variance <= 0.0:
        return TestResult(statistic=0.0, p_value=1.0)
    z = (rate_a - rate_b) / math.sqrt(variance)
    return TestResult(statistic=z, p_value=normal_two_sided_p(z))


def sample_variance(n: int, total: float, total_squares: float) -> float:
    """The sample variance (n - 1 in the denominator) from a count, a sum and a sum of squares."""
    if n < 2:
        return 0.0
    mean = total / n
    return max(0.0, (total_squares - n * mean * mean) / (n - 1))


def welch_t_test(mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int) -> TestResult:
    """Welch's t-test: t = (m_a - m_b) / sqrt(s²_a/n_a + s²_b/n_b), with
    df = (s²_a/n_a + s²_b/n_b)² / ((s²_a/n_a)²/(n_a - 1) + (s²_b/n_b)²/(n_b - 1)).
    Fewer than two values on a side: no test (p = 1). No spread on either side: the means are certainly
    equal (p = 1) or certainly different (p = 0)."""
    if n_a < 2 or n_b < 2:
        return TestResult(statistic=0.0, p_value=1.0)
    share_a, share_b = var_a / n_a, var_b / n_b
    standard_error = math.sqrt(share_a + share_b)
    difference = mean_a - mean_b
    if standard_error == 0.0:
        if difference == 0.0:
            return TestResult(statistic=0.0, p_value=1.0)
        return TestResult(statistic=math.copysign(math.inf, difference), p_value=0.0)
    t = difference / standard_error
    df = (share_a + share_b) ** 2 / (share_a**2 / (n_a - 1) + share_b**2 / (n_b - 1))
    return TestResult(statistic=t, p_value=student_t_two_sided_p(t, df), df=df)


def bonferroni(p_value: float, comparisons: int) -> float:
    """A p-value corrected for `comparisons` tests made at once: min(1, p · comparisons)."""
    return min(1.0, p_value * max(1, comparisons))


# --- The decision ------------------------------------------------------------------------------------------

PROPORTION = "proportion"  # open rate, click rate, conversions per recipient
MEAN = "mean"  # revenue per recipient


@dataclass(frozen=True)
class Arm:
    """One variant's sample: recipients, and either successes (a rate) or the sum and sum of squares of
    each recipient's value (revenue)."""

    key: Hashable
    label: str
    recipients: int
    successes: int = 0
    total: float = 0.0
    total_squares: float = 0.0

    def value(self, kind: str) -> float:
        """The metric: the success rate, or the mean value per recipient (0 without recipients)."""
        if not self.recipients:
            return 0.0
        return (self.successes if kind == PROPORTION else self.total) / self.recipients


@dataclass(frozen=True)
class Comparison:
    other: Hashable  # the variant the best one was compared with
    statistic: float
    p_value: float  # uncorrected
    adjusted_p: float  # Bonferroni-corrected
    df: float | None = None


@dataclass(frozen=True)
class Decision:
    WINNER = "winner"
    INCONCLUSIVE = "inconclusive"
    # Why, when inconclusive:
    TOO_FEW_VARIANTS = "too_few_variants"
    SMALL_SAMPLE = "small_sample"
    NOT_SIGNIFICANT = "not_significant"

    outcome: str
    best: Hashable | None  # the variant with the highest observed metric
    winner: Hashable | None  # the best variant when it won, else None
    p_value: float | None  # the largest corrected p of the best against the others (None: not tested)
    confidence: float | None  # 1 - p_value
    reason: str = ""
    small: tuple[Hashable, ...] = ()  # the variants under the minimum sample
    comparisons: tuple[Comparison, ...] = field(default=())


def compare(best: Arm, other: Arm, kind: str) -> TestResult:
    """The significance test of the metric between two variants."""
    if kind == PROPORTION:
        return two_proportion_z_test(best.successes, best.recipients, other.successes, other.recipients)
    return welch_t_test(
        best.value(MEAN),
        sample_variance(best.recipients, best.total, best.total_squares),
        best.recipients,
        other.value(MEAN),
        sample_variance(other.recipients, other.total, other.total_squares),
        other.recipients,
    )


def decide(arms: Sequence[Arm], *, kind: str, confidence_level: float, min_sample: int) -> Decision:
    """The outcome of a test, from each variant's sample (the rule in the module docstring).

    Ties for the best value go to the variant listed first (by label); a tie is never significant."""
    arms = list(arms)
    if len(arms) < 2:
        best = arms[0].key if arms else None
        return Decision(Decision.INCONCLUSIVE, best, None, None, None, Decision.TOO_FEW_VARIANTS)
    best = max(arms, key=lambda arm: arm.value(kind))  # max() keeps the first of equal values
    others = [arm for arm in arms if arm is not best]
    comparisons = []
    for other in others:
        result = compare(best, other, kind)
        comparisons.append(
            Comparison(
                other=other.key,
                statistic=result.statistic,
                p_value=result.p_value,
                adjusted_p=bonferroni(result.p_value, len(others)),
                df=result.df,
            )
        )
    small = tuple(arm.key for arm in arms if arm.recipients < min_sample)
    if small:
        return Decision(
            Decision.INCONCLUSIVE,
            best.key,
            None,
            None,
            None,
            Decision.SMALL_SAMPLE,
            small=small,
            comparisons=tuple(comparisons),
        )
    p_value = max(comparison.adjusted_p for comparison in comparisons)
    confidence = 1.0 - p_value
    # Compared with a tolerance: 1 - 0.95 is 0.050000000000000044 in floating point.
    if p_value <= (1.0 - confidence_level) + 1e-12:
        return Decision(
            Decision.WINNER, best.key, best.key, p_value, confidence, comparisons=tuple(comparisons)
        )
    return Decision(
        Decision.INCONCLUSIVE,
        best.key,
        None,
        p_value,
        confidence,
        Decision.NOT_SIGNIFICANT,
        comparisons=tuple(comparisons),
    )


# --- The numbers of a test's sample ------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantNumbers:
    """What one variant's test sample did up to a moment."""

    variant_id: uuid.UUID
    recipients: int  # sample emails that went out (sent_at set)
    opens: int  # recipients who opened (unique)
    clicks: int  # recipients who clicked (unique)
    conversions: int  # recipients with an opportunity won on or after the day of their email
    revenue: Decimal  # the won amount of those opportunities, in the campaign's currency
    revenue_squares: Decimal  # the sum over recipients of (their revenue)², for Welch's variance

    @classmethod
    def empty(cls, variant_id: uuid.UUID) -> VariantNumbers:
        """A variant whose sample has no email out yet."""
        return cls(variant_id, 0, 0, 0, 0, Decimal("0"), Decimal("0"))

    def successes(self, metric: str) -> int:
        return {"open_rate": self.opens, "click_rate": self.clicks}.get(metric, self.conversions)

    def arm(self, metric: str, label: str) -> Arm:
        return Arm(
            key=self.variant_id,
            label=label,
            recipients=self.recipients,
            successes=self.successes(metric),
            total=float(self.revenue),
            total_squares=float(self.revenue_squares),
        )


def metric_kind(metric: str) -> str:
    return MEAN if metric == "revenue" else PROPORTION


# One statement, one row per variant. The sample is one row per recipient (email_sends is unique per
# campaign and customer), and each recipient's won deals are summed per customer before the join, so a
# customer with two won deals counts once as a conversion and adds both amounts to revenue (no fan-out).
# `scheduled_send_time = send_at` keeps the scan to the campaign's one partition.
NUMBERS_SQL = """
WITH sample AS (
    SELECT s.variant_id, s.customer_id,
           (s.sent_at AT TIME ZONE %(tz)s)::date AS sent_on,
           s.opened_at IS NOT NULL AND s.opened_at <= %(as_of)s AS opened,
           s.clicked_at IS NOT NULL AND s.clicked_at <= %(as_of)s AS clicked
    FROM email_sends s
    WHERE s.organization_id = %(org)s AND s.campaign_id = %(campaign)s
      AND s.scheduled_send_time = %(send_at)s AND s.step_run_id IS NULL
      AND s.in_test AND s.variant_id IS NOT NULL
      AND s.sent_at IS NOT NULL AND s.sent_at <= %(as_of)s
),
won AS (
    SELECT sample.customer_id,
           coalesce(sum(o.amount) FILTER (WHERE o.currency = %(currency)s), 0) AS revenue
    FROM sample
    JOIN opportunities o ON o.organization_id = %(org)s AND o.customer_id = sample.customer_id
    WHERE o.status = 'won' AND o.actual_close_date >= sample.sent_on AND o.actual_close_date <= %(as_of_date)s
    GROUP BY sample.customer_id
)
SELECT v.id,
       count(sample.customer_id),
       count(*) FILTER (WHERE sample.opened),
       count(*) FILTER (WHERE sample.clicked),
       count(won.customer_id),
       coalesce(sum(won.revenue), 0),
       coalesce(sum(won.revenue * won.revenue), 0)
FROM campaign_variants v
LEFT JOIN sample ON sample.variant_id = v.id
LEFT JOIN won ON won.customer_id = sample.customer_id
WHERE v.organization_id = %(org)s AND v.campaign_id = %(campaign)s
GROUP BY v.id
"""


def variant_numbers(
    *, campaign, as_of: datetime.datetime, time_zone: str = "UTC"
) -> dict[uuid.UUID, VariantNumbers]:
    """Each variant's test-sample numbers up to `as_of` (events after it are not counted), keyed by variant.

    A conversion is a recipient of the sample with an opportunity won (status won) whose close date is on
    or after the day their email went out and not after `as_of`, days counted in `time_zone` (the
    organization's); revenue is the amount of those deals in the campaign's currency (deals in another
    currency count as conversions but add no revenue: amounts in two currencies cannot be added)."""
    if campaign.send_at is None:
        rows = []
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                NUMBERS_SQL,
                {
                    "org": campaign.organization_id,
                    "campaign": campaign.pk,
                    "send_at": campaign.send_at,
                    "as_of": as_of,
                    "as_of_date": as_of.astimezone(ZoneInfo(time_zone)).date(),
                    "tz": time_zone,
                    "currency": campaign.currency,
                },
            )
            rows = cursor.fetchall()
    return {
        row[0]: VariantNumbers(
            variant_id=row[0],
            recipients=row[1],
            opens=row[2],
            clicks=row[3],
            conversions=row[4],
            revenue=Decimal(row[5]),
            revenue_squares=Decimal(row[6]),
        )
        for row in rows
    }


# --- The report --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    """One variant in the report panel: its numbers, rates (percent) and its bar in the chart."""

    variant: object  # marketing.models.Variant
    numbers: VariantNumbers
    metric_value: float  # percent for rates, money per recipient for revenue
    bar_percent: int  # 0..100, the metric relative to the best variant's
    is_best: bool
    is_winner: bool
    is_default: bool

    def _rate(self, count: int) -> float:
        return 100.0 * count / self.numbers.recipients if self.numbers.recipients else 0.0

    @property
    def open_rate(self) -> float:
        return self._rate(self.numbers.opens)

    @property
    def click_rate(self) -> float:
        return self._rate(self.numbers.clicks)

    @property
    def conversion_rate(self) -> float:
        return self._rate(self.numbers.conversions)


@dataclass(frozen=True)
class Report:
    rows: list[ReportRow]
    as_of: datetime.datetime | None  # None: the test has not started, there is nothing to count
    standing: Decision | None  # while running: what the decision would be now
    confidence_percent: float | None  # decided: the stored confidence; running: the standing's
    level_percent: float  # the confidence level the test needs


def metric_value(numbers: VariantNumbers, metric: str) -> float:
    """The metric as the report shows it: a percentage, or revenue per recipient."""
    if not numbers.recipients:
        return 0.0
    if metric == "revenue":
        return float(numbers.revenue) / numbers.recipients
    return 100.0 * numbers.successes(metric) / numbers.recipients


def report(*, ab_test, variants: list, time_zone: str, now: datetime.datetime | None = None) -> Report:
    """Each variant's numbers for the report panel: counted up to the decision for a decided test (so the
    panel shows exactly what was decided on), up to now while it runs, nothing before it starts."""
    from django.utils import timezone

    campaign = ab_test.campaign
    if ab_test.status == "draft":
        as_of = None
        counted: dict = {}
    else:
        as_of = ab_test.decided_at or now or timezone.now()
        counted = variant_numbers(campaign=campaign, as_of=as_of, time_zone=time_zone)
    numbers = {v.pk: counted.get(v.pk) or VariantNumbers.empty(v.pk) for v in variants}
    standing = None
    if ab_test.status == "running":
        standing = decide(
            [numbers[v.pk].arm(ab_test.metric, v.label) for v in variants],
            kind=metric_kind(ab_test.metric),
            confidence_level=float(ab_test.confidence_level),
            min_sample=ab_test.min_sample,
        )
    values = {v.pk: metric_value(numbers[v.pk], ab_test.metric) for v in variants}
    top = max(values.values(), default=0.0)
    best = standing.best if standing else (ab_test.winner_id or None)
    rows = [
        ReportRow(
            variant=v,
            numbers=numbers[v.pk],
            metric_value=values[v.pk],
            bar_percent=round(100 * values[v.pk] / top) if top > 0 else 0,
            is_best=v.pk == best,
            is_winner=v.pk == ab_test.winner_id,
            is_default=v.pk == ab_test.default_variant_id,
        )
        for v in variants
    ]
    confidence = standing.confidence if standing else ab_test.confidence
    return Report(
        rows=rows,
        as_of=as_of,
        standing=standing,
        confidence_percent=None if confidence is None else 100.0 * confidence,
        level_percent=100.0 * float(ab_test.confidence_level),
    )
