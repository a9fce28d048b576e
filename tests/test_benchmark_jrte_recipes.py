"""benchmarks/jrte_recipes.py: two recipes over several seeds, compared sentence by sentence."""

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.pipelines.jrte_sentiment.report import paired_comparison
from tests.conftest import load_benchmark

NAMES = ["negative", "normal", "positive"]
BOOT = {"n_resamples": 300, "confidence": 0.95, "seed": 0}


@pytest.fixture(scope="module")
def script():
    return load_benchmark("jrte_recipes")


def table(true, probs, split="test"):
    """A prediction table as the pipeline writes it: predicted = the most probable class."""
    probs = np.asarray(probs, dtype=float)
    frame = pd.DataFrame(
        {
            "split": split,
            "id": [f"s{i:03d}" for i in range(len(true))],
            "text": "x",
            "true": true,
            "predicted": np.array(NAMES)[probs.argmax(1)],
        }
    )
    for j, name in enumerate(NAMES):
        frame[f"p_{name}"] = probs[:, j]
    return frame


def _rows(text):
    return {
        line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| seeds")
    }


def test_one_seed_repeats_the_pipelines_paired_comparison_and_ensembles_are_the_mean_probabilities(script):
    rng = np.random.default_rng(0)
    true = list(rng.choice(NAMES, size=90))
    a1, b1 = rng.dirichlet([1, 1, 1], 90), rng.dirichlet([1, 1, 1], 90)
    a, b = table(true, a1), table(true, b1)
    rows = _rows(script.compare([a], [b], ["42"], ("A", "B"), BOOT))
    expected = paired_comparison(a, b, {"classes": [{"value": i, "name": n} for i, n in enumerate(NAMES)]}, BOOT)
    for key, cell in (("macro_f1", 3), ("accuracy", 7)):
        c = expected[key]
        assert rows["seed 42"][cell] == f"{c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"
    assert "mean of the" not in "\n".join(rows)  # one seed: no mean or ensemble rows

    # two seeds each. B's seeds are always right. Each of A's seeds is right on half the sentences (sure: 0.9)
    # and wrong on the other half (unsure: 0.4 against 0.35 for the true class), each on the other half:
    # the mean of their probabilities is right everywhere, which neither seed nor a vote of the two is.
    codes = np.array([NAMES.index(t) for t in true])
    onehot, nxt = np.eye(3)[codes], np.eye(3)[(codes + 1) % 3]
    sure_right = 0.9 * onehot + 0.05 * (1 - onehot)
    unsure_wrong = 0.35 * onehot + 0.4 * nxt + 0.25 * (1 - onehot - nxt)
    even = (np.arange(90) % 2 == 0)[:, None]
    text = script.compare(
        [table(true, np.where(even, sure_right, unsure_wrong)), table(true, np.where(even, unsure_wrong, sure_right))],
        [table(true, onehot), table(true, onehot)],
        ["42", "1"],
        ("A", "B"),
        BOOT,
    )
    rows = _rows(text)
    assert rows["seed 42"][5] == "0.5000" and rows["seed 42"][6] == "1.0000" and rows["seed 42"][8] == "better"
    assert rows["mean of the 2 seeds ¹"][5] == "0.5000"
    assert rows["seed ensembles (2 models each)"][5] == "1.0000"
    assert (
        rows["seed ensembles (2 models each)"][7].startswith("+0.0000")
        and rows["seed ensembles (2 models each)"][8] == "no evidence"
    )
    assert "not the seeds" in text


def test_other_sentences_or_a_missing_seed_are_refused(script):
    a = table(["normal", "positive"], [[0, 1, 0], [0, 1, 0]])
    with pytest.raises(ValueError, match="same test sentences"):
        script.compare([a], [a.assign(id=["t0", "t1"])], ["42"], ("A", "B"), BOOT)
    with pytest.raises(ValueError, match="same test sentences"):
        script.compare([a], [a.assign(true=["normal", "normal"])], ["42"], ("A", "B"), BOOT)
    with pytest.raises(ValueError, match="one table per seed"):
        script.compare([a, a], [a], ["42", "1"], ("A", "B"), BOOT)
    with pytest.raises(ValueError, match="classes"):
        script.compare([a], [a.drop(columns="p_negative")], ["42"], ("A", "B"), BOOT)


def test_the_bootstrap_speed_script_times_two_ways_to_the_same_interval():
    speed = load_benchmark("jrte_bootstrap_speed")
    rng = np.random.default_rng(2)
    true = list(rng.choice(NAMES, size=60))
    a, b = table(true, rng.dirichlet([1, 1, 1], 60)), table(true, rng.dirichlet([1, 1, 1], 60))
    results = speed.time_both(a, b, "test", BOOT)
    (slow, c_slow), (fast, c_fast) = results.values()
    assert slow > 0 and fast > 0
    assert (c_slow.difference, c_slow.ci_low, c_slow.ci_high) == (c_fast.difference, c_fast.ci_low, c_fast.ci_high)
    # a table without class probabilities (Level 1's) takes its classes from the other
    no_probs = a.drop(columns=[f"p_{n}" for n in NAMES])
    assert speed.time_both(no_probs, b, "test", BOOT)["scikit-learn f1_score"][1] == c_slow
    with pytest.raises(ValueError, match="same test sentences"):
        speed.time_both(a, b.assign(id=[f"t{i}" for i in range(60)]), "test", BOOT)
    with pytest.raises(ValueError, match="p_<class> columns"):
        speed.time_both(no_probs, no_probs, "test", BOOT)
