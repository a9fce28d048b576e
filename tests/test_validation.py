import pandas as pd
import pytest

from qeu_kedro.validation import Column, RawDataError, check_table

COLUMNS = (
    Column("id", "int", min=1, unique=True),
    Column("score", "int", min=1, max=5),
    Column("name", "str"),
    Column("kind", "str", allowed={"a", "b"}),
)


def frame(**overrides):
    data = {"id": [1, 2, 3], "score": [1, 5, 3], "name": ["x", "y", "z"], "kind": ["a", "b", "a"], "extra": [0, 0, 0]}
    data.update(overrides)
    return pd.DataFrame(data)


def test_good_table_is_typed_and_trimmed():
    out = check_table(frame(score=["1", "5", "3"]), "things", COLUMNS)
    assert list(out.columns) == ["id", "score", "name", "kind"]
    assert out["score"].tolist() == [1, 5, 3]
    assert out["score"].dtype == "int64"


@pytest.mark.parametrize(
    ("table", "column", "row", "words"),
    [
        (frame(score=[1, 6, 3]), "score", 1, "outside the allowed range"),
        (frame(score=[1, "five", 3]), "score", 1, "expected a number"),
        (frame(score=[1, 2.5, 3]), "score", 1, "whole number"),
        (frame(id=[1, 2, 1]), "id", 2, "duplicate id 1 (first seen in row 0)"),
        (frame(name=["x", " ", "z"]), "name", 1, "missing or blank"),
        (frame(name=["x", None, "z"]), "name", 1, "missing or blank"),
        (frame(name=["x", "\u200b", "z"]), "name", 1, "missing or blank"),  # a zero-width space: nothing to read
        (frame(name=["x", "\ufeff ", "z"]), "name", 1, "missing or blank"),  # a stray byte-order mark
        (frame(kind=["a", "b", "c"]), "kind", 2, "unknown value 'c'"),
        (frame(id=[1, 2, 2.0**63]), "id", 2, "below 2**63, found 9.223372036854776e+18"),  # was a pandas TypeError
    ],
)
def test_bad_values_name_dataset_column_and_row(table, column, row, words):
    with pytest.raises(RawDataError) as info:
        check_table(table, "things", COLUMNS)
    message = str(info.value)
    assert "dataset 'things'" in message
    assert f"column '{column}'" in message
    assert f"row {row} " in message
    assert words in message


def test_missing_column_and_empty_table():
    with pytest.raises(RawDataError, match=r"dataset 'things', column 'kind'.*required column is missing"):
        check_table(frame().drop(columns="kind"), "things", COLUMNS)
    with pytest.raises(RawDataError, match="dataset 'things'.*the table is empty"):
        check_table(frame().iloc[0:0], "things", COLUMNS)


def test_composite_key_and_minimum_size():
    table = frame(id=[1, 2, 3], kind=["a", "b", "a"], name=["x", "y", "x"])
    with pytest.raises(
        RawDataError,
        match=r"column 'name, kind', row 2 .*duplicate key \(name, kind\) = \('x', 'a'\) \(first seen in row 0\)",
    ):
        check_table(table, "things", COLUMNS, unique_together=[("name", "kind")])
    check_table(table, "things", COLUMNS, unique_together=[("name", "score")])
    with pytest.raises(RawDataError, match=r"dataset 'things': only 3 rows; at least 4 are needed\. Add rows\."):
        check_table(frame(), "things", COLUMNS, min_rows=4, min_rows_hint="Add rows.")


def test_a_blank_text_in_a_nullable_column_is_read_as_missing():
    """A nullable text column kept a whitespace-only cell as text (one TMDB overview is ' '): a blank text is as
    missing as an empty cell, so the overview step skips the movie instead of embedding a space."""
    typed = check_table(
        pd.DataFrame({"key": [1, 2, 3, 4], "text": ["a", "  ", "\u200b", None]}),
        "things",
        (Column("key", "int", unique=True), Column("text", "str", nullable=True)),
    )
    assert typed["text"].isna().tolist() == [False, True, True, True]
    assert typed["text"].iloc[0] == "a"


def test_a_nullable_whole_number_beyond_int64_is_named():
    table = pd.DataFrame({"seq": [1.0, None, -(2.0**64)]})
    with pytest.raises(RawDataError, match=r"column 'seq', row 2 .*below 2\*\*63"):
        check_table(table, "things", (Column("seq", "int", nullable=True),))


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), "inf", "-Infinity"])
def test_an_infinite_number_is_refused_even_where_only_a_minimum_is_set(bad):
    columns = (Column("id", "int", unique=True), Column("rating", "float", min=0.5))
    with pytest.raises(RawDataError, match=r"dataset 'things', column 'rating', row 1 .*expected a finite number"):
        check_table(pd.DataFrame({"id": [1, 2], "rating": [1.5, bad]}), "things", columns)


def test_a_column_repeated_in_the_header_is_refused(tmp_path):
    """pandas reads a repeated header name as 'score' and 'score.1' and the check kept the first silently."""
    path = tmp_path / "things.csv"
    path.write_text("id,name,kind,score,score\n1,x,a,3,5\n2,y,b,4,1\n")
    with pytest.raises(RawDataError, match=r"column 'score': the column appears more than once in the header"):
        check_table(pd.read_csv(path), "things", COLUMNS)


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([1, None, 2, float("nan"), 3], "int"),
        (["a", None, "b", "  ", "c"], "str"),  # a blank text is as missing as an empty cell
        (["a", "", "b", None, "c"], "str"),
    ],
)
def test_missing_values_in_a_unique_column_name_their_rows_and_what_to_do(values, kind):
    """A unique column with missing values: the message names every row without one (the first few) and says
    what to do (it named only the first, with nothing to do, where the column has no hint)."""
    with pytest.raises(RawDataError) as info:
        check_table(pd.DataFrame({"key": values}), "things", (Column("key", kind, unique=True),))
    message = str(info.value)
    assert "dataset 'things', column 'key', row 1 " in message
    assert "must be unique" in message and "2 rows have none: 1, 3" in message
    assert "Give each of those rows its own value, or remove them." in message
    assert info.value.row == 1 and info.value.column == "key"


def test_a_unique_column_lists_at_most_five_rows_and_keeps_its_own_hint():
    table = pd.DataFrame({"key": [None] * 8 + ["a"]})
    with pytest.raises(RawDataError, match=r"8 rows have none: 0, 1, 2, 3, 4 and 3 more\. .* Ask the sender\.$"):
        check_table(table, "things", (Column("key", "str", unique=True, hint="Ask the sender."),))
    with pytest.raises(RawDataError, match=r"row 0 .*must be unique \(they identify the rows\)\. Give the row its own"):
        check_table(pd.DataFrame({"key": [None, "a"]}), "things", (Column("key", "str", unique=True),))


def test_a_unique_column_cannot_be_declared_nullable():
    """unique=True with nullable=True let missing values through to pandera, whose duplicate report loses them:
    two missing values failed with "the table breaks its schema: []", naming no column and no row."""
    with pytest.raises(ValueError, match=r"Column 'key': unique=True and nullable=True cannot be combined"):
        Column("key", "int", unique=True, nullable=True)


TEXT_COLUMNS = (Column("id", "str", unique=True), Column("anchor", "str"), Column("positive", "str"))


@pytest.mark.parametrize("usecols", [None, ["id", "anchor", "positive"]])
def test_a_header_line_repeated_inside_the_file_is_refused_in_a_table_of_text(tmp_path, usecols):
    """Two files joined one after the other: the second header line was a row of data wherever every column read is
    text (a column of numbers failed on it with 'expected a number'), with or without usecols."""
    path = tmp_path / "pairs.csv"
    path.write_text("id,anchor,positive,extra\n1,a,b,x\n2,c,d,y\nid,anchor,positive,extra\n3,e,f,z\n")
    table = pd.read_csv(path, usecols=usecols, dtype=str, keep_default_na=False)
    with pytest.raises(
        RawDataError, match=r"dataset 'pairs', row 2 .*: the row repeats the header line \(id, anchor, "
    ):
        check_table(table, "pairs", TEXT_COLUMNS)


def test_a_header_line_repeated_in_a_numeric_table_is_named_as_such():
    table = pd.DataFrame({"id": ["1", "id", "2"], "score": ["3", "score", "4"], "name": ["x", "name", "y"]})
    with pytest.raises(RawDataError, match=r"row 1 .*: the row repeats the header line \(id, score, name\)\. Files"):
        check_table(table, "things", COLUMNS[:3])


def test_a_row_holding_some_column_names_is_data():
    table = pd.DataFrame({"id": ["1", "2"], "anchor": ["anchor", "a"], "positive": ["b", "positive"]})
    assert len(check_table(table, "pairs", TEXT_COLUMNS)) == 2
