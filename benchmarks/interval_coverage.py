"""How often a paired-bootstrap interval calls a difference that is not there: plain vs expanded percentile.

Simulates paired comparisons whose true difference is 0 and counts the verdicts that are not
"no evidence" (the 95 % interval excludes 0): a correct interval does so about 5 % of the time. Both
intervals are read from the same resamples of the same simulated units, so the two rates are compared
in one run. Two kinds of units:

- ``normal``: per-unit differences drawn from N(0, 1) (a score such as chrF or NDCG);
- ``flips``: per-unit differences in {-1, 0, +1} with P(+1) = P(-1) = 0.25 (a yes/no measure such as
  "ended by itself", where a unit changes in either direction or not at all).

Usage: python benchmarks/interval_coverage.py [--reps 2000] [--resamples 2000] [--sizes 2 3 4 5 6 10 20 32 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from qeu_kedro.stats import MIN_UNITS, expanded_tail


def draw(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if kind == "normal":
        return rng.normal(0.0, 1.0, n)
    return rng.choice([-1.0, 0.0, 0.0, 1.0], size=n)


def false_verdict_rates(kind: str, n: int, reps: int, resamples: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    tail = expanded_tail(n, 0.95)
    plain = expanded = 0
    for rep in range(reps):
        d = draw(kind, rng, n)
        # the resampling of stats.bootstrap_indices, which refuses n below MIN_UNITS: simulated here to show why
        means = d[np.random.default_rng(seed + rep).integers(0, n, size=(resamples, n))].mean(axis=1)
        point = d.mean()
        for level, count in ((0.025, "plain"), (tail, "expanded")):
            low, high = np.quantile(means, [level, 1 - level])
            low, high = min(low, point), max(high, point)
            if low > 0 or high < 0:
                if count == "plain":
                    plain += 1
                else:
                    expanded += 1
    return plain / reps, expanded / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 3, 4, 5, 6, 10, 20, 32, 100])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    print(f"{args.reps} simulated comparisons per row, {args.resamples} resamples each, true difference 0")
    print(
        "| units | n | lower tail read (expanded) | plain percentile: share not 'no evidence' | expanded percentile |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind in ("normal", "flips"):
        for n in args.sizes:
            plain, expanded = false_verdict_rates(kind, n, args.reps, args.resamples, args.seed)
            print(f"| {kind} | {n} | {expanded_tail(n, 0.95):.4f} | {plain:.1%} | {expanded:.1%} |")
    print(f"(the pipelines give no interval below {MIN_UNITS} units; {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
