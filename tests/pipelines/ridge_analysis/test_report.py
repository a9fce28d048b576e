"""The ridge report of a namespace: fit, counts, the top coefficients and both figures, linked by file name."""

import pandas as pd

from qeu_kedro.pipelines.ridge_analysis.report import ridge_report

METRICS = {
    "alpha": 5.0,
    "r2_train": 0.52041,
    "rmse_train": 0.64407,
    "n_train": 2959,
    "r2_test": 0.47677,
    "rmse_test": 0.67427,
    "n_test": 740,
    "cv_r2_test_mean": 0.48473,
    "cv_r2_test_sd": 0.02496,
    "cv_n_folds": 25,
    "cv_repeats": 5,
    "cv_folds": 5,
    "n_ratings_used": 3699,
    "n_users": 160,
}
LABELS = {"namespace": "base", "model": "all-MiniLM-L6-v2", "data": "the sample"}
TOP = pd.DataFrame(
    {
        "rank": range(1, 13),
        "feature": [f"f{i}" for i in range(1, 13)],
        "coefficient": [-0.55943, 0.47368] + [0.1] * 10,
        "abs_coefficient": [0.55943, 0.47368] + [0.1] * 10,
    }
)


def _row(text: str, start: str) -> list[str]:
    """The cells of the one table row that starts with ``start``."""
    (line,) = [line for line in text.splitlines() if line.startswith(start)]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_report_states_the_fit_the_counts_and_links_both_figures():
    text = ridge_report(METRICS, TOP, "data/08_reporting/base/scatter.png", "data/08_reporting/base/bar.png", LABELS)
    assert text.startswith("# ridge_analysis / base: ")
    assert "Embedding model: **all-MiniLM-L6-v2**. Data: the sample." in text
    assert "Counts: 3,699 ratings used; 160 users." in text  # only the counts the metrics hold
    assert "## Fit (Ridge, alpha = 5)" in text
    assert _row(text, "| test ") == ["test", "0.4768", "0.6743", "740"]
    # metrics written before group_by: folds of ratings, said so with why that is not a measure of the embedding
    assert "(5 x 5-fold, 25 fold scores), folds of single ratings: test R² 0.4847 on average" in text
    assert "standard deviation 0.0250. Each fold: the test ratings' movies are rated in training too" in text
    assert "## Top 10 coefficients by size (of 12 in `top_coefficients.csv`)" in text
    assert _row(text, "|      1 ") == ["1", "f1", "-0.5594"] and _row(text, "|      2 ")[2] == "+0.4737"
    assert "f11" not in text
    assert text.index("](bar.png)") < text.index("](scatter.png)")


def test_without_labels_or_cv_the_report_still_has_its_fit():
    metrics = {k: v for k, v in METRICS.items() if not k.startswith("cv_")}
    text = ridge_report(metrics, TOP, "s.png", "b.png")
    assert "cross-validation" not in text and "Embedding model" not in text
    assert _row(text, "| train ") == ["train", "0.5204", "0.6441", "2,959"]


def test_the_report_says_the_test_split_and_the_folds_hold_out_whole_movies():
    metrics = {**METRICS, "held_out": "movies", "cv_held_out": "movies"}
    text = ridge_report(metrics, TOP, "s.png", "b.png", LABELS)
    assert "The test split holds out whole movies: every test rating is of a movie the model has not seen" in text
    assert "(5 x 5-fold, 25 fold scores), folds of whole movies: test R² 0.4847 on average" in text
    assert "Each fold:" not in text  # said once, for the split


SEARCH = {
    "mode": "auto",
    "alpha": 10.0,
    "folds": 5,
    "held_out": "movies",
    "grid": [1.0, 10.0, 100.0],
    "cv_r2_mean": [0.41, 0.45, 0.43],
    "cv_r2_std": [0.02, 0.03, 0.025],
}


def test_the_report_says_alpha_was_chosen_by_auto_shows_the_search_curve_and_the_nested_cv():
    metrics = {
        **METRICS,
        "alpha": 10.0,
        "alpha_mode": "auto",
        "held_out": "movies",
        "cv_held_out": "movies",
        "cv_alpha_min": 10.0,
        "cv_alpha_median": 10.0,
        "cv_alpha_max": 100.0,
    }
    text = ridge_report(metrics, TOP, "s.png", "b.png", LABELS, SEARCH)
    assert (
        "alpha = 10 was chosen by `alpha: auto`: the best mean 5-fold CV R² on the training split (folds of whole movies)"
        in text
    )
    assert _row(text, "| **10** ") == ["**10**", "0.4500", "0.0300"]
    assert _row(text, "| 100 ") == ["100", "0.4300", "0.0250"]
    assert "the cross-validation is nested: each fold chose its own alpha" in text
    assert "(alpha 10 to 100, median 10;" in text


def test_a_fixed_alpha_is_said_to_be_fixed():
    text = ridge_report(
        {**METRICS, "alpha_mode": "fixed"}, TOP, "s.png", "b.png", LABELS, {"mode": "fixed", "alpha": 5.0}
    )
    assert "alpha is fixed (`ridge_analysis.alpha`)." in text and "nested" not in text
