"""Files that pandas reads without an error into a table of the wrong shape or values, which the checks refuse:
an unclosed quote in a title, a delimiter at the end of every row, UTF-8 read as latin-1, 17-digit ids
written beside a float, and a Dask partition's bad row (named by its row in the table and in the partition)."""

from pathlib import Path

import dask.dataframe as dd
import pandas as pd
import pytest
from kedro.io import DatasetError
from kedro_datasets.pandas import CSVDataset

from qeu_kedro.pipelines.movie_embedding.overviews import check_movies, check_rated_movies
from qeu_kedro.validation import Column, RawDataError, check_table

LOAD_ARGS = {"keep_default_na": False, "na_values": [""]}  # conf/base/catalog.yml's movies and ratings
RIDGE = {"max_join_loss": 0.10, "rating_step": 1}


def movies_csv(path: Path, rows: list[str]) -> pd.DataFrame:
    path.write_text("movie_id,title,overview\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return CSVDataset(filepath=str(path), load_args=LOAD_ARGS).load()


def test_an_unclosed_quote_in_a_title_is_refused_naming_its_row(tmp_path):
    rows = [f"{i},Movie {i} ({1990 + i}),Plot {i}." for i in range(1, 7)]
    rows.append('7,Film 7 (2000),"A plot, quoted for its comma."')
    assert len(check_movies(movies_csv(tmp_path / "good.csv", rows))) == 7
    rows[2] = '3,"Movie 3 (1993),Plot 3.'  # the quote swallows rows 4 to 7 up to the overview's quote
    with pytest.raises(RawDataError, match=r"'movies', column 'title', row 2 .*runs over \d+ lines.*close or remove"):
        check_movies(movies_csv(tmp_path / "bad.csv", rows))


def test_single_line_is_only_for_text_and_a_line_break_in_other_text_columns_passes():
    with pytest.raises(ValueError, match="single_line"):
        Column("n", "int", single_line=True)
    table = pd.DataFrame({"title": ["a", "b"], "overview": ["one\nparagraph", "two"]})
    assert len(check_table(table, "t", (Column("title", "str", single_line=True), Column("overview", "str")))) == 2
    with pytest.raises(RawDataError, match=r"'t', column 'title', row 1 "):
        check_table(table.assign(title=["a", "b\r\nc"]), "t", (Column("title", "str", single_line=True),))


def test_a_delimiter_at_the_end_of_each_row_is_refused_not_read_shifted(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("user_id,movie_id,rating,timestamp\n1,10,5,881250949,\n2,11,3,891717742,\n")
    ratings = CSVDataset(filepath=str(path), load_args=LOAD_ARGS).load()
    movies = pd.DataFrame({"movie_id": range(1, 12), "title": "t", "overview": "o"})
    with pytest.raises(RawDataError, match=r"'ratings', row 0 .*1 field more than the header.*trailing delimiter"):
        check_rated_movies(movies, ratings, RIDGE)


def test_a_table_numbered_or_indexed_on_purpose_passes():
    columns = (Column("movie_id", "int", min=1),)
    table = pd.DataFrame({"movie_id": [3, 1, 2]})
    assert check_table(table, "t", columns)["movie_id"].tolist() == [3, 1, 2]
    named = table.set_index(pd.Index(["a", "b", "c"], name="key"))  # load_args index_col: key
    assert check_table(named, "t", columns)["movie_id"].tolist() == [3, 1, 2]
    for labels in (pd.Index(["a", "b", "c"]), pd.RangeIndex(1, 4)):  # pandas' index of first fields 1, 2, 3
        # a caller's slice: labelled rows, values in the last column
        assert check_table(table.set_index(labels), "t", columns)["movie_id"].tolist() == [3, 1, 2]
        shifted = table.assign(timestamp=[None, "", None]).set_index(labels)  # the trailing delimiter's empty field
        with pytest.raises(RawDataError, match=r"'t', row 0 .*1 field more"):
            check_table(shifted, "t", columns)


def test_utf8_titles_read_as_latin1_are_refused_with_the_encoding_to_use(tmp_path):
    path = tmp_path / "movies.dat"
    path.write_text("1::Toy Story (1995)::Animation\n2::Amélie (2001)::Comedy\n", encoding="utf-8")
    args = {"sep": "::", "engine": "python", "header": None, "names": ["movie_id", "title", "genres"]}
    assert check_movies(CSVDataset(filepath=str(path), load_args={**args, "encoding": "utf-8"}).load()).shape[0] == 2
    latin1 = CSVDataset(filepath=str(path), load_args={**args, "encoding": "latin-1"}).load()
    with pytest.raises(RawDataError, match=r"'movies', column 'title', row 1 .*'AmÃ©lie \(2001\)'.*encoding: utf-8"):
        check_movies(latin1)
    path.write_bytes("1::Amélie (2001)::Comedy\n2::Léon (1994)::Crime\n".encode("latin-1"))  # 1M's own encoding
    titles = check_movies(CSVDataset(filepath=str(path), load_args={**args, "encoding": "latin-1"}).load())["title"]
    assert titles.tolist() == ["Amélie (2001)", "Léon (1994)"]


def test_whole_numbers_beyond_2_53_keep_their_value_or_are_refused():
    columns = (Column("movie_id", "int", min=1, unique=True),)
    text = pd.DataFrame({"movie_id": ["9007199254740993", "1e0", "9007199254740992"]})  # '1e0': float64 for all
    assert check_table(text, "movies", columns)["movie_id"].tolist() == [9007199254740993, 1, 9007199254740992]
    nullable = (Column("movie_id", "int", nullable=True),)
    typed = check_table(pd.DataFrame({"movie_id": ["9007199254740993", None, "2.0"]}), "movies", nullable)
    assert typed["movie_id"].tolist()[::2] == [9007199254740993, 2] and typed["movie_id"].isna().tolist()[1]
    floats = pd.DataFrame({"movie_id": [1.0, 9007199254740994.0]})  # the reader's floats: the digits are gone
    with pytest.raises(RawDataError, match=r"'movies', column 'movie_id', row 1 .*2\*\*53 or more.*digits only"):
        check_table(floats, "movies", columns)


def test_a_partition_s_bad_row_is_named_by_its_row_in_the_table_and_in_its_partition():
    """It was named by its row within the partition only: row 7 of partition 1 of a 30-row file."""
    ratings = pd.DataFrame({"user_id": 1, "movie_id": [str(1 + i % 5) for i in range(30)], "rating": 3})
    ratings.loc[17, "movie_id"] = "x"
    movies = pd.DataFrame({"movie_id": range(1, 6), "title": "t", "overview": "o"})
    with pytest.raises(
        RawDataError,
        match=r"dataset 'ratings', column 'movie_id', row 17 \(0-based, header not counted\): .*"
        r"\(partition 1, its row 7; rows counted over the partitions in order\)",
    ):
        check_rated_movies(movies, dd.from_pandas(ratings, npartitions=3, sort=False), RIDGE)


@pytest.mark.parametrize("usecols", [None, ["user_id", "movie_id", "rating"]])
def test_a_trailing_delimiter_is_seen_in_the_file_before_the_run_with_or_without_usecols(tmp_path, usecols):
    """With usecols (the dask environment reads the ratings so) the empty shifted column is not read, and the
    table a check node gets (ratings in the movie_id column) passes; the file's first row shows it."""
    from kedro_datasets.dask import CSVDataset as DaskCSV

    from qeu_kedro.validation import check_trailing_delimiter

    path = tmp_path / "ratings.csv"
    path.write_text("user_id,movie_id,rating,timestamp\n1,10,5,881250949,\n2,11,3,891717742,\n")
    args = {**LOAD_ARGS, **({"usecols": usecols} if usecols else {})}
    for dataset in (
        CSVDataset(filepath=str(path), load_args=args),
        DaskCSV(filepath=str(path), load_args={k: v for k, v in args.items() if k != "na_values"}),
    ):
        with pytest.raises(RawDataError, match=r"'ratings', row 0 .*5 fields where the header line names 4"):
            check_trailing_delimiter("ratings", dataset)
    path.write_text("user_id,movie_id,rating,timestamp\n1,10,5,881250949\n2,11,3,\n")  # an empty last cell: fine
    check_trailing_delimiter("ratings", CSVDataset(filepath=str(path), load_args=args))


def test_a_byte_not_in_the_file_s_encoding_is_named_by_line_row_and_column_before_the_run(tmp_path):
    """A latin-1 'é' in a UTF-8 CSV: pandas' error gave a byte position inside its buffer, no row."""
    from qeu_kedro.validation import check_file_encoding

    path = tmp_path / "movies.csv"
    rows = ["movie_id,title,year"] + [f"{i},Movie {i},1990" for i in range(1, 3000)]
    rows[2500] = "2500,Am\xe9lie,2001"  # the data row 2499 (0-based), line 2501
    path.write_bytes("\n".join(rows).encode("latin-1") + b"\n")
    dataset = CSVDataset(filepath=str(path))
    with pytest.raises(DatasetError, match="decode"):
        dataset.load()  # what a run met at the load, with no row
    with pytest.raises(
        RawDataError,
        match=r"'movies', column 'title', row 2499 \(0-based, header not counted\), line 2501: the bytes b'\\xe9lie'"
        r".* are not utf-8.*encoding: latin-1",
    ):
        check_file_encoding("movies", dataset, chunk_bytes=4096)  # the bad byte far from the first chunk
    check_file_encoding("movies", CSVDataset(filepath=str(path), load_args={"encoding": "latin-1"}))  # its encoding
    # a multi-byte character split between two chunks is no error
    path.write_text("movie_id,title\n" + "1,Amélie\n" * 2000, encoding="utf-8")
    for size in (7, 8, 4096):
        check_file_encoding("movies", CSVDataset(filepath=str(path)), chunk_bytes=size)
    # no header line, tab-separated (MovieLens 100K's u.item is '|'): the row counts from the first line
    path.write_bytes(b"1\tToy Story\n2\tL\xe9on\n")
    with pytest.raises(RawDataError, match=r"'movies', column 'title', row 1 .*line 2"):
        check_file_encoding(
            "movies", CSVDataset(filepath=str(path), load_args={"sep": "\t", "header": None, "names": ["id", "title"]})
        )


@pytest.mark.parametrize("chunk_bytes", [7, 8, 9, 10, 11, 12, 13, 20, 4096])
def test_the_bad_byte_is_found_whatever_chunk_cuts_a_character_before_it(tmp_path, chunk_bytes):
    """The decoder keeps a character that a chunk's end cut and counts the next chunk's error from it: the
    offset named a byte or two after the bad one (no row, or the next line)."""
    from qeu_kedro.validation import check_file_encoding

    path = tmp_path / "movies.csv"
    path.write_bytes("id,title\n1,Amélie\n2,日本語\n".encode() + b"3,L\xe9on\n4,x\n")
    with pytest.raises(RawDataError, match=r"column 'title', row 2 .*line 4: the bytes b'\\xe9on\\n'"):
        check_file_encoding("movies", CSVDataset(filepath=str(path)), chunk_bytes=chunk_bytes)


def test_a_file_pandas_is_told_to_decode_leniently_is_not_refused(tmp_path):
    from qeu_kedro.validation import check_file_encoding

    path = tmp_path / "movies.csv"
    path.write_bytes(b"id,title\n1,L\xe9on\n")
    for errors in ("replace", "ignore"):
        dataset = CSVDataset(filepath=str(path), load_args={"encoding_errors": errors})
        assert len(dataset.load()) == 1
        check_file_encoding("movies", dataset)
