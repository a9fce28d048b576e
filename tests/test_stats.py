"""The paired-comparison statistics on cases whose answer is known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from qeu_kedro.stats import (
    MIN_UNITS,
    bootstrap_interval,
    bootstrap_statistic_interval,
    corrected_cv_interval,
    expanded_tail,
    paired_bootstrap,
    paired_bootstrap_statistic,
    signed,
    verdict,
)


def test_identical_scores_give_zero_difference_and_an_interval_containing_zero():
    scores = np.random.default_rng(1).uniform(size=200)
    result = paired_bootstrap(scores, scores.copy())
    assert result.difference == 0.0
    assert result.ci_low <= 0.0 <= result.ci_high
    assert result.verdict == "no evidence"


def test_a_constructed_improvement_has_an_interval_above_zero():
    rng = np.random.default_rng(2)
    before = rng.uniform(0.2, 0.6, size=150)
    after = before + rng.uniform(0.01, 0.05, size=150)  # every unit gains a little
    result = paired_bootstrap(before, after, seed=3)
    assert result.ci_low > 0 and result.verdict == "better"
    assert result.before < result.after
    assert result.relative == pytest.approx(result.difference / result.before)
    worse = paired_bootstrap(after, before, seed=3)
    assert worse.ci_high < 0 and worse.verdict == "worse"


def test_a_lower_is_better_measure_flips_the_verdict():
    before = np.full(50, 0.5)
    after = before - 0.1
    assert paired_bootstrap(before, after, higher_is_better=False).verdict == "better"


def test_noise_around_zero_gives_no_evidence():
    rng = np.random.default_rng(4)
    before = rng.uniform(size=300)
    after = before + rng.normal(0, 0.2, size=300)
    after -= after.mean() - before.mean()  # exactly no mean difference
    result = paired_bootstrap(before, after)
    assert result.difference == pytest.approx(0.0, abs=1e-12)
    assert result.verdict == "no evidence"


def test_the_interval_agrees_with_scipy_paired_percentile_bootstrap_at_the_expanded_level():
    from scipy import stats

    rng = np.random.default_rng(5)
    before = rng.uniform(size=120)
    after = before + rng.normal(0.03, 0.1, size=120)
    ours = paired_bootstrap(before, after, n_resamples=20_000, seed=6)
    theirs = stats.bootstrap(
        (before, after),
        lambda b, a, axis=-1: np.mean(a - b, axis=axis),
        paired=True,
        n_resamples=20_000,
        method="percentile",
        confidence_level=1 - 2 * expanded_tail(120, 0.95),
        rng=np.random.default_rng(7),
    ).confidence_interval
    # Two Monte Carlo estimates of the same quantiles: within a small fraction of the width.
    width = theirs.high - theirs.low
    assert ours.ci_low == pytest.approx(theirs.low, abs=0.03 * width)
    assert ours.ci_high == pytest.approx(theirs.high, abs=0.03 * width)


def test_the_same_seed_gives_the_same_interval():
    rng = np.random.default_rng(8)
    before, after = rng.uniform(size=80), rng.uniform(size=80)
    assert paired_bootstrap(before, after, seed=9) == paired_bootstrap(before, after, seed=9)


def test_a_statistic_that_is_not_a_mean_macro_f1():
    rng = np.random.default_rng(10)
    y = rng.integers(0, 3, size=300)
    good = np.where(rng.uniform(size=300) < 0.9, y, (y + 1) % 3)
    bad = np.where(rng.uniform(size=300) < 0.6, y, (y + 1) % 3)
    result = paired_bootstrap_statistic(
        lambda i: f1_score(y[i], bad[i], average="macro"),
        lambda i: f1_score(y[i], good[i], average="macro"),
        len(y),
        n_resamples=500,
    )
    assert result.before == pytest.approx(f1_score(y, bad, average="macro"))
    assert result.after == pytest.approx(f1_score(y, good, average="macro"))
    assert result.verdict == "better"
    same = paired_bootstrap_statistic(
        lambda i: f1_score(y[i], good[i], average="macro"),
        lambda i: f1_score(y[i], good[i], average="macro"),
        len(y),
        n_resamples=200,
    )
    assert same.difference == 0 and same.ci_low <= 0 <= same.ci_high


def test_bootstrap_interval_of_one_mean_brackets_it():
    mean, low, high = bootstrap_interval(np.arange(100, dtype=float))
    assert mean == pytest.approx(49.5)
    assert low < mean < high


def test_bootstrap_statistic_interval_on_known_cases():
    # a constant statistic: the interval is that point
    assert bootstrap_statistic_interval(lambda i: 0.5, 10, n_resamples=50) == (0.5, 0.5, 0.5)
    # the mean as a statistic gives the same numbers as bootstrap_interval (same seed, same resamples)
    x = np.random.default_rng(3).normal(size=60)
    assert bootstrap_statistic_interval(lambda i: x[i].mean(), 60, n_resamples=500) == pytest.approx(
        bootstrap_interval(x, n_resamples=500)
    )
    # accuracy of 30 right out of 40: about 0.75 +- 1.96 * sqrt(0.75 * 0.25 / 40) = +- 0.134
    correct = np.array([1.0] * 30 + [0.0] * 10)
    value, low, high = bootstrap_statistic_interval(lambda i: correct[i].mean(), 40, n_resamples=4000)
    assert value == 0.75 and 0.58 < low < 0.66 and 0.84 < high < 0.91


def test_corrected_cv_interval_by_hand():
    before = np.array([0.40, 0.42, 0.41, 0.43, 0.39])
    diffs = np.array([0.010, 0.020, 0.000, 0.015, 0.005])
    result = corrected_cv_interval(before, before + diffs, test_fraction=0.2)
    se = math.sqrt((1 / 5 + 0.2 / 0.8) * diffs.var(ddof=1))
    half = 2.7764451051977987 * se  # t(0.975, df=4)
    assert result.difference == pytest.approx(diffs.mean())
    assert result.ci_low == pytest.approx(diffs.mean() - half)
    assert result.ci_high == pytest.approx(diffs.mean() + half)
    # Every fold gains, yet the corrected interval (0.010 ± 0.0147) contains 0.
    assert result.verdict == "no evidence"


def test_corrected_cv_interval_is_wider_than_the_naive_one():
    rng = np.random.default_rng(11)
    before = rng.uniform(0.3, 0.5, size=25)
    after = before + rng.normal(0.001, 0.004, size=25)
    result = corrected_cv_interval(before, after, test_fraction=0.2)
    naive_half = 2.0638985616280205 * (after - before).std(ddof=1) / 5  # t(0.975, 24) * s / sqrt(25)
    assert result.ci_high - result.ci_low > 2 * naive_half


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0.1, 0.2, "better"), (-0.2, -0.1, "worse"), (-0.1, 0.1, "no evidence"), (0.0, 0.1, "no evidence")],
)
def test_verdict_words(low, high, expected):
    assert verdict(low, high) == expected


def test_describe_says_the_interval_and_the_verdict():
    text = paired_bootstrap(np.zeros(10), np.zeros(10)).describe("NDCG@10")
    assert "NDCG@10 changed by +0.0000" in text and "95 % interval" in text and "no evidence" in text


def test_describe_names_the_side_of_0_the_interval_is_on_whichever_direction_is_better():
    lower = paired_bootstrap([1.0] * 6, [0.5, 0.6, 0.5, 0.4, 0.5, 0.5], higher_is_better=False)
    assert lower.verdict == "better" and lower.describe("copied share").endswith(
        "better (the whole interval is below 0)"
    )
    higher = paired_bootstrap([0.5, 0.6, 0.5, 0.4, 0.5, 0.5], [1.0] * 6)
    assert higher.describe("NDCG@10").endswith("better (the whole interval is above 0)")
    worse_lower = paired_bootstrap([0.5, 0.6, 0.5, 0.4, 0.5, 0.5], [1.0] * 6, higher_is_better=False)
    assert worse_lower.describe("copied share").endswith("worse (the whole interval is above 0)")


def test_a_difference_too_small_for_four_decimals_is_shown_in_significant_digits():
    assert signed(0.01234) == "+0.0123" and signed(0.0) == "+0.0000" and signed(-0.5) == "-0.5000"
    assert signed(-4e-5) == "-4e-05" and signed(2.1e-7) == "+2.1e-07"
    tiny = paired_bootstrap(np.zeros(25), np.full(25, -4e-5) + np.linspace(-1e-6, 1e-6, 25))
    assert tiny.verdict == "worse" and "changed by -4e-05" in tiny.describe("R²")


def test_the_expanded_tail_matches_the_t_interval_it_stands_for():
    """Hesterberg's level: z at the tail times sqrt((n-1)/n) is the t quantile (his ``ExpandProbs``)."""
    from scipy import stats

    for n in (6, 10, 32, 553):
        tail = expanded_tail(n, 0.95)
        assert -stats.norm.ppf(tail) * math.sqrt((n - 1) / n) == pytest.approx(stats.t.ppf(0.975, n - 1))
    assert expanded_tail(6, 0.95) == pytest.approx(0.00243, abs=1e-5)  # far out: few units
    assert 0.0245 < expanded_tail(553, 0.95) < 0.025  # the plain 0.025, nearly, on many


def test_three_of_six_yes_no_changes_are_no_evidence():
    """3 of 6 prompts start to end by themselves, none stops: a sign test gives p = 0.25 (two-sided), so
    no verdict. The plain percentile interval read it as better: the resamples with none of the 3 are
    1.6 %, under its 2.5 % tail, while the expanded tail (0.24 %) takes them in."""
    before, after = np.zeros(6), np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    result = paired_bootstrap(before, after, seed=0)
    assert result.verdict == "no evidence" and result.ci_low <= 0 < result.ci_high
    diffs = (after - before)[np.random.default_rng(0).integers(0, 6, size=(10_000, 6))].mean(axis=1)
    assert np.quantile(diffs, 0.025) > 0  # what the plain percentile interval would have said: better


def test_fewer_units_than_the_minimum_have_no_interval():
    assert MIN_UNITS == 6
    with pytest.raises(ValueError, match="at least 6 units"):
        paired_bootstrap([0.2, 0.3, 0.1, 0.4, 0.5], [0.7, 0.8, 0.6, 0.9, 1.0])
    with pytest.raises(ValueError, match="at least 6 units"):
        bootstrap_statistic_interval(lambda i: 0.5, 1)
    assert paired_bootstrap(np.zeros(6), np.ones(6)).verdict == "better"  # 6 of 6 the same way: p = 1/32


def test_a_statistic_that_is_not_finite_on_a_resample_is_refused():
    with pytest.raises(ValueError, match="not finite"):
        paired_bootstrap_statistic(
            lambda i: 0.0, lambda i: np.nan if len(set(i.tolist())) < 3 else 1.0, 6, n_resamples=200
        )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_corrected_cv_interval_refuses_a_fold_score_that_is_not_finite(bad):
    """A NaN fold score (a fold too small to score) made the interval NaN and the verdict "no evidence"."""
    before = np.full(25, 0.3) + np.linspace(0, 0.01, 25)
    after = before + 0.01
    after[3] = bad
    with pytest.raises(
        ValueError, match=r"1 of the 25 fold scores of 'after' are not finite \(the first, fold 3.*fewer folds"
    ):
        corrected_cv_interval(before, after, 0.2)
    with pytest.raises(ValueError, match="of 'before' are not finite"):
        corrected_cv_interval(after, before, 0.2)
