import re

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from qeu_kedro.pipelines.ridge_analysis.nodes import (
    RatingDesign,
    build_model_input,
    check_rated_users,
    check_ratings,
    check_users,
    evaluate_ridge,
    fit_ridge,
    plot_coefficients,
    plot_top_features,
    predict,
    split_ratings,
    top_coefficients,
)
from qeu_kedro.validation import RawDataError
from tests.pipelines.ridge_analysis.test_exact_ridge import RIDGE  # conf/base, join loss unchecked

PARAMS = {
    "alpha": 5.0,
    "fit_intercept": True,
    "test_size": 0.25,
    "seed": 0,
    "top_k": 3,
    "n_plot": 2,
    "plot_features": [],
    "jitter": 0.3,
}


def ratings():
    return pd.DataFrame(
        {"user_id": [1, 1, 2, 2, 3], "movie_id": [7, 8, 7, 9, 8], "rating": [5, 3, 4, 1, 2], "timestamp": 0}
    )


def users():
    return pd.DataFrame(
        {
            "user_id": [1, 2, 3],
            "age": [20, 30, 40],
            "gender": ["M", "F", "M"],
            "occupation": ["writer", "student", "writer"],
        }
    )


def embeddings():
    return pd.DataFrame(
        {
            "movie_id": [7, 8],
            "title_embedding_0": [0.1, 0.2],
            "title_embedding_1": [0.3, -0.4],
            "overview_embedding_0": [1.0, 0.0],
        },
        dtype=np.float32,
    ).astype({"movie_id": "int64"})


def test_build_model_input_joins_one_hot_and_drops_movies_without_embedding():
    design, stats = build_model_input(check_ratings(ratings(), RIDGE), check_users(users(), RIDGE), embeddings(), RIDGE)
    table = design.to_frame()  # the flat table the original built, materialised for this check
    assert list(table.columns) == [
        "age",
        "gender_F",
        "gender_M",
        "occupation_student",
        "occupation_writer",
        "title_embedding_0",
        "title_embedding_1",
        "overview_embedding_0",
        "rating",
    ]
    assert len(table) == 4  # movie 9 has no embedding
    assert stats == {
        "n_ratings_in": 5,
        "n_ratings_used": 4,
        "n_ratings_dropped_no_embedding": 1,
        "n_movies": 2,
        "n_users": 3,
        "n_features": 8,
        "n_embedding_features": 3,
    }
    row = table.iloc[0]  # user 1 (writer, M, 20) rated movie 7 with 5
    assert (row["age"], row["gender_M"], row["occupation_writer"], row["title_embedding_1"], row["rating"]) == (
        20,
        1,
        1,
        pytest.approx(0.3),
        5,
    )


def test_rating_by_unknown_user_is_an_input_error():
    bad = ratings()
    bad.loc[3, "user_id"] = 99
    pattern = r"dataset 'ratings', column 'user_id', row 3 .*user 99 is not in 'users'"
    with pytest.raises(RawDataError, match=pattern):
        check_rated_users(check_ratings(bad, RIDGE), check_users(users(), RIDGE))
    with pytest.raises(RawDataError, match=pattern):  # a direct caller of build_model_input is checked too
        build_model_input(check_ratings(bad, RIDGE), check_users(users(), RIDGE), embeddings(), RIDGE)


def test_the_users_of_the_ratings_are_checked_before_the_movies_are_embedded():
    """check_rated_users needs only the checked raw tables, so it runs before embed_movies writes anything."""
    from qeu_kedro.pipelines.movie_embedding.pipeline import create_pipeline as movie_embedding
    from qeu_kedro.pipelines.ridge_analysis.pipeline import create_pipeline as ridge_analysis

    order = [n.name for n in (movie_embedding() + ridge_analysis()).nodes]  # kedro's run order
    for ns in ("base", "finetuned"):
        assert order.index(f"{ns}.check_rated_users") < order.index(f"{ns}.embed_movies")


@pytest.mark.parametrize(
    ("frame", "dataset", "column", "words"),
    [
        (ratings().assign(rating=[5, 3, 0, 1, 2]), "ratings", "rating", "row 2 .*outside the allowed range"),
        (ratings().drop(columns="movie_id"), "ratings", "movie_id", "required column is missing"),
        (ratings().iloc[0:0], "ratings", None, "the table is empty"),
        (users().assign(user_id=[1, 2, 2]), "users", "user_id", "row 2 .*duplicate id 2"),
        (users().assign(age=[20, "old", 40]), "users", "age", "row 1 .*expected a number"),
    ],
)
def test_check_ratings_and_users(frame, dataset, column, words):
    check = check_ratings if dataset == "ratings" else check_users
    pattern = f"dataset '{dataset}'" + (f", column '{column}'" if column else "") + f".*{words}"
    with pytest.raises(RawDataError, match=pattern):
        check(frame, RIDGE)


@pytest.fixture
def linear_table():
    """400 ratings, each of its own movie, whose features f0..f4 explain the rating linearly."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 5))
    y = 3 + x @ np.array([2.0, -1.0, 0.5, 0.0, 0.0]) + rng.normal(0, 0.1, 400)
    return RatingDesign(
        user_features=pd.DataFrame(index=pd.Index([1], name="user_id")),
        movie_features=pd.DataFrame(
            x, columns=[f"f{i}" for i in range(5)], index=pd.RangeIndex(1, 401, name="movie_id")
        ),
        user_row=np.zeros(400, dtype=np.int32),
        movie_row=np.arange(400, dtype=np.int32),
        rating=y,
        rows=np.arange(400),
    )


def test_split_is_seeded_and_sized(linear_table):
    train, test = split_ratings(linear_table, PARAMS)
    again, _ = split_ratings(linear_table, PARAMS)
    assert (len(train), len(test)) == (300, 100)
    np.testing.assert_array_equal(train.rows, again.rows)
    assert set(train.rows).isdisjoint(test.rows)


def test_fit_ridge_matches_sklearn_and_evaluates(linear_table):
    train, test = split_ratings(linear_table, PARAMS)
    model = fit_ridge(train, PARAMS)
    flat_train, flat_test = train.to_frame(), test.to_frame()
    reference = Ridge(alpha=5.0).fit(flat_train.drop(columns="rating"), flat_train["rating"])
    np.testing.assert_allclose(model["coefficients"], reference.coef_, rtol=1e-10)
    assert model["intercept"] == pytest.approx(reference.intercept_)
    np.testing.assert_allclose(predict(model, test), reference.predict(flat_test.drop(columns="rating")))
    metrics = evaluate_ridge(model, train, test, {"n_features": 5})
    assert metrics["r2_test"] > 0.99 and metrics["rmse_test"] < 0.2
    assert metrics["n_train"] == 300 and metrics["n_features"] == 5


def test_top_coefficients_orders_by_absolute_value(linear_table):
    model = fit_ridge(linear_table, PARAMS)
    top = top_coefficients(model, PARAMS)
    assert top["feature"].tolist() == ["f0", "f1", "f2"]
    assert top["rank"].tolist() == [1, 2, 3]
    assert top.loc[1, "coefficient"] < 0 < top.loc[1, "abs_coefficient"]


def test_scatter_panels_titled_with_correlation(linear_table):
    top = top_coefficients(fit_ridge(linear_table, PARAMS), PARAMS)
    fig = plot_top_features(linear_table, top, PARAMS)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2
    expected = np.corrcoef(linear_table.column("f0"), linear_table.rating)[0, 1]
    assert visible[0].get_title() == f"f0\nr = {expected:.3f}"
    jittered = visible[0].collections[0].get_offsets()[:, 1]
    offset = jittered - linear_table.rating
    assert 0 < np.abs(offset).max() <= 0.3
    named = plot_top_features(linear_table, top, {**PARAMS, "plot_features": ["f4"]})
    assert named.axes[0].get_title().startswith("f4\n")
    with pytest.raises(ValueError, match="plot_features names unknown features"):
        plot_top_features(linear_table, top, {**PARAMS, "plot_features": ["nope"]})
    bars = plot_coefficients(top)
    assert len(bars.axes[0].patches) == 3


LABELS = {"namespace": "base", "model": "all-MiniLM-L6-v2", "data": "the shipped sample"}


def test_binary_feature_is_drawn_as_group_means_with_intervals_and_titles_say_what_they_show():
    # occupation_writer is 0/1: two points (mean rating of each group), not two stripes
    six = pd.DataFrame(
        {
            "user_id": range(1, 7),
            "age": 30,
            "gender": ["M", "F"] * 3,
            "occupation": ["writer", "writer", "writer", "student", "student", "student"],
        }
    )
    rated = pd.DataFrame(
        {
            "user_id": [u for u in range(1, 7) for _ in (7, 8)],
            "movie_id": [7, 8] * 6,
            "rating": [2, 1, 3, 2, 2, 1, 5, 4, 4, 5, 3, 5],
            "timestamp": 0,
        }
    )
    design, _ = build_model_input(check_ratings(rated, RIDGE), check_users(six, RIDGE), embeddings(), RIDGE)
    params = {**PARAMS, "plot_features": ["occupation_writer", "title_embedding_0"]}
    top = top_coefficients(fit_ridge(design, PARAMS), PARAMS)
    fig = plot_top_features(design, top, params, LABELS)
    binary, continuous = fig.axes[0], fig.axes[1]
    writer = design.column("occupation_writer") == 1
    means = sorted(float(c.lines[0].get_ydata()[0]) for c in binary.containers)  # one errorbar per group
    assert means == pytest.approx(sorted([design.rating[writer].mean(), design.rating[~writer].mean()]))
    assert not binary.collections or all(len(c.get_offsets()) != len(design.rating) for c in binary.collections)
    labels = [t.get_text() for t in binary.get_legend().get_texts()]
    assert labels == [
        f"0: not occupation_writer ({(~writer).sum()} ratings, 3 users)",
        f"1: is occupation_writer ({writer.sum()} ratings, 3 users)",
    ]
    # the difference of the means; 3 users a group are too few for an interval over users
    assert "1 - 0: -2.50, no interval (fewer than 6 users in a group)" in binary.get_title()
    assert [t.get_text() for t in continuous.get_legend().get_texts()] == ["a rating (jittered)", "least-squares line"]
    title = fig._suptitle.get_text()
    assert title.startswith("ridge_analysis / base:") and "all-MiniLM-L6-v2" in title and "the shipped sample" in title
    assert f"n = {len(design.rating)} ratings" in title

    metrics = evaluate_ridge(fit_ridge(design, PARAMS), *split_ratings(design, PARAMS), {"n_ratings_used": 12})
    bars = plot_coefficients(top, metrics, LABELS)
    title = bars._suptitle.get_text()  # the figure's title (centred on the figure, wrapped to it)
    # the coefficients are the training split's fit: its n, and the test R² with the test split's n
    assert "ridge_analysis / base" in title and f"n = {metrics['n_train']} ratings" in title
    assert f"on {metrics['n_test']} test ratings" in title
    assert [t.get_text() for t in bars.axes[0].get_legend().get_texts()] == ["raises the rating", "lowers the rating"]


@pytest.mark.parametrize(
    "alpha_mode, held_out, words",
    [
        ("auto", "movies", "alpha = 300, chosen by auto; test R² = 0.0500 on 11,736 test ratings of unseen movies"),
        ("fixed", "ratings", "alpha = 5, fixed; test R² = 0.0500 on 11,736 test ratings of movies seen in training"),
    ],
)
def test_the_coefficient_chart_says_how_alpha_was_chosen_and_what_the_test_split_holds_out(alpha_mode, held_out, words):
    top = pd.DataFrame({"rank": [1, 2], "feature": ["a", "b"], "coefficient": [0.5, -0.2]})
    alpha = 300.0 if alpha_mode == "auto" else 5.0
    metrics = {"alpha": alpha, "r2_test": 0.05, "n_test": 11736, "n_train": 46768}
    metrics.update({"held_out": held_out, "alpha_mode": alpha_mode})
    title = plot_coefficients(top, metrics, LABELS)._suptitle.get_text()
    assert title.splitlines()[:2] == ["ridge_analysis / base: top 2 |coefficients|", words]


@pytest.mark.parametrize("partitioned", [False, True])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_non_finite_embedding_is_refused_naming_the_movie_and_column_and_what_to_re_run(value, partitioned):
    """A NaN in movie_embeddings crashed the ridge with LAPACK's message after a 'singular' warning."""
    from tests.pipelines.ridge_analysis.test_exact_ridge import random_inputs

    ratings, users, embeddings = random_inputs(seed=3)
    embeddings.iloc[3, 5] = value  # column e4 of the 4th movie
    build = build_model_input
    if partitioned:
        dd = pytest.importorskip("dask.dataframe")
        from qeu_kedro.pipelines.ridge_analysis.partitioned import build_partitioned_input

        ratings = dd.from_pandas(ratings, npartitions=3)
        build = build_partitioned_input
    with pytest.raises(RawDataError) as error:
        build(ratings, users, embeddings, RIDGE)
    message = str(error.value)
    assert (error.value.dataset, error.value.column, error.value.row) == ("movie_embeddings", "e4", 3)
    assert f"movie_id {embeddings['movie_id'].iloc[3]} has the value {value}" in message
    assert "1 non-finite value(s) in 1 movie(s)" in message
    assert "kedro run --pipelines movie_embedding,ridge_analysis" in message


def test_a_user_features_interval_is_over_users_not_over_their_ratings():
    """40 users, half of them writers, rate 15 movies each; a user's ratings are their own level plus little
    noise. The ratings are not 600 independent draws but 40: the interval of writers - others must be as wide
    as a t interval over the users' means (Welch over ratings was about sqrt(15) times narrower, and excluded 0
    in about half of simulated cases with no effect), seeded and said to be over users."""
    from scipy import stats

    rng = np.random.default_rng(1)
    n_users, per_user = 40, 15
    people = pd.DataFrame(
        {
            "user_id": range(1, n_users + 1),
            "age": 30,
            "gender": ["M", "F"] * (n_users // 2),
            "occupation": ["writer", "student"] * (n_users // 2),
        }
    )
    level = rng.integers(1, 6, n_users)
    rated = pd.DataFrame(
        {
            "user_id": np.repeat(people["user_id"], per_user),
            "movie_id": np.tile(np.arange(1, per_user + 1) * 7, n_users),
            "rating": np.clip(np.repeat(level, per_user) + rng.choice([-1, 0, 0, 0, 1], n_users * per_user), 1, 5),
        }
    )
    vectors = pd.DataFrame({"movie_id": np.arange(1, per_user + 1) * 7, "e0": rng.normal(size=per_user)})
    design, _ = build_model_input(check_ratings(rated, RIDGE), check_users(people, RIDGE), vectors, RIDGE)
    params = {**PARAMS, "plot_features": ["occupation_writer"]}
    top = top_coefficients(fit_ridge(design, PARAMS), PARAMS)
    title = plot_top_features(design, top, params, LABELS).axes[0].get_title()
    low, high = (float(v) for v in re.search(r"1 - 0: \S+ \[(\S+), (\S+)\]", title).groups())
    writer = design.column("occupation_writer") == 1
    user_means = pd.Series(design.rating).groupby(design.user_row).mean()
    is_writer = pd.Series(writer).groupby(design.user_row).first()
    by_user = stats.ttest_ind(user_means[is_writer], user_means[~is_writer], equal_var=False).confidence_interval()
    by_rating = stats.ttest_ind(design.rating[writer], design.rating[~writer], equal_var=False).confidence_interval()
    width, user_width = high - low, by_user.high - by_user.low
    assert 0.75 * user_width < width < 1.35 * user_width
    assert width > 2.5 * (by_rating.high - by_rating.low)
    assert "95 % interval, users resampled" in title
    # the same parameters and seed, the same interval
    assert plot_top_features(design, top, params, LABELS).axes[0].get_title() == title
