"""benchmarks/jrte_paired.py: two runs' predictions compared sentence by sentence."""

import numpy as np
import pandas as pd
import pytest

from tests.conftest import load_benchmark

NAMES = ["negative", "normal", "positive"]
STATS = {"n_resamples": 200, "confidence": 0.95, "seed": 0}


@pytest.fixture(scope="module")
def script():
    return load_benchmark("jrte_paired")


def predictions(true: list[str], predicted: list[str], split: str = "test") -> pd.DataFrame:
    n = len(true)
    frame = pd.DataFrame(
        {"split": split, "id": [f"s{i}" for i in range(n)], "text": "x", "true": true, "predicted": predicted}
    )
    for name in NAMES:
        frame[f"p_{name}"] = (np.array(predicted) == name).astype(float)
    return frame


def _rows(table: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]


def test_identical_runs_differ_by_zero_and_a_better_run_is_better(script):
    rng = np.random.default_rng(0)
    true = list(rng.choice(NAMES, size=120))
    wrong = [NAMES[(NAMES.index(t) + 1) % 3] if i % 3 == 0 else t for i, t in enumerate(true)]  # a third wrong
    a = pd.concat([predictions(true, wrong, "dev"), predictions(true, wrong)])

    same = _rows(script.compare(a, a.copy(), ("A", "B"), STATS))
    assert [r[0].split()[0] for r in same] == ["dev", "dev", "test", "test"]
    assert all(r[4] == "+0.0000 [+0.0000, +0.0000]" and r[5] == "no evidence" for r in same)

    b = pd.concat([predictions(true, true, "dev"), predictions(true, true)])  # every sentence right
    better = _rows(script.compare(a, b, ("A", "B"), STATS))
    assert all(r[5] == "better" for r in better)
    accuracy_test = next(r for r in better if r[0].startswith("test") and r[1] == "accuracy")
    assert accuracy_test[2].startswith("0.6667") and accuracy_test[3].startswith("1.0000")
    assert _rows(script.compare(b, a, ("B", "A"), STATS))[0][5] == "worse"


def test_other_sentences_or_classes_are_refused(script):
    a = predictions(["normal", "positive"] * 3, ["normal", "normal"] * 3)
    with pytest.raises(ValueError, match="same test sentences"):
        script.compare(a, a.assign(id=[f"t{i}" for i in range(6)]), ("A", "B"), STATS)
    with pytest.raises(ValueError, match="different classes"):
        script.compare(a, a.drop(columns="p_negative"), ("A", "B"), STATS)
