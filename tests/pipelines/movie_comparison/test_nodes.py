"""movie_comparison on a known case: two small top-coefficient tables and their metrics."""

import pandas as pd
import pytest

from qeu_kedro.pipelines.movie_comparison.nodes import compare_ridge, plot_comparison, side_by_side


def top(features, coefs):
    frame = pd.DataFrame({"feature": features, "coefficient": coefs})
    frame["abs_coefficient"] = frame["coefficient"].abs()
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame


BASE = top(["occupation_writer", "overview_embedding_3", "occupation_student", "age"], [-0.6, 0.5, 0.4, 0.01])
FINE = top(["overview_embedding_7", "occupation_student", "occupation_writer", "title_embedding_1"], [0.9, 0.45, -0.44, 0.2])
BASE_METRICS = {"r2_train": 0.40, "r2_test": 0.30, "rmse_train": 0.9, "rmse_test": 1.0, "alpha": 5.0}
FINE_METRICS = {"r2_train": 0.50, "r2_test": 0.35, "rmse_train": 0.8, "rmse_test": 0.95, "alpha": 5.0}


def test_compare_ridge_r2_and_shared_features():
    summary = compare_ridge(BASE_METRICS, FINE_METRICS, BASE, FINE)
    assert summary["r2_test"] == {"base": 0.30, "finetuned": 0.35, "finetuned_minus_base": pytest.approx(0.05)}
    assert summary["rmse_test"]["finetuned_minus_base"] == pytest.approx(-0.05)
    assert summary["n_shared_top_features"] == 2
    assert summary["shared_top_features"] == ["occupation_writer", "occupation_student"]  # in base's order
    assert summary["only_base"] == ["overview_embedding_3", "age"]
    assert summary["only_finetuned"] == ["overview_embedding_7", "title_embedding_1"]
    assert summary["top_k"] == {"base": 4, "finetuned": 4}


def test_side_by_side_ranks():
    table = side_by_side(BASE, FINE)
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert table["base_feature"].tolist() == BASE["feature"].tolist()
    assert table["finetuned_coefficient"].tolist() == [0.9, 0.45, -0.44, 0.2]
    assert table["base_rank_in_finetuned"].tolist() == [3, pd.NA, 2, pd.NA]
    assert table["finetuned_rank_in_base"].tolist() == [pd.NA, 3, 1, pd.NA]


def test_side_by_side_with_lists_of_different_length():
    table = side_by_side(BASE, FINE.head(2))
    assert len(table) == 4
    assert table["finetuned_feature"].isna().tolist() == [False, False, True, True]


def test_plot_comparison_has_r2_and_both_bar_charts():
    summary = compare_ridge(BASE_METRICS, FINE_METRICS, BASE, FINE)
    fig = plot_comparison(summary, BASE, FINE)
    r2_ax, base_ax, fine_ax = fig.axes
    heights = sorted(round(p.get_height(), 3) for p in r2_ax.patches)
    assert heights == [0.30, 0.35, 0.40, 0.50]
    assert [t.get_text() for t in base_ax.get_yticklabels()] == BASE["feature"].tolist()[::-1]
    assert len(fine_ax.patches) == 4
    assert "2 top features shared" in fig._suptitle.get_text()
