"""The ridge on partitioned ratings (Dask) equals the in-memory exact solver, on a cluster and without one."""

import json
import re
import shutil
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import RepeatedKFold, train_test_split

from qeu_kedro.dask_cluster import local_cluster_arguments
from qeu_kedro.pipelines.ridge_analysis import nodes
from qeu_kedro.pipelines.ridge_analysis import partitioned as P
from qeu_kedro.validation import RawDataError
from tests.conftest import DASK_IN_PROCESS, DASK_PROCESSES, run_kedro
from tests.pipelines.ridge_analysis.test_exact_ridge import RIDGE, random_inputs

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

PARAMS = {
    **RIDGE,  # conf/base (join loss unchecked: random_inputs; group_by: movie_id), these keys changed
    "alpha": 5.0,
    "fit_intercept": True,
    "test_size": 0.2,
    "seed": 42,
    "cv": {"folds": 5, "repeats": 2, "seed": 42},
    "top_k": 20,
    "n_plot": 3,
    "plot_features": [],
    "jitter": 0.3,
    "scatter_max_ratings": 1000,
}


@pytest.fixture(scope="module")
def cluster_client():
    """A two-worker in-process cluster (its HTTP servers on 127.0.0.1), the default scheduler meanwhile."""
    with (
        distributed.LocalCluster(**local_cluster_arguments(DASK_IN_PROCESS)) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def both(ratings, users, embeddings, npartitions=7, params=PARAMS):
    """(in-memory, partitioned) results of the whole ridge: model, CV table, metrics."""
    design, stats = nodes.build_model_input(ratings, users, embeddings, params)
    train, test = nodes.split_ratings(design, params)
    model = nodes.fit_ridge(train, params)
    cv = nodes.cross_validate_ridge(design, {"alpha": params["alpha"]}, params)
    metrics = nodes.evaluate_ridge(model, train, test, stats, cv)

    pdesign, pstats = P.build_partitioned_input(
        dd.from_pandas(ratings, npartitions=npartitions), users, embeddings, params
    )
    ptrain, ptest = P.split_partitioned(pdesign, params)
    pmodel = P.fit_partitioned(ptrain, params)
    pcv = P.cross_validate_partitioned(pdesign, {"alpha": params["alpha"]}, params)
    pmetrics = P.evaluate_partitioned(pmodel, ptrain, ptest, pstats, pcv)
    return (model, cv, metrics), (pmodel, pcv, pmetrics)


def assert_same(in_memory, on_partitions, atol=1e-9):
    (model, cv, metrics), (pmodel, pcv, pmetrics) = in_memory, on_partitions
    assert pmodel["features"] == model["features"]
    assert np.abs(np.subtract(pmodel["coefficients"], model["coefficients"])).max() <= atol
    assert pmodel["intercept"] == pytest.approx(model["intercept"], abs=atol)
    pd.testing.assert_frame_equal(
        pcv.drop(columns="test_hash"), cv.drop(columns="test_hash"), check_exact=False, atol=atol, rtol=0
    )
    assert metrics.keys() == pmetrics.keys()
    for key, value in metrics.items():
        assert pmetrics[key] == pytest.approx(value, abs=atol), key


def test_selections_are_scikit_learns_split_and_repeated_folds():
    for n in (10, 1003, 4096):
        labels = P.kfold_labels(n, folds=5, repeats=3, seed=7)
        for i, (_, test) in enumerate(RepeatedKFold(n_splits=5, n_repeats=3, random_state=7).split(np.zeros(n))):
            np.testing.assert_array_equal(np.flatnonzero(labels[i // 5] == i % 5), np.sort(test))
        _, test = train_test_split(np.arange(n), test_size=0.2, random_state=42)
        np.testing.assert_array_equal(np.flatnonzero(P.split_mask(n, 0.2, 42)), np.sort(test))


def test_partition_sums_add_up_to_the_in_memory_statistics():
    ratings, users, embeddings = random_inputs(seed=3)
    design, _ = nodes.build_model_input(ratings, users, embeddings, PARAMS)
    tables = (design.user_features.to_numpy(np.float64), design.movie_features.to_numpy(np.float64))
    rows = pd.DataFrame({"user_row": design.user_row, "movie_row": design.movie_row, "rating": design.rating})
    cuts = [0, 700, 701, 2000, len(rows)]  # uneven partitions, one of a single rating
    parts = [P.partition_sums(rows.iloc[a:b], tables[0], len(tables[1]), None, 1) for a, b in pairwise(cuts)]
    total = sum(parts[1:], parts[0])
    expected = nodes.sufficient_statistics(design)
    got = total.ridge_stats(*tables)
    assert got.n == expected.n and got.sum_y == pytest.approx(expected.sum_y)
    for a, b in ((got.sum_x, expected.sum_x), (got.gram, expected.gram), (got.xty, expected.xty)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9)
    for fit_intercept in (True, False):
        gram, xty, offsets = total.normal_equations(*tables, fit_intercept)
        gram0, xty0, offsets0 = nodes.normal_equations(design, fit_intercept)
        np.testing.assert_allclose(gram, gram0, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(xty, xty0, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(offsets["x"], offsets0["x"], rtol=1e-12)


@pytest.mark.parametrize("group_by", ["movie_id", None])
def test_without_a_cluster_partitioned_ridge_equals_in_memory(group_by):
    """The same split, folds, models and scores, holding out whole movies (conf/base) or single ratings."""
    ratings, users, embeddings = random_inputs(seed=1)
    in_memory, on_partitions = both(ratings, users, embeddings, npartitions=5, params={**PARAMS, "group_by": group_by})
    assert_same(in_memory, on_partitions)
    cv = on_partitions[1]
    assert (cv["held_out"] == ("movies" if group_by else "ratings")).all()
    assert (cv["n_test_movies_unseen"] == cv["n_test_movies"]).all() == bool(group_by)


def test_movie_features_alone_and_half_stars_partitioned_equal_in_memory():
    ratings, users, embeddings = random_inputs(seed=8)
    ratings = ratings.drop_duplicates(["user_id", "movie_id"], ignore_index=True)  # one rating per pair
    ratings["rating"] = ratings["rating"] - 0.5 * (ratings.index.to_numpy() % 2)  # half stars
    params = {**PARAMS, "user_features": [], "rating_step": 0.5}
    ids_only = nodes.check_users(ratings[["user_id"]], params)  # a 20M+ release: users from the ratings
    in_memory, on_partitions = both(nodes.check_ratings(ratings, params), ids_only, embeddings, 6, params)
    assert_same(in_memory, on_partitions)
    assert on_partitions[0]["features"] == [c for c in embeddings.columns if c != "movie_id"]
    # conf/base's whole stars refuse a half star (every odd row: every partition has one; any partition may fail
    # first), naming its row in the table and in its partition
    whole_stars = {**params, "rating_step": RIDGE["rating_step"]}
    parts = dd.from_pandas(ratings, npartitions=3, sort=False)
    starts = np.cumsum([0, *parts.map_partitions(len).compute()])
    with pytest.raises(RawDataError, match=r"whole number.*\(partition \d, its row [01];") as raised:
        P.build_partitioned_input(parts, ids_only, embeddings, whole_stars)
    part, row = (int(x) for x in re.search(r"\(partition (\d), its row (\d+);", str(raised.value)).groups())
    assert (raised.value.dataset, raised.value.column, raised.value.row) == ("ratings", "rating", starts[part] + row)
    assert raised.value.row % 2 == 1  # the first half star of its partition, counted in the whole table


def test_on_a_local_cluster_partitioned_ridge_equals_in_memory(cluster_client):
    ratings, users, embeddings = random_inputs(seed=2, n_ratings=6000)
    in_memory, on_partitions = both(ratings, users, embeddings, npartitions=9)
    assert_same(in_memory, on_partitions)
    # the partition sums ran on the cluster (its scheduler saw them), not on a local scheduler
    prefixes = cluster_client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert "partition_sums" in prefixes, prefixes


def test_a_bad_partition_is_named_with_column_and_row():
    ratings, users, embeddings = random_inputs(seed=5, n_ratings=300)
    ratings.loc[250, "rating"] = 9
    with pytest.raises(RawDataError, match=r"'ratings', column 'rating', row 250 .*\(partition 2, its row 50;"):
        P.build_partitioned_input(dd.from_pandas(ratings, npartitions=3, sort=False), users, embeddings, PARAMS)
    ratings.loc[250, "rating"] = 3
    ratings.loc[10, "user_id"] = 999_999
    with pytest.raises(RawDataError, match=r"'ratings', column 'user_id', row 10 .*999999.*\(partition 0, its row 10;"):
        P.build_partitioned_input(dd.from_pandas(ratings, npartitions=3, sort=False), users, embeddings, PARAMS)


def unique_pairs(ratings: pd.DataFrame) -> pd.DataFrame:
    """``ratings`` with each (user, movie) pair once (random_inputs draws pairs with replacement)."""
    return ratings.drop_duplicates(["user_id", "movie_id"], ignore_index=True)


@pytest.mark.parametrize(("repeat_from", "repeat_to", "partition", "row"), [(5, 250, 2, 50), (210, 250, 2, 50)])
def test_a_pair_rated_twice_is_named_by_partition_and_row(repeat_from, repeat_to, partition, row):
    """Across partitions (row 5 of partition 0 repeated in partition 2) and within one (rows 10 and 50
    of partition 2): the in-memory check_ratings refuses both, so must the partitioned one."""
    ratings, _, _ = random_inputs(seed=5, n_ratings=330)
    ratings = unique_pairs(ratings).iloc[:300].copy()
    parts = dd.from_pandas(ratings, npartitions=3, sort=False)
    assert P.check_partitioned_ratings(parts) is parts
    ratings.loc[repeat_to, ["user_id", "movie_id"]] = ratings.loc[repeat_from, ["user_id", "movie_id"]].to_numpy()
    first = f"partition {repeat_from // 100}, row {repeat_from % 100}"
    with pytest.raises(
        RawDataError,
        match=rf"'ratings', column 'user_id, movie_id', row {repeat_to} .*first seen in {first}\) "
        rf"\(partition {partition}, its row {row};",
    ):
        P.check_partitioned_ratings(dd.from_pandas(ratings, npartitions=3, sort=False))
    with pytest.raises(RawDataError, match="duplicate key"):
        nodes.check_ratings(ratings, PARAMS)


def test_a_pair_is_the_same_pair_whether_its_ids_are_read_as_numbers_or_as_text():
    """Another reader may give one partition's ids as text: "1" and 1 are one user, as the build reads them."""
    ratings, _, _ = random_inputs(seed=5, n_ratings=330)
    ratings = unique_pairs(ratings).iloc[:300].astype({"user_id": object, "movie_id": object})
    ratings.loc[250, ["user_id", "movie_id"]] = [str(v) for v in ratings.loc[5, ["user_id", "movie_id"]]]
    with pytest.raises(
        RawDataError, match=r"'ratings'.*row 250 .*first seen in partition 0, row 5\) \(partition 2, its row 50"
    ):
        P.check_partitioned_ratings(dd.from_pandas(ratings, npartitions=3, sort=False))


def test_ids_and_ratings_read_as_text_give_the_in_memory_fit():
    """A reader (or the dask environment's CSV entry) may give every cell as text: the scan checks and
    types them, and the fit reads them as the scan did (it compared text ids with numbers and crashed)."""
    ratings, users, embeddings = random_inputs(seed=5, n_ratings=300)
    design, stats = nodes.build_model_input(ratings, users, embeddings, PARAMS)
    model = nodes.fit_ridge(nodes.split_ratings(design, PARAMS)[0], PARAMS)
    as_text = dd.from_pandas(ratings.astype(str), npartitions=3, sort=False)
    pdesign, pstats = P.build_partitioned_input(as_text, users, embeddings, PARAMS)
    text_model = P.fit_partitioned(P.split_partitioned(pdesign, PARAMS)[0], PARAMS)
    assert pstats["n_ratings_in"] == stats["n_ratings_in"] == 300
    np.testing.assert_allclose(text_model["coefficients"], model["coefficients"], atol=1e-9)


def test_an_empty_partition_is_no_error_but_an_empty_table_is():
    ratings, users, embeddings = random_inputs(seed=5, n_ratings=300)
    parts = dd.concat(
        [
            dd.from_pandas(ratings.iloc[:150], npartitions=1),
            dd.from_pandas(ratings.iloc[0:0], npartitions=1),
            dd.from_pandas(ratings.iloc[150:], npartitions=1),
        ]
    )
    assert parts.npartitions == 3
    _, stats = P.build_partitioned_input(parts, users, embeddings, PARAMS)
    assert stats["n_ratings_in"] == 300
    with pytest.raises(RawDataError, match=r"dataset 'ratings': the table is empty \(every partition\)"):
        P.build_partitioned_input(dd.from_pandas(ratings.iloc[0:0], npartitions=2), users, embeddings, PARAMS)


def test_a_renamed_column_is_named_before_anything_reads_it():
    ratings, _, _ = random_inputs(seed=5, n_ratings=60)
    renamed = dd.from_pandas(unique_pairs(ratings).rename(columns={"rating": "stars"}), npartitions=2)
    with pytest.raises(RawDataError, match=r"dataset 'ratings', column 'rating': required column is missing"):
        P.check_partitioned_ratings(renamed)


def test_the_partitioned_join_loss_is_checked_as_in_memory():
    """random_inputs rates 10 movies that have no embedding: over max_join_loss = 0 both paths refuse, naming
    the first lost rating (in memory: its row; partitioned: its partition and row)."""
    ratings, users, embeddings = random_inputs(seed=5, n_ratings=300)
    strict = {**PARAMS, "max_join_loss": 0.0}
    lost = np.flatnonzero(~ratings["movie_id"].isin(embeddings["movie_id"]).to_numpy())
    with pytest.raises(RawDataError, match=rf"'ratings', column 'movie_id', row {lost[0]} .*max_join_loss") as memory:
        nodes.build_model_input(ratings, users, embeddings, strict)
    first = lost[0]
    with pytest.raises(RawDataError, match=rf"'ratings', column 'movie_id', row {first} ") as parts:
        P.build_partitioned_input(dd.from_pandas(ratings, npartitions=3, sort=False), users, embeddings, strict)
    # the same row, count, share and missing ids in both messages; the partitioned one names the partition too
    note = f" (partition {first // 100}, its row {first % 100}; rows counted over the partitions in order)"
    assert str(parts.value).replace(note, "") == str(memory.value)
    share = len(lost) / len(ratings)
    P.build_partitioned_input(
        dd.from_pandas(ratings, npartitions=3, sort=False), users, embeddings, {**PARAMS, "max_join_loss": share}
    )


def test_scatter_sample_is_every_rating_when_they_fit():
    ratings, users, embeddings = random_inputs(seed=6, n_ratings=500)
    design, _ = nodes.build_model_input(ratings, users, embeddings, PARAMS)
    pdesign, _ = P.build_partitioned_input(dd.from_pandas(ratings, npartitions=4), users, embeddings, PARAMS)
    whole = P.sample_design(pdesign, max_ratings=10_000, seed=0)
    np.testing.assert_array_equal(whole.rating, design.rating)
    np.testing.assert_array_equal(whole.column("e3"), design.column("e3"))
    part = P.sample_design(pdesign, max_ratings=100, seed=0)
    assert len(part) == 100


@pytest.mark.slow
def test_a_worker_killed_mid_computation_does_not_change_the_result():
    import operator
    import os
    import signal
    import time
    from dataclasses import replace

    from dask import delayed

    ratings, users, embeddings = random_inputs(seed=7, n_ratings=200_000, n_users=2000, n_movies=500, dim=64)
    design, _ = nodes.build_model_input(ratings, users, embeddings, PARAMS)
    expected = nodes.fit_ridge(design, PARAMS)
    pdesign, _ = P.build_partitioned_input(dd.from_pandas(ratings, npartitions=80), users, embeddings, PARAMS)
    # each partition takes 50 ms to arrive (a slow read), so the kill lands mid-computation
    slow = tuple(delayed(operator.getitem)([delayed(time.sleep)(0.05), rows], 1) for rows in pdesign.rows)
    pdesign = replace(pdesign, rows=slow)
    with (
        distributed.LocalCluster(**local_cluster_arguments(DASK_PROCESSES)) as cluster,
        distributed.Client(cluster) as client,
    ):
        future = client.compute(P.sums_graph(pdesign))
        # once some partitions' sums are held by a worker, kill that worker's process (SIGKILL)
        deadline = time.monotonic() + 120
        while not (holders := [w for w, keys in client.has_what().items() if keys]):
            assert time.monotonic() < deadline, "no partition finished"
            time.sleep(0.005)
        victim = holders[0]
        assert future.status == "pending", "the computation ended before the kill"
        os.kill(client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)
        sums = future.result(timeout=300)
        assert not future.cancelled()
        assert victim not in client.scheduler_info()["workers"], "the killed worker is gone"
        model = P.model_from_sums(sums, pdesign, PARAMS)
    np.testing.assert_allclose(model["coefficients"], expected["coefficients"], rtol=0, atol=1e-9)
    assert model["intercept"] == pytest.approx(expected["intercept"], abs=1e-9)


@pytest.mark.slow
def test_env_dask_writes_the_same_ridge_metrics_as_the_default_run(project):
    run = {"pipeline_names": ["movie_embedding", "ridge_analysis"], "namespaces": ["base"]}
    run_kedro(project, **run)
    # the same embeddings: the dask run finds every text in its cache and encodes none
    (project / "data/04_feature/dask/base").mkdir(parents=True)
    shutil.copy2(project / "data/04_feature/base/embedding_cache.parquet", project / "data/04_feature/dask/base/")
    run_kedro(project, env="dask", **run)
    default = json.loads((project / "data/08_reporting/base/ridge_metrics.json").read_text())
    on_dask = json.loads((project / "data/08_reporting/dask/base/ridge_metrics.json").read_text())
    assert default.keys() == on_dask.keys()
    for key, value in default.items():
        assert on_dask[key] == pytest.approx(value, abs=1e-9), key
    model = json.loads((project / "data/06_models/base/ridge_model.json").read_text())
    on_dask_model = json.loads((project / "data/06_models/dask/base/ridge_model.json").read_text())
    assert np.abs(np.subtract(model["coefficients"], on_dask_model["coefficients"])).max() <= 1e-9
    cv = pd.read_csv(project / "data/08_reporting/base/ridge_cv_scores.csv")
    on_dask_cv = pd.read_csv(project / "data/08_reporting/dask/base/ridge_cv_scores.csv")
    np.testing.assert_allclose(on_dask_cv["r2_test"], cv["r2_test"], atol=1e-9, rtol=0)
    for figure in ("top_features_scatter.png", "top_coefficients_bar.png"):
        assert (project / "data/08_reporting/dask/base" / figure).stat().st_size > 10_000


def test_the_checks_on_partitions_name_a_bad_cell_and_an_unknown_user_before_the_build():
    """The pipeline's check nodes on partitions (check_ratings, check_rated_users) find what the build's pass
    would, so a bad input stops the run before embed_movies writes anything."""
    from qeu_kedro.pipelines.ridge_analysis import dispatch

    ratings, users, _ = random_inputs(seed=5, n_ratings=330)
    ratings = unique_pairs(ratings).iloc[:300].astype({"rating": object})
    ratings.loc[250, "rating"] = "five"
    with pytest.raises(RawDataError, match=r"'ratings', column 'rating', row 250 .*'five'.*\(partition 2, its row 50;"):
        dispatch.check_ratings(dd.from_pandas(ratings, npartitions=3, sort=False), PARAMS)
    ratings.loc[250, "rating"] = 4
    ratings.loc[120, "user_id"] = 999_999
    parts = dd.from_pandas(ratings, npartitions=3, sort=False)
    assert dispatch.check_ratings(parts, PARAMS) is parts
    with pytest.raises(RawDataError, match=r"'ratings', column 'user_id', row 120 .*user 999999 is not in 'users'"):
        dispatch.check_rated_users(parts, users)
    assert dispatch.check_rated_users(dd.from_pandas(ratings.drop(index=120), npartitions=3), users) is users


def test_the_dask_env_csv_entry_leaves_a_bad_cell_to_the_check_which_names_it(tmp_path):
    """conf/dask reads the ratings CSV as text: a bad cell far down the file is named by its row in the file
    (dask's own type guess from the first block failed on a later block, naming no row; then the row within
    its partition)."""
    from kedro_datasets.dask import CSVDataset

    from tests.conftest import REPO, load_config

    ratings, users, embeddings = random_inputs(seed=5, n_ratings=6000)
    ratings = unique_pairs(ratings).astype({"rating": object})
    ratings.loc[len(ratings) - 10, "rating"] = "five"
    ratings.to_csv(tmp_path / "ratings.csv", index=False)
    entry = load_config(REPO, "dask")["ratings"]
    parts = CSVDataset(filepath=str(tmp_path / "ratings.csv"), load_args=entry["load_args"]).load()
    assert parts.npartitions > 1
    with pytest.raises(RawDataError, match=rf"'ratings', column 'rating', row {len(ratings) - 10} .*'five'"):
        P.build_partitioned_input(P.check_partitioned_ratings(parts), users, embeddings, PARAMS)


def test_a_fold_whose_ratings_are_all_equal_scores_as_scikit_learn_scores_it_on_both_paths():
    """R² of a test fold of equal ratings: ``r2_score`` gives 0.0 (its force_finite); the sums gave -inf."""
    ratings, users, embeddings = random_inputs(seed=3, n_movies=30, n_ratings=900)
    constant = embeddings["movie_id"].iloc[0]
    ratings.loc[ratings["movie_id"] == constant, "rating"] = 4
    n_movies = ratings["movie_id"].isin(embeddings["movie_id"]).groupby(ratings["movie_id"]).any().sum()
    params = {**PARAMS, "group_by": "movie_id", "cv": {"folds": int(n_movies), "repeats": 1, "seed": 0}}
    design, _ = nodes.build_model_input(ratings, users, embeddings, params)
    cv = nodes.cross_validate_ridge(design, {"alpha": 5.0}, params)
    pdesign, _ = P.build_partitioned_input(dd.from_pandas(ratings, npartitions=3), users, embeddings, params)
    pcv = P.cross_validate_partitioned(pdesign, {"alpha": 5.0}, params)
    labels = nodes.fold_labels(design, params["cv"]["folds"], 1, 0, "movie_id")[0]
    movie_of = design.movie_features.index.to_numpy()[design.movie_row]
    fold = int(labels[movie_of == constant][0])
    assert cv.loc[fold, "r2_test"] == 0.0 and pcv.loc[fold, "r2_test"] == 0.0
    np.testing.assert_allclose(pcv["r2_test"], cv["r2_test"], rtol=0, atol=1e-9)


def test_140_folds_on_partitions_equal_the_in_memory_folds():
    """Fold labels past 127 (int8 wrapped them: empty folds, a CV mean of -inf) on both paths."""
    ratings, users, embeddings = random_inputs(seed=0, n_movies=150)
    params = {**PARAMS, "cv": {"folds": 140, "repeats": 1, "seed": 0}}
    design, _ = nodes.build_model_input(ratings, users, embeddings, params)
    pdesign, _ = P.build_partitioned_input(dd.from_pandas(ratings, npartitions=3), users, embeddings, params)
    cv = nodes.cross_validate_ridge(design, {"alpha": 5.0}, params)
    pcv = P.cross_validate_partitioned(pdesign, {"alpha": 5.0}, params)
    assert (pcv["n_test"] > 0).all() and pcv["n_test"].sum() == len(design)
    pd.testing.assert_frame_equal(
        pcv.drop(columns="test_hash"), cv.drop(columns="test_hash"), check_exact=False, atol=1e-9, rtol=0
    )


def test_the_partitioned_split_refuses_more_cv_folds_than_movies():
    ratings, users, embeddings = random_inputs(seed=0, n_movies=20, n_ratings=400)
    params = {**PARAMS, "cv": {"folds": 21, "repeats": 1, "seed": 0}}
    pdesign, _ = P.build_partitioned_input(dd.from_pandas(ratings, npartitions=2), users, embeddings, params)
    with pytest.raises(ValueError, match="ridge_analysis.cv.folds is 21, more than the 20 movies"):
        P.split_partitioned(pdesign, params)
