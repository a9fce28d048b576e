"""Issue 16's raw-input probes: each one refused with dataset, column and row, or accepted by a documented rule."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro_datasets.pandas import CSVDataset

from qeu_kedro.models import count_truncated
from qeu_kedro.pipelines.jrte_sentiment.data import check_pn
from qeu_kedro.pipelines.movie_embedding.nodes import encode_texts
from qeu_kedro.pipelines.movie_embedding.overviews import check_movies
from qeu_kedro.pipelines.ridge_analysis.nodes import build_model_input, check_ratings, check_users
from qeu_kedro.validation import RawDataError
from tests.conftest import REPO, load_config, run_kedro

PARAMS = load_config(REPO, None, "parameters")["ridge_analysis"]
RAW = REPO / "data" / "01_raw"


def catalog_csv(name: str, filepath: Path, catalog: str = "catalog") -> CSVDataset:
    """The shipped catalog entry ``name`` (its load_args) reading ``filepath`` instead."""
    entry = load_config(REPO, None, "catalog")[name]
    return CSVDataset(filepath=str(filepath), load_args=entry.get("load_args"))


def users() -> pd.DataFrame:
    return pd.read_csv(RAW / "users.csv")


def ratings() -> pd.DataFrame:
    return pd.read_csv(RAW / "ratings.csv")


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [("gender", "X", "'X'"), ("occupation", "Engineer ", "'Engineer '"), ("occupation", "Engineer", "'Engineer'")],
)
def test_unknown_categories_are_refused_naming_the_row_and_the_parameters(column, value, shown):
    bad = users()
    bad.loc[7, column] = value
    with pytest.raises(
        RawDataError,
        match=rf"dataset 'users', column '{column}', row 7 .*unknown value {shown}.*"
        r"parameters_ridge_analysis\.yml",
    ):
        check_users(bad, PARAMS)
    check_users(users(), PARAMS)  # the sample's own values are all listed


def test_a_user_rating_a_movie_twice_is_refused():
    bad = ratings()
    again = bad.iloc[[5]].assign(rating=(bad["rating"].iloc[5] % 5) + 1)
    bad = pd.concat([bad, again], ignore_index=True)
    with pytest.raises(
        RawDataError,
        match=rf"dataset 'ratings', column 'user_id, movie_id', row {len(bad) - 1} .*"
        r"duplicate key \(user_id, movie_id\).*first seen in row 5",
    ):
        check_ratings(bad, PARAMS)


def stand_in_embeddings(movies: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(len(movies), 4)), columns=[f"title_embedding_{i}" for i in range(4)])
    table.insert(0, "movie_id", movies["movie_id"].to_numpy())
    return table


def test_join_loss_over_the_threshold_is_refused_with_count_and_ids():
    movies = pd.read_csv(RAW / "movies.csv")
    r, u = check_ratings(ratings(), PARAMS), check_users(users(), PARAMS)
    # the sample as shipped drops 7.5 %: under conf/base's 10 %
    _, stats = build_model_input(r, u, stand_in_embeddings(movies), PARAMS)
    assert stats["n_ratings_dropped_no_embedding"] / stats["n_ratings_in"] < PARAMS["max_join_loss"]
    half = movies.iloc[: len(movies) // 2]
    with pytest.raises(
        RawDataError,
        match=r"dataset 'ratings', column 'movie_id', row \d+ .*\d+ of 4000 ratings \(\d+\.\d%\) "
        r"are of movies not in 'movies'.*max_join_loss = 10\.0%.*the first: \[\d+",
    ):
        build_model_input(r, u, stand_in_embeddings(half), PARAMS)
    # the documented rule: raise the threshold when unmatched movies are expected (the movielens env: 0.5)
    build_model_input(r, u, stand_in_embeddings(half), {**PARAMS, "max_join_loss": 0.9})


def test_movielens_environment_allows_its_expected_join_loss():
    assert load_config(REPO, "movielens", "parameters")["ridge_analysis"]["max_join_loss"] == 0.5


def test_a_title_NA_is_a_title_and_an_empty_one_is_missing(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_text("movie_id,title,overview\n1,NA,A story.\n2,None,Another story.\n3,,A third.\n")
    loaded = catalog_csv("movies", path).load()
    with pytest.raises(RawDataError, match=r"dataset 'movies', column 'title', row 2 .*missing or blank"):
        check_movies(loaded)
    checked = check_movies(loaded.iloc[:2])
    assert checked["title"].tolist() == ["NA", "None"]


def test_an_extra_field_in_pn_is_named_not_a_duplicate_id(tmp_path):
    path = tmp_path / "pn.tsv"
    path.write_text('a1\t1\tgood\t{"1": 3}\ttrain\textra\na2\t0\tso so\t{"0": 3}\ttrain\n')
    entry = load_config(REPO, None, "catalog")["jrte_sentiment.pn"]
    loaded = CSVDataset(filepath=str(path), load_args=entry["load_args"]).load()
    with pytest.raises(
        RawDataError, match=r"dataset 'pn': rows have more than the 5 tab-separated fields.*row 0 starts with 'a1'"
    ):
        check_pn(loaded, load_config(REPO, None, "parameters")["jrte_sentiment"]["task"])


def _one_input_run(dataset) -> tuple:
    from kedro.io import DataCatalog
    from kedro.pipeline import Node, Pipeline

    return Pipeline([Node(len, "ratings", "n", name="count")]), DataCatalog({"ratings": dataset})


@pytest.mark.parametrize("reader", ["pandas", "dask"])
def test_a_column_read_with_usecols_and_repeated_in_the_header_stops_the_run(tmp_path, reader):
    """pandas and dask read the first of two 'rating' columns that usecols selects and drop the other without a
    word, so the check node saw nothing (without usecols it refuses the repeat): the run's own check reads the
    header line of the file."""
    from kedro_datasets.dask import CSVDataset as DaskCSV

    from qeu_kedro.hooks import check_input_headers

    (tmp_path / "ratings-0.csv").write_text("user_id;movie_id;rating;rating\n1;2;4;5\n")
    args = {"sep": ";", "usecols": ["user_id", "movie_id", "rating"]}

    def dataset(**changes):
        load_args = {**args, **changes}
        if reader == "dask":
            return DaskCSV(filepath=str(tmp_path / "ratings-*.csv"), load_args=load_args)
        return CSVDataset(filepath=str(tmp_path / "ratings-0.csv"), load_args=load_args)

    loaded = dataset().load()
    loaded = loaded.compute() if reader == "dask" else loaded
    assert list(loaded.columns) == ["user_id", "movie_id", "rating"]  # one of the two, and nothing said
    with pytest.raises(
        RawDataError,
        match=r"dataset 'ratings', column 'rating': the column appears 2 times in the header line of the file, "
        r"and load_args usecols reads only the first of them\. Remove or rename the repeated column\.",
    ):
        check_input_headers(*_one_input_run(dataset()))
    check_input_headers(*_one_input_run(dataset(usecols=["user_id", "movie_id"])))  # the repeat is not read
    check_input_headers(*_one_input_run(dataset(names=["u", "m", "r", "r2"], header=0, usecols=["u"])))


def test_the_header_line_is_found_where_the_entry_reads_it(tmp_path):
    """After skipped lines, in a compressed file: the names the reader takes, not the file's first line."""
    import gzip

    from qeu_kedro.validation import csv_header

    path = tmp_path / "ratings.csv.gz"
    path.write_bytes(gzip.compress(b"# export of 2024\nuser_id,rating,rating\n1,4,5\n"))
    assert csv_header(CSVDataset(filepath=str(path), load_args={"skiprows": 1})) == ["user_id", "rating", "rating"]
    assert csv_header(CSVDataset(filepath=str(path), load_args={"comment": "#"})) == ["user_id", "rating", "rating"]
    assert csv_header(CSVDataset(filepath=str(path), load_args={"header": None})) is None
    # an explicit compression on a file without the suffix, and the pyarrow engine (which refuses nrows):
    # the header was not read and the check passed without a word
    plain = tmp_path / "ratings_export"
    plain.write_bytes(gzip.compress(b"user_id,rating,rating\n1,4,5\n"))
    for compression in ("gzip", {"method": "gzip"}):
        gz = CSVDataset(filepath=str(plain), load_args={"compression": compression})
        assert csv_header(gz) == ["user_id", "rating", "rating"]
    (tmp_path / "r.csv").write_text("user_id,rating,rating\n1,4,5\n")
    arrow = CSVDataset(filepath=str(tmp_path / "r.csv"), load_args={"engine": "pyarrow", "usecols": ["rating"]})
    assert csv_header(arrow) == ["user_id", "rating", "rating"]


@pytest.mark.slow
def test_env_dask_refuses_a_repeated_rating_column_before_the_check_node_runs(project):
    """conf/dask reads the ratings with usecols: the ratings check passed a file whose header names 'rating' twice."""
    ratings_csv = project / "data" / "01_raw" / "ratings.csv"
    lines = ratings_csv.read_text().splitlines()
    ratings_csv.write_text("\n".join([lines[0] + ",rating"] + [line + ",1" for line in lines[1:]]) + "\n")
    dask_yml = project / "conf" / "dask" / "dask.yml"
    dask_yml.write_text(dask_yml.read_text().replace("enabled: true", "enabled: false"))  # no cluster needed
    with pytest.raises(RawDataError, match=r"dataset 'ratings', column 'rating': the column appears 2 times"):
        run_kedro(project, env="dask", pipeline_names=["ridge_analysis"], node_names=["base.check_ratings"])


@pytest.mark.slow
def test_a_byte_not_in_the_movies_encoding_stops_the_run_before_any_node_naming_row_and_column(project):
    """A latin-1 'é' in the UTF-8 movies file: the load failed with pandas' buffer position, no row."""
    movies_csv = project / "data" / "01_raw" / "movies.csv"
    lines = movies_csv.read_bytes().split(b"\n")
    lines[41] = lines[41].replace(b"(", "Am\xe9lie (".encode("latin-1"), 1)  # data row 40, in the title
    movies_csv.write_bytes(b"\n".join(lines))
    before = sorted(p for p in (project / "data").rglob("*") if p.is_file())
    with pytest.raises(RawDataError, match=r"'movie_overviews', column 'title', row 40 .*line 42: .* not utf-8"):
        run_kedro(project, pipeline_names=["movie_embedding"], namespaces=["base"])
    assert sorted(p for p in (project / "data").rglob("*") if p.is_file()) == before


class WordTokenizer:
    """Splits on spaces and truncates like a Hugging Face tokenizer (with [CLS] and [SEP])."""

    def __call__(self, texts, truncation, max_length, add_special_tokens=True):
        ids = [[0, *range(len(t.split())), 0] for t in texts]
        return {"input_ids": [t[:max_length] for t in ids] if truncation else ids}


class FakeModel:
    max_seq_length = 8
    tokenizer = WordTokenizer()

    def encode(self, texts, **kwargs):
        return np.zeros((len(texts), 2), dtype=np.float32)


def test_truncated_texts_are_counted_in_a_warning(caplog):
    texts = ["short one", "w " * 6, "w " * 7, "w " * 100_000]  # 2+2, 6+2 fit; 7+2 and 100000+2 do not
    assert count_truncated(FakeModel(), texts) == 2
    params = {
        "batch_size": 4,
        "normalize_embeddings": True,
        "show_progress_bar": False,
        "encoder": {"batching": "fixed", "quantize": "none"},
    }
    with caplog.at_level(logging.WARNING):
        encode_texts(FakeModel(), texts, params)
    assert "2 of 4 texts are longer than the model's 8 tokens" in caplog.text


def test_a_dask_csv_file_that_repeats_its_header_line_is_refused_wherever_the_blocks_fall(tmp_path):
    """Dask drops a header line that starts a block (the conf/dask sample's 16 KB blocks), so the check node's
    'row repeats the header line' saw it only by chance; the file itself is searched before the run."""
    from kedro_datasets.dask import CSVDataset as DaskCSV

    from qeu_kedro.hooks import check_input_headers

    header = "user_id,movie_id,rating,timestamp"
    rows = [f"{i},{i % 50 + 1},{i % 5 + 1},881250949" for i in range(1, 4001)]
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    args = {"blocksize": 16_000, "dtype": str}  # as conf/dask reads the sample: small blocks, text cells
    second = DaskCSV(filepath=str(path), load_args=args).load().partitions[1].compute().iloc[0]
    near = rows.index(",".join(second))  # the row that starts dask's second block
    for at in range(near - 5, near + 6):  # two files joined with cat, the second header where a block starts
        path.write_text("\n".join([header, *rows[:at], header, *rows[at:]]) + "\n")
        dataset = DaskCSV(filepath=str(path), load_args=args)
        if len(dataset.load().compute()) == 4000:
            break  # dask dropped the repeated header: the check node would see nothing
    else:
        pytest.fail("no position near the block boundary where dask drops the repeated header")
    with pytest.raises(
        RawDataError, match=rf"dataset 'ratings', line {at + 2}: the file .* repeats its header line here"
    ):
        check_input_headers(*_one_input_run(dataset))
    path.write_text("\n".join([header, *rows]) + "\n")  # one file: fine
    check_input_headers(*_one_input_run(DaskCSV(filepath=str(path), load_args=args)))
    path.write_text(f"{header}\n1,2,3,4 {header}\n")  # the header's text inside a line is no header line
    check_input_headers(*_one_input_run(DaskCSV(filepath=str(path))))
    path.write_text(f"{header}\n1,2,3,4\n{header}")  # the last line, no newline after it
    with pytest.raises(RawDataError, match=r"line 3: the file .* repeats its header line here"):
        check_input_headers(*_one_input_run(DaskCSV(filepath=str(path))))
