"""movie_comparison on a known case: two small top-coefficient tables and their metrics."""

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.pipelines.movie_comparison.nodes import compare_ridge, plot_comparison, side_by_side, unpack_results
from qeu_kedro.pipelines.ridge_analysis.nodes import collect_results, ridge_settings
from qeu_kedro.stats import signed
from tests.pipelines.ridge_analysis.test_exact_ridge import RIDGE  # conf/base's ridge_analysis


def top(features, coefs):
    frame = pd.DataFrame({"feature": features, "coefficient": coefs})
    frame["abs_coefficient"] = frame["coefficient"].abs()
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame


BASE = top(["occupation_writer", "overview_embedding_3", "occupation_student", "age"], [-0.6, 0.5, 0.4, 0.01])
FINE = top(
    ["overview_embedding_7", "occupation_student", "occupation_writer", "title_embedding_1"], [0.9, 0.45, -0.44, 0.2]
)
SETTINGS = ridge_settings(RIDGE)  # what each namespace's ridge_results says it was fitted with
BASE_METRICS = {
    "r2_train": 0.40,
    "r2_test": 0.30,
    "rmse_train": 0.9,
    "rmse_test": 1.0,
    "alpha": 5.0,
    "settings": SETTINGS,
}
FINE_METRICS = {
    "r2_train": 0.50,
    "r2_test": 0.35,
    "rmse_train": 0.8,
    "rmse_test": 0.95,
    "alpha": 5.0,
    "settings": SETTINGS,
}


PARAMS = {"confidence": 0.95, "data": "hand-made", "models": {"base": "model A", "finetuned": "model B"}}


def cv_scores(r2, hashes=None):
    n = len(r2)
    return pd.DataFrame(
        {
            "repeat": np.arange(n) // 5,
            "fold": np.arange(n) % 5,
            "n_train": 800,
            "n_test": 200,
            "r2_test": r2,
            "test_hash": hashes if hashes is not None else [f"h{i}" for i in range(n)],
        }
    )


RETRIEVAL = {"data_label": "pairs", "verdicts": {"8": "better", "4": "no evidence"}, "conclusion": ["NDCG@10 ..."]}
RNG = np.random.default_rng(0)
BASE_CV = cv_scores(0.30 + RNG.normal(0, 0.02, 25))


def test_compare_ridge_r2_and_shared_features():
    summary = compare_ridge(BASE_METRICS, FINE_METRICS, BASE, FINE, BASE_CV, BASE_CV, RETRIEVAL, PARAMS)
    # each namespace's single-split numbers, but no difference of them: one split gives it no interval
    assert summary["r2_test"] == {"base": 0.30, "finetuned": 0.35}
    assert all("finetuned_minus_base" not in summary[key] for key in ("r2_train", "r2_test", "rmse_train", "rmse_test"))
    assert summary["n_shared_top_features"] == 2
    assert summary["shared_top_features"] == ["occupation_writer", "occupation_student"]  # in base's order
    assert summary["only_base"] == ["overview_embedding_3", "age"]
    assert summary["only_finetuned"] == ["overview_embedding_7", "title_embedding_1"]
    assert summary["top_k"] == {"base": 4, "finetuned": 4}
    assert summary["finetuned_model_retrieval"]["ndcg@10_verdicts"] == {"8": "better", "4": "no evidence"}


def test_identical_cv_scores_are_no_evidence():
    cv = compare_ridge(BASE_METRICS, FINE_METRICS, BASE, FINE, BASE_CV, BASE_CV.copy(), RETRIEVAL, PARAMS)["cv_r2_test"]
    assert cv["difference"] == 0 and cv["ci_low"] <= 0 <= cv["ci_high"]
    assert cv["verdict"] == "no evidence" and "no evidence" in cv["conclusion"]
    assert cv["n"] == 25 and cv["n_ratings"] == 1000
    # 5 repeats of 5-fold CV, not "25-fold" (which would be 4 % test folds)
    assert (
        cv["cv_repeats"] == 5
        and cv["cv_folds"] == 5
        and "(5 x 5-fold CV, folds of single ratings, each fold's movies also rated in training, 25 fold scores, "
        "1000 ratings)"
        in cv["conclusion"]  # a table without held_out (written before group_by): folds of ratings
    )


def test_a_consistent_gain_on_every_fold_is_better_and_a_loss_worse():
    gain = BASE_CV.assign(r2_test=BASE_CV["r2_test"] + 0.02 + RNG.normal(0, 0.002, 25))
    better = compare_ridge(BASE_METRICS, FINE_METRICS, BASE, FINE, BASE_CV, gain, RETRIEVAL, PARAMS)["cv_r2_test"]
    assert better["ci_low"] > 0 and better["verdict"] == "better"
    worse = compare_ridge(BASE_METRICS, FINE_METRICS, BASE, FINE, gain, BASE_CV, RETRIEVAL, PARAMS)["cv_r2_test"]
    assert worse["ci_high"] < 0 and worse["verdict"] == "worse"


def test_folds_of_different_ratings_are_refused():
    other = cv_scores(BASE_CV["r2_test"], hashes=["x"] * 25)
    with pytest.raises(ValueError, match="holds different ratings"):
        compare_ridge(BASE_METRICS, FINE_METRICS, BASE, FINE, BASE_CV, other, RETRIEVAL, PARAMS)


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


def test_plot_comparison_draws_the_interval_and_states_the_verdict():
    gain = BASE_CV.assign(r2_test=BASE_CV["r2_test"] + 0.02 + RNG.normal(0, 0.002, 25))
    summary = compare_ridge(BASE_METRICS, FINE_METRICS, BASE, FINE, BASE_CV, gain, RETRIEVAL, PARAMS)
    fig = plot_comparison(summary, BASE, FINE)
    diff_ax, base_ax, fine_ax = fig.axes
    cv = summary["cv_r2_test"]
    low, high = diff_ax.get_ylim()
    assert low < cv["ci_low"] and cv["ci_high"] < high and high < 0.1  # zoomed on the difference, not on R² from 0
    assert "better" in diff_ax.get_title() and "test R² better" in fig._suptitle.get_text()
    assert "hand-made" in fig._suptitle.get_text() and "1000 ratings" in fig._suptitle.get_text()
    assert "model A" in base_ax.get_title() and "model B" in fine_ax.get_title()
    assert [t.get_text() for t in base_ax.get_yticklabels()] == BASE["feature"].tolist()[::-1]
    assert len(fine_ax.patches) == 4
    assert "2 of 4 top features shared" in fig._suptitle.get_text()
    assert fine_ax.get_legend() is not None and diff_ax.get_legend() is not None
    legend = [t.get_text() for t in diff_ax.get_legend().get_texts()]
    assert "5 x 5-fold CV mean of 25 fold scores, 95% interval\nfolds of ratings" in legend


def test_ridge_results_come_back_from_their_json_file_exactly(tmp_path):
    """ridge_analysis's one handoff file, saved and loaded by the catalog's dataset type, gives back
    the same metrics, top-coefficient table and CV folds (floats exact), so the comparison is unchanged."""
    from kedro_datasets.json import JSONDataset

    cv = BASE_CV.assign(test_hash=[f"{i:016x}" for i in range(len(BASE_CV))])
    dataset = JSONDataset(filepath=str(tmp_path / "ridge_results.json"))
    ridge_metrics = {k: v for k, v in BASE_METRICS.items() if k != "settings"}  # as ridge_metrics.json holds them
    dataset.save(collect_results(ridge_metrics, BASE, cv, RIDGE))
    metrics, top_back, cv_back = unpack_results(dataset.load())
    assert metrics == BASE_METRICS
    pd.testing.assert_frame_equal(top_back, BASE)
    pd.testing.assert_frame_equal(cv_back, cv)
    direct = compare_ridge(BASE_METRICS, FINE_METRICS, BASE, FINE, cv, cv.copy(), RETRIEVAL, PARAMS)
    via_file = compare_ridge(metrics, FINE_METRICS, top_back, FINE, cv_back, cv.copy(), RETRIEVAL, PARAMS)
    assert via_file == direct


def test_ridge_results_of_another_version_are_refused_with_what_to_run():
    with pytest.raises(ValueError, match=r"no \['cv_scores'\].*kedro run --pipelines ridge_analysis"):
        unpack_results({"metrics": BASE_METRICS, "settings": SETTINGS, "top_coefficients": []})


def test_the_benchmark_script_prints_the_summary_compare_ridge_writes(tmp_path):
    """benchmarks/movie_comparison.sh reads summary.json after three kedro runs: a key it reads that the
    summary no longer has would fail only then (it read the single-split difference after it was dropped)."""
    import json
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = (Path(__file__).parents[3] / "benchmarks" / "movie_comparison.sh").read_text()
    printer = re.search(r"<<'PY'\n(.*?)\nPY\n", script, re.S).group(1)
    gain = cv_scores(BASE_CV["r2_test"].to_numpy() + 0.01)
    summary = compare_ridge(BASE_METRICS, FINE_METRICS, BASE, FINE, BASE_CV, gain, RETRIEVAL, PARAMS)
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    out = subprocess.run([sys.executable, "-c", printer, str(path)], capture_output=True, text=True, check=True).stdout
    assert "base 0.30000, finetuned 0.35000" in out
    assert f"difference {summary['cv_r2_test']['difference']:+.5f}" in out
    assert "(25 folds of ratings, 1000 ratings)" in out  # the hand-made folds have no held_out: ratings
    assert ": better" in out


def _grouped_cv_tables():
    """Two namespaces' CV tables from ridge_analysis itself: the same ratings and movies, other vectors,
    folds of whole movies (conf/base's group_by)."""
    from qeu_kedro.pipelines.ridge_analysis.nodes import build_model_input, cross_validate_ridge
    from tests.pipelines.ridge_analysis.test_exact_ridge import RIDGE, random_inputs

    ratings, users, embeddings = random_inputs(seed=4)
    other = embeddings[["movie_id"]].join(
        pd.DataFrame(np.random.default_rng(9).normal(size=(len(embeddings), 8)), columns=[f"f{i}" for i in range(8)])
    )
    params = {**RIDGE, "cv": {"folds": 5, "repeats": 3, "seed": 1}}
    return [
        cross_validate_ridge(build_model_input(ratings, users, vectors, params)[0], {"alpha": 5.0}, params)
        for vectors in (embeddings, other)
    ]


def test_grouped_folds_are_paired_with_their_own_sizes_and_said_to_hold_out_movies():
    from scipy import stats

    from qeu_kedro.stats import corrected_cv_interval

    base_cv, fine_cv = _grouped_cv_tables()
    assert base_cv["n_test"].max() - base_cv["n_test"].min() > 10  # folds of whole movies differ in ratings
    cv = compare_ridge(BASE_METRICS, FINE_METRICS, BASE, FINE, base_cv, fine_cv, RETRIEVAL, PARAMS)["cv_r2_test"]
    shares = base_cv["n_test"] / (base_cv["n_test"] + base_cv["n_train"])
    # the correlation of two folds' scores is taken as the folds' own test share, averaged: over a repeat's
    # folds the shares add to 1, so grouped or not the variance term is n_test / n_train = 1 / (k - 1)
    assert cv["test_fraction"] == pytest.approx(shares.mean(), abs=1e-15) == pytest.approx(1 / 5, abs=1e-12)
    expected = corrected_cv_interval(base_cv["r2_test"], fine_cv["r2_test"], float(shares.mean()))
    assert (cv["ci_low"], cv["ci_high"]) == pytest.approx((expected.ci_low, expected.ci_high), abs=1e-12)
    d = fine_cv["r2_test"] - base_cv["r2_test"]
    # the interval by hand: t_{J-1} sqrt((1/J + n_test/n_train) s²), n_test/n_train = 1/4
    half = stats.t.ppf(0.975, len(d) - 1) * np.sqrt((1 / len(d) + 1 / 4) * d.var(ddof=1))
    assert cv["ci_high"] - cv["ci_low"] == pytest.approx(2 * half, rel=1e-9)
    assert cv["held_out"] == "movies" and cv["n_ratings"] == int(base_cv["n_test"].iloc[0] + base_cv["n_train"].iloc[0])
    assert (
        "(3 x 5-fold CV, folds of whole movies, each fold's movies unseen in training, 15 fold scores"
        in cv["conclusion"]
    )


def test_folds_of_other_units_are_refused_with_the_parameter_to_align():
    base_cv, _ = _grouped_cv_tables()
    by_rating = base_cv.assign(held_out="ratings")
    with pytest.raises(
        ValueError, match=r"base's CV folds hold out movies, finetuned's ratings.*same ridge_analysis\.group_by"
    ):
        compare_ridge(BASE_METRICS, FINE_METRICS, BASE, FINE, base_cv, by_rating, RETRIEVAL, PARAMS)


def test_a_firm_difference_too_small_for_four_decimals_is_not_titled_zero():
    """+3.1e-05 with its interval above 0 is "better": the panel's title must not read +0.0000 beside it."""
    rng = np.random.default_rng(0)
    small = BASE_CV.assign(r2_test=BASE_CV["r2_test"] + 3e-5 + rng.normal(0, 2e-6, 25))
    summary = compare_ridge(BASE_METRICS, FINE_METRICS, BASE, FINE, BASE_CV, small, RETRIEVAL, PARAMS)
    cv = summary["cv_r2_test"]
    assert cv["verdict"] == "better" and 0 < cv["ci_low"] < 5e-5
    title = plot_comparison(summary, BASE, FINE).axes[0].get_title()
    assert "+0.0000" not in title
    assert f"better: {signed(cv['difference'])} [{signed(cv['ci_low'])}, {signed(cv['ci_high'])}]" in title
    assert "e-05" in title


def _metrics_with(**params):
    """FINE_METRICS as a namespace fitted with conf/base's ridge_analysis changed by ``params`` reports them."""
    return {**FINE_METRICS, "settings": ridge_settings({**RIDGE, **params})}


@pytest.mark.parametrize(
    ("changed", "words"),
    [
        ({"alpha": 3000.0}, "alpha: 5.0 in base, 3000.0 in finetuned"),
        ({"alpha": "auto"}, "alpha: 5.0 in base, 'auto' in finetuned"),
        ({"fit_intercept": False}, "fit_intercept: True in base, False in finetuned"),
        ({"user_features": ["age"]}, "user_features: ['age', 'gender', 'occupation'] in base, ['age'] in finetuned"),
        ({"group_by": None}, "group_by: 'movie_id' in base, None in finetuned"),
        ({"test_size": 0.3}, "test_size: 0.2 in base, 0.3 in finetuned"),
        ({"seed": 7}, "seed: 42 in base, 7 in finetuned"),
    ],
)
def test_namespaces_fitted_with_other_ridge_parameters_are_refused_with_what_to_run(changed, words):
    """A base re-run with alpha 3000 (the folds the same) was paired with a finetuned run at alpha 5 and the
    difference reported as the embeddings' ("better +0.3946"): the comparison refuses, naming what differs."""
    with pytest.raises(ValueError, match="fitted with different ridge_analysis parameters") as error:
        compare_ridge(BASE_METRICS, _metrics_with(**changed), BASE, FINE, BASE_CV, BASE_CV, RETRIEVAL, PARAMS)
    assert words in str(error.value)
    assert "kedro run --pipelines movie_embedding,ridge_analysis,movie_comparison" in str(error.value)


def test_the_shared_ridge_settings_are_in_the_summary_and_alpha_auto_may_choose_its_own_alpha():
    summary = compare_ridge(BASE_METRICS, FINE_METRICS, BASE, FINE, BASE_CV, BASE_CV, RETRIEVAL, PARAMS)
    assert summary["ridge_settings"] == SETTINGS and SETTINGS["alpha"] == 5.0 and SETTINGS["group_by"] == "movie_id"
    # alpha: auto compares the setting (auto and its search), not the alpha each namespace chose
    auto = {"settings": ridge_settings({**RIDGE, "alpha": "auto"})}
    base, fine = {**BASE_METRICS, **auto, "alpha": 3.0}, {**FINE_METRICS, **auto, "alpha": 300.0}
    summary = compare_ridge(base, fine, BASE, FINE, BASE_CV, BASE_CV, RETRIEVAL, PARAMS)
    assert summary["ridge_settings"]["alpha"] == "auto"
    assert summary["ridge_settings"]["alpha_search"]["grid"] == [float(a) for a in RIDGE["alpha_search"]["grid"]]
    other_grid = {**RIDGE["alpha_search"], "grid": [1.0, 10.0]}
    with pytest.raises(ValueError, match=r"alpha_search: .* in base, .* in finetuned"):
        compare_ridge(
            base,
            {**fine, "settings": ridge_settings({**RIDGE, "alpha": "auto", "alpha_search": other_grid})},
            *(BASE, FINE, BASE_CV, BASE_CV, RETRIEVAL, PARAMS),
        )


def test_ridge_results_without_their_settings_are_refused():
    """A ridge_results.json written before the settings were recorded cannot show it was fitted as the other."""
    with pytest.raises(ValueError, match=r"no \['settings'\].*kedro run --pipelines ridge_analysis"):
        unpack_results({"metrics": BASE_METRICS, "top_coefficients": [], "cv_scores": []})
    unsettled = {k: v for k, v in FINE_METRICS.items() if k != "settings"}
    with pytest.raises(ValueError, match=r"\['finetuned'\] do not say which ridge_analysis parameters"):
        compare_ridge(BASE_METRICS, unsettled, BASE, FINE, BASE_CV, BASE_CV, RETRIEVAL, PARAMS)
