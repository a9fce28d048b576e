"""Paired comparisons with 95 % intervals and a verdict in words, for every before/after the project reports.

Two methods, one result shape (:class:`Comparison`):

- :func:`paired_bootstrap` resamples the *units* (queries, prompts, test sentences) with
  replacement, the same resample for both arms, and takes the *expanded* percentile interval of
  the difference of the statistic. With per-unit scores the statistic is the mean; any other
  statistic (accuracy, macro-F1) is a function of the resampled row indices.

  The plain percentile interval is too narrow on few units: with 6 units of normal noise and no true
  difference it called 14.1 % of cases better or worse, not 5 % (10 units: 9.8 %; 32: 7.1 %; the
  expanded interval 7.0 %, 5.7 % and 5.5 %: ``benchmarks/interval_coverage.py``), and with one unit it
  has no width at all. The expanded percentile interval (Hesterberg 2015) reads the
  resamples at the tail ``Φ(-sqrt(n / (n - 1)) · t_{n-1, 0.975})`` instead of 0.025, which is what a
  t interval does for a mean; on hundreds of units it is the plain interval to within a few
  thousandths of its width. Fewer than :data:`MIN_UNITS` (6) units give no interval (an error).
- :func:`corrected_cv_interval` takes the paired differences of repeated k-fold
  cross-validation (both arms fitted and scored on the same folds) and gives the
  Nadeau-Bengio corrected t interval: folds share training data, so the plain t interval
  of the fold differences is too narrow; the variance is inflated by ``n_test / n_train``.

The verdict compares the interval with 0: ``better`` when it lies above (for a measure where
higher is better), ``worse`` when below, otherwise ``no evidence``. A difference inside its
interval is never called a gain.

References: Efron & Tibshirani, *An Introduction to the Bootstrap* (1993), ch. 13 (percentile
interval); Hesterberg, "What Teachers Should Know About the Bootstrap: Resampling in the Undergraduate
Statistics Curriculum", *The American Statistician* 69 (2015), arXiv:1411.5279 (the expanded percentile
interval; ``ExpandProbs`` of his R package ``resample``); Nadeau & Bengio, "Inference for the
Generalization Error", *Machine Learning* 52
(2003); Bouckaert & Frank, "Evaluating the Replicability of Significance Tests for Comparing
Learning Algorithms", PAKDD 2004 (the corrected repeated k-fold test).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

Verdict = Literal["better", "no evidence", "worse"]
METHOD = "paired bootstrap (expanded percentile)"
VERDICTS: tuple[Verdict, ...] = ("better", "no evidence", "worse")


@dataclass(frozen=True)
class Comparison:
    """One paired comparison: both arms' values, their difference, its interval and the verdict.

    ``difference`` is ``after - before``; ``relative`` is ``difference / |before|`` (None when
    ``before`` is 0). The interval is for ``difference``.
    """

    before: float
    after: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    n: int
    method: str
    verdict: Verdict
    relative: float | None = None

    def to_dict(self) -> dict[str, float | int | str | None]:
        return asdict(self)

    def describe(self, what: str, change: str = "changed") -> str:
        """One sentence: ``"<what> changed by +0.0123 (95 % interval +0.0040 to +0.0210, n = 238): better"``.

        The side of 0 named is the interval's own, so the sentence is right whichever direction is better.
        """
        pct = f"{self.confidence:.0%}".replace("%", " %")
        return (
            f"{what} {change} by {signed(self.difference)} ({pct} interval {signed(self.ci_low)} to "
            f"{signed(self.ci_high)}, n = {self.n}): {verdict_sentence(self.verdict, self.ci_low > 0)}"
        )


def signed(value: float, decimals: int = 4) -> str:
    """``value`` with its sign and ``decimals`` decimals; one too small to show there (it would read
    +0.0000 beside a firm verdict) in two significant digits instead."""
    if value != 0 and abs(value) < 0.5 * 10**-decimals:
        return f"{value:+.2g}"
    return f"{value:+.{decimals}f}"


def verdict_sentence(verdict: Verdict, above_zero: bool | None = None) -> str:
    """The verdict in words, with the side of 0 the interval lies on.

    ``above_zero`` is that side; None takes it from the verdict as for a measure where higher is
    better (better: above 0). For a lower-is-better measure "better" lies below 0.
    """
    if verdict == "no evidence":
        return "no evidence of a difference (the interval contains 0)"
    above = (verdict == "better") if above_zero is None else above_zero
    return f"{verdict} (the whole interval is {'above' if above else 'below'} 0)"


#: The verdicts in words for a measure where higher is better (accuracy, F1, NDCG, R²).
VERDICT_SENTENCE: dict[str, str] = {v: verdict_sentence(v) for v in VERDICTS}


def verdict(ci_low: float, ci_high: float, higher_is_better: bool = True) -> Verdict:
    """``better`` / ``worse`` when the interval of ``after - before`` excludes 0, else ``no evidence``."""
    if ci_low > 0:
        return "better" if higher_is_better else "worse"
    if ci_high < 0:
        return "worse" if higher_is_better else "better"
    return "no evidence"


#: The fewest units a bootstrap interval is given for. With n units whose differences all share a sign
#: (1 time in 2^(n-1) when there is no difference) every resample lies on that side of 0, whatever the
#: interval's tail: below 6 units that alone makes more than 5 % of no-difference cases look like one.
MIN_UNITS = 6


def bootstrap_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """``n_resamples`` rows of ``n`` indices drawn with replacement (seeded): one row per resample."""
    if n < MIN_UNITS:
        raise ValueError(
            f"a bootstrap interval needs at least {MIN_UNITS} units (queries, prompts, sentences), got {n}: "
            "with fewer, all the differences share a sign too often for an interval to mean anything. "
            "Use a larger test or held-out split."
        )
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def expanded_tail(n: int, confidence: float) -> float:
    """The quantile of the resamples that the interval's lower end is read at (the upper end: 1 minus it).

    Hesterberg's expanded percentile interval: ``Φ(-sqrt(n / (n - 1)) · t_{n-1, (1 + confidence) / 2})``,
    so that on few units the interval is as wide as a t interval (6 units at 95 %: 0.0024, not 0.025;
    500 units: 0.0246; 2 or 3 units: the whole range of the resamples).
    """
    from scipy import stats as scipy_stats

    if n < 2:
        raise ValueError(f"a bootstrap interval needs at least 2 units, got {n}")
    t = float(scipy_stats.t.ppf(0.5 + confidence / 2.0, df=n - 1))
    return float(scipy_stats.norm.cdf(-math.sqrt(n / (n - 1)) * t))


def resampled_interval(
    values: np.ndarray, point: float, n: int, confidence: float = 0.95, what: str = "the statistic"
) -> tuple[float, float]:
    """The expanded percentile interval of the resampled ``values`` of a statistic of ``n`` units, widened to hold
    ``point`` (its value on all the units); for a bootstrap drawn its own way (a cluster bootstrap)."""
    if not np.isfinite(values).all() or not math.isfinite(point):
        bad = int((~np.isfinite(values)).sum())
        raise ValueError(
            f"{what} is not finite on {bad} of {len(values)} resamples (or on all the units): "
            "the statistic must give a number on every resample"
        )
    tail = expanded_tail(n, confidence)
    low, high = (float(v) for v in np.quantile(values, [tail, 1.0 - tail]))
    # The interval of a statistic whose resamples all equal the point estimate is that point.
    return min(low, point), max(high, point)


def _comparison(
    before: float,
    after: float,
    diffs: np.ndarray,
    n: int,
    confidence: float,
    method: str,
    higher_is_better: bool,
) -> Comparison:
    difference = after - before
    low, high = resampled_interval(diffs, difference, n, confidence, "the difference")
    return Comparison(
        before=float(before),
        after=float(after),
        difference=float(difference),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        n=int(n),
        method=method,
        verdict=verdict(low, high, higher_is_better),
        relative=float(difference / abs(before)) if before != 0 else None,
    )


def paired_bootstrap(
    before: np.ndarray | list[float],
    after: np.ndarray | list[float],
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    higher_is_better: bool = True,
) -> Comparison:
    """Mean of per-unit scores, after vs before, with a paired (expanded) percentile-bootstrap interval.

    ``before[i]`` and ``after[i]`` are the same unit (query, prompt, sentence) scored by the two
    arms; each resample draws units, so both arms see the same units.
    """
    b = np.asarray(before, dtype=np.float64)
    a = np.asarray(after, dtype=np.float64)
    if b.shape != a.shape or b.ndim != 1:
        raise ValueError(f"paired scores must be two 1-D arrays of one length, got {b.shape} and {a.shape}")
    if not (np.isfinite(b).all() and np.isfinite(a).all()):
        raise ValueError("paired scores must be finite")
    d = a - b
    idx = bootstrap_indices(len(d), n_resamples, seed)
    diffs = d[idx].mean(axis=1)
    return _comparison(b.mean(), a.mean(), diffs, len(d), confidence, METHOD, higher_is_better)


def paired_bootstrap_statistic(
    statistic_before: Callable[[np.ndarray], float],
    statistic_after: Callable[[np.ndarray], float],
    n: int,
    *,
    n_resamples: int = 2_000,
    confidence: float = 0.95,
    seed: int = 0,
    higher_is_better: bool = True,
) -> Comparison:
    """Like :func:`paired_bootstrap` for a statistic that is not a mean of per-unit scores.

    Each ``statistic_*`` takes an index array into the ``n`` units (e.g. ``lambda i:
    f1_score(y[i], pred[i], average="macro")``) and is called on ``np.arange(n)`` and on every
    resample, the same resample for both.
    """
    everything = np.arange(n)
    before, after = float(statistic_before(everything)), float(statistic_after(everything))
    idx = bootstrap_indices(n, n_resamples, seed)
    diffs = np.fromiter((statistic_after(i) - statistic_before(i) for i in idx), dtype=np.float64, count=len(idx))
    return _comparison(before, after, diffs, n, confidence, METHOD, higher_is_better)


def bootstrap_interval(
    scores: np.ndarray | list[float], *, n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of per-unit scores with its (expanded) percentile-bootstrap interval: ``(mean, low, high)``."""
    s = np.asarray(scores, dtype=np.float64)
    means = s[bootstrap_indices(len(s), n_resamples, seed)].mean(axis=1)
    low, high = resampled_interval(means, float(s.mean()), len(s), confidence, "the mean")
    return float(s.mean()), low, high


def bootstrap_statistic_interval(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    n_resamples: int = 2_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """A statistic of ``n`` units (accuracy, macro-F1) with its (expanded) percentile-bootstrap interval: ``(value, low, high)``.

    ``statistic`` takes an index array into the units and is called on ``np.arange(n)`` and on
    every resample (as in :func:`paired_bootstrap_statistic`).
    """
    value = float(statistic(np.arange(n)))
    idx = bootstrap_indices(n, n_resamples, seed)
    values = np.fromiter((statistic(i) for i in idx), dtype=np.float64, count=len(idx))
    low, high = resampled_interval(values, value, n, confidence, "the statistic")
    return value, low, high


def corrected_cv_interval(
    before: np.ndarray | list[float],
    after: np.ndarray | list[float],
    test_fraction: float,
    *,
    confidence: float = 0.95,
    higher_is_better: bool = True,
) -> Comparison:
    """Paired repeated k-fold CV scores (one per fold and repeat), with the corrected t interval.

    ``test_fraction`` is ``n_test / n`` of one fold (``1/k``). With ``J`` fold differences of
    mean ``d̄`` and variance ``s²``, the interval is ``d̄ ± t_{J-1} · sqrt((1/J + n_test/n_train) s²)``
    (Nadeau & Bengio 2003), which stays honest although the folds' training sets overlap. Fold scores
    must be finite (as the bootstrap's units): a NaN would otherwise pass as an interval of NaN, "no evidence".
    """
    from scipy import stats as scipy_stats

    b = np.asarray(before, dtype=np.float64)
    a = np.asarray(after, dtype=np.float64)
    if b.shape != a.shape or b.ndim != 1 or len(b) < 2:
        raise ValueError("corrected_cv_interval needs two 1-D arrays of at least two paired fold scores")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    for name, scores in (("before", b), ("after", a)):
        bad = np.flatnonzero(~np.isfinite(scores))
        if len(bad):
            raise ValueError(
                f"corrected_cv_interval: {len(bad)} of the {len(scores)} fold scores of '{name}' are not finite "
                f"(the first, fold {int(bad[0])}: {scores[bad[0]]}): every fold must be scored with a number. A NaN "
                "or infinite score is a fold too small to score (empty, or fewer than two test units): use fewer "
                "folds, then compare again"
            )
    d = a - b
    j = len(d)
    mean = float(d.mean())
    variance = float(d.var(ddof=1))
    se = math.sqrt((1.0 / j + test_fraction / (1.0 - test_fraction)) * variance)
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2.0, df=j - 1)) * se
    before_mean = float(b.mean())
    return Comparison(
        before=before_mean,
        after=float(a.mean()),
        difference=mean,
        ci_low=mean - half,
        ci_high=mean + half,
        confidence=confidence,
        n=j,
        method="repeated k-fold CV, Nadeau-Bengio corrected t interval",
        verdict=verdict(mean - half, mean + half, higher_is_better),
        relative=mean / abs(before_mean) if before_mean != 0 else None,
    )
