"""The A/B test statistics (marketing/abtest.py) against hand-computed examples: the pooled two-proportion
z-test, Welch's t-test and its Student t tail, the Bonferroni correction and the decision rule."""

from __future__ import annotations

import math

import pytest

from marketing.abtest import (
    MEAN,
    PROPORTION,
    Arm,
    Decision,
    bonferroni,
    decide,
    regularized_incomplete_beta,
    sample_variance,
    student_t_two_sided_p,
    two_proportion_z_test,
    welch_t_test,
)

# --- the z-test --------------------------------------------------------------------------------------------


def test_z_test_matches_the_hand_computed_example():
    # A: 120 of 1000 opened (0.12), B: 90 of 1000 (0.09).
    # pooled p = 210 / 2000 = 0.105
    # variance = 0.105 * 0.895 * (1/1000 + 1/1000) = 0.093975 * 0.002 = 0.00018795
    # se = sqrt(0.00018795) = 0.0137095
    # z = (0.12 - 0.09) / 0.0137095 = 2.18827
    # two-sided p = 2 * (1 - Phi(2.18827)) = 2 * (1 - 0.985675) = 0.02865
    result = two_proportion_z_test(120, 1000, 90, 1000)
    assert result.statistic == pytest.approx(2.18827, abs=1e-5)
    assert result.p_value == pytest.approx(0.02865, abs=1e-5)


def test_z_test_of_a_smaller_difference_is_not_significant():
    # A: 60/300 = 0.20, B: 45/300 = 0.15; pooled 105/600 = 0.175
    # variance = 0.175 * 0.825 * (2/300) = 0.0009625; se = 0.0310242; z = 0.05 / 0.0310242 = 1.61165
    # p = 2 * (1 - Phi(1.61165)) = 0.10704
    result = two_proportion_z_test(60, 300, 45, 300)
    assert result.statistic == pytest.approx(1.61165, abs=1e-5)
    assert result.p_value == pytest.approx(0.10704, abs=1e-5)


def test_z_test_is_symmetric_and_signed():
    forward, backward = two_proportion_z_test(120, 1000, 90, 1000), two_proportion_z_test(90, 1000, 120, 1000)
    assert backward.statistic == pytest.approx(-forward.statistic)
    assert backward.p_value == pytest.approx(forward.p_value)


@pytest.mark.parametrize("counts", [(0, 100, 0, 100), (100, 100, 100, 100), (0, 0, 5, 10)])
def test_z_test_without_spread_or_sample_finds_no_difference(counts):
    result = two_proportion_z_test(*counts)
    assert (result.statistic, result.p_value) == (0.0, 1.0)


# --- Student's t and Welch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [0.3, 1.0, 1.7438, 2.5, 6.0])
def test_student_t_tail_matches_the_closed_forms(t):
    # df = 1 (Cauchy): p = 1 - (2/pi) atan|t|
    assert student_t_two_sided_p(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(t), abs=1e-12)
    # df = 2: p = 1 - |t| / sqrt(2 + t^2)
    assert student_t_two_sided_p(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
    # df = 4: with x = t^2 / (4 + t^2), p = 1 - sqrt(x) (1 + (1 - x) / 2)
    x = t * t / (4 + t * t)
    assert student_t_two_sided_p(t, 4) == pytest.approx(1 - math.sqrt(x) * (1 + (1 - x) / 2), abs=1e-12)


@pytest.mark.parametrize(("t", "df"), [(2.228, 10), (2.086, 20), (2.042, 30), (1.960, 100_000)])
def test_student_t_matches_the_table_at_five_percent(t, df):
    # The printed t table's two-sided 5 % critical values (and the normal 1.960 for a huge df).
    assert student_t_two_sided_p(t, df) == pytest.approx(0.05, abs=2e-4)


def test_incomplete_beta_edges_and_symmetry():
    assert regularized_incomplete_beta(0.0, 2, 3) == 0.0
    assert regularized_incomplete_beta(1.0, 2, 3) == 1.0
    # I_x(1, 1) = x; I_x(a, b) = 1 - I_{1-x}(b, a)
    assert regularized_incomplete_beta(0.37, 1, 1) == pytest.approx(0.37)
    assert regularized_incomplete_beta(0.2, 2.5, 4) == pytest.approx(
        1 - regularized_incomplete_beta(0.8, 4, 2.5)
    )


def test_sample_variance_from_sums():
    # values 0, 0, 10, 20, 30: sum 60, sum of squares 1400, mean 12; (1400 - 5 * 144) / 4 = 170
    assert sample_variance(5, 60, 1400) == pytest.approx(170)
    assert sample_variance(1, 7, 49) == 0.0


def test_welch_matches_the_hand_computed_example():
    # A (revenue per recipient): 0, 0, 10, 20, 30 -> n 5, mean 12, s^2 = 680 / 4 = 170
    # B: 0, 0, 0, 0, 5, 5 -> n 6, mean 10/6 = 1.66667, s^2 = (4 * 2.77778 + 2 * 11.1111) / 5 = 6.66667
    # s^2_A / n_A = 34, s^2_B / n_B = 1.11111; se = sqrt(35.11111) = 5.92546
    # t = (12 - 1.66667) / 5.92546 = 1.74389
    # df = 35.11111^2 / (34^2 / 4 + 1.11111^2 / 5) = 1232.790 / 289.2469 = 4.26207
    # p: Student t with 4.262 df; the table brackets it between df 5 (0.1416) and df 4 (0.1561)
    result = welch_t_test(12, 170, 5, 10 / 6, 20 / 3, 6)
    assert result.statistic == pytest.approx(1.74389, abs=1e-5)
    assert result.df == pytest.approx(4.26207, abs=1e-5)
    assert student_t_two_sided_p(1.74389, 5) < result.p_value < student_t_two_sided_p(1.74389, 4)
    assert result.p_value == pytest.approx(0.15171, abs=1e-5)


def test_welch_edge_cases():
    assert welch_t_test(5, 0, 10, 5, 0, 10).p_value == 1.0  # no spread, same means
    assert welch_t_test(5, 0, 10, 3, 0, 10).p_value == 0.0  # no spread, different means
    assert welch_t_test(5, 1, 1, 3, 1, 10).p_value == 1.0  # one value is no sample


# --- Bonferroni and the decision ---------------------------------------------------------------------------


def test_bonferroni_multiplies_and_caps():
    assert bonferroni(0.02, 2) == pytest.approx(0.04)
    assert bonferroni(0.4, 4) == 1.0
    assert bonferroni(0.03, 1) == pytest.approx(0.03)


def _arms(*rows):
    return [Arm(key=label, label=label, recipients=n, successes=s) for label, s, n in rows]


def test_a_significant_leader_wins():
    decision = decide(
        _arms(("A", 90, 1000), ("B", 120, 1000)), kind=PROPORTION, confidence_level=0.95, min_sample=100
    )
    assert decision.outcome == Decision.WINNER
    assert decision.winner == "B" and decision.best == "B"
    assert decision.p_value == pytest.approx(0.02865, abs=1e-5)  # the z-test example above
    assert decision.confidence == pytest.approx(1 - 0.02865, abs=1e-5)


def test_the_same_lead_is_not_enough_at_a_higher_confidence_level():
    decision = decide(
        _arms(("A", 90, 1000), ("B", 120, 1000)), kind=PROPORTION, confidence_level=0.99, min_sample=100
    )
    assert decision.outcome == Decision.INCONCLUSIVE
    assert decision.reason == Decision.NOT_SIGNIFICANT
    assert decision.best == "B" and decision.winner is None


def test_bonferroni_turns_two_significant_comparisons_into_an_inconclusive_test():
    # A 140/1000 against B 110/1000: pooled 0.125, se = sqrt(0.125 * 0.875 * 0.002) = 0.0147902,
    # z = 0.03 / 0.0147902 = 2.02837, p = 0.04252 < 0.05: alone, A wins.
    two = decide(
        _arms(("A", 140, 1000), ("B", 110, 1000)), kind=PROPORTION, confidence_level=0.95, min_sample=100
    )
    assert two.outcome == Decision.WINNER
    assert two.p_value == pytest.approx(0.04252, abs=1e-5)
    # With C (also 110/1000) A is compared twice: each p is multiplied by 2 -> 0.08505 > 0.05.
    three = decide(
        _arms(("A", 140, 1000), ("B", 110, 1000), ("C", 110, 1000)),
        kind=PROPORTION,
        confidence_level=0.95,
        min_sample=100,
    )
    assert three.outcome == Decision.INCONCLUSIVE and three.reason == Decision.NOT_SIGNIFICANT
    assert [c.p_value for c in three.comparisons] == pytest.approx([0.04252, 0.04252], abs=1e-5)
    assert [c.adjusted_p for c in three.comparisons] == pytest.approx([0.08505, 0.08505], abs=1e-5)
    assert three.p_value == pytest.approx(0.08505, abs=1e-5)


def test_the_weakest_comparison_decides():
    # A leads B clearly but C only a little: the test is as strong as its weakest comparison.
    decision = decide(
        _arms(("A", 200, 1000), ("B", 100, 1000), ("C", 190, 1000)),
        kind=PROPORTION,
        confidence_level=0.95,
        min_sample=100,
    )
    by_other = {c.other: c for c in decision.comparisons}
    assert decision.outcome == Decision.INCONCLUSIVE
    assert decision.p_value == by_other["C"].adjusted_p > by_other["B"].adjusted_p


def test_a_variant_under_the_minimum_sample_makes_the_test_inconclusive():
    # A huge lead, but B reached only 99 recipients of the 100 required.
    decision = decide(
        _arms(("A", 90, 100), ("B", 5, 99)), kind=PROPORTION, confidence_level=0.95, min_sample=100
    )
    assert decision.outcome == Decision.INCONCLUSIVE
    assert decision.reason == Decision.SMALL_SAMPLE
    assert decision.small == ("B",)
    assert decision.p_value is None and decision.winner is None


def test_a_tie_is_never_a_winner_and_goes_to_the_first_variant():
    decision = decide(
        _arms(("A", 50, 500), ("B", 50, 500)), kind=PROPORTION, confidence_level=0.8, min_sample=1
    )
    assert decision.best == "A"
    assert decision.outcome == Decision.INCONCLUSIVE and decision.p_value == 1.0


def test_one_variant_is_no_test():
    decision = decide(_arms(("A", 50, 500)), kind=PROPORTION, confidence_level=0.95, min_sample=1)
    assert decision.outcome == Decision.INCONCLUSIVE and decision.reason == Decision.TOO_FEW_VARIANTS


def test_revenue_is_decided_with_welch():
    # The Welch example: A's mean 12 over 5 recipients vs B's 1.667 over 6: p = 0.1517.
    a = Arm(key="A", label="A", recipients=5, total=60, total_squares=1400)
    b = Arm(key="B", label="B", recipients=6, total=10, total_squares=50)
    at_80 = decide([a, b], kind=MEAN, confidence_level=0.80, min_sample=5)
    assert at_80.outcome == Decision.WINNER and at_80.winner == "A"
    assert at_80.p_value == pytest.approx(0.15171, abs=1e-5)
    at_95 = decide([a, b], kind=MEAN, confidence_level=0.95, min_sample=5)
    assert at_95.outcome == Decision.INCONCLUSIVE
