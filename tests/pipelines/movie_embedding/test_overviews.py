"""The movie list meets its overviews: the check nodes and match_overviews on hand-made tables."""

import pandas as pd
import pytest

from qeu_kedro.pipelines.movie_embedding.overviews import check_movie_overviews, check_movies, match_overviews
from qeu_kedro.validation import RawDataError
from tests.conftest import REPO, load_config

BASE = load_config(REPO, None, "parameters")["movie_overviews"]
BY_ID = {**BASE, "match_on": "movie_id"}
BY_TITLE = {**BASE, "match_on": "title_year"}


def run(movies: pd.DataFrame, overviews: pd.DataFrame, params: dict) -> pd.DataFrame:
    """The three nodes in the pipeline's order."""
    return match_overviews(check_movies(movies), check_movie_overviews(overviews, params), params)


def test_the_defaults_match_on_movie_id_and_the_movielens_environments_on_title_and_year():
    assert BASE["match_on"] == "movie_id"
    for env in ("movielens", "movielens_1m"):
        params = load_config(REPO, env, "parameters")["movie_overviews"]
        assert params == {**BASE, "match_on": "title_year"}, "an environment changes the rule only"


def test_the_sample_is_its_own_overview_source_and_comes_out_unchanged():
    sample = pd.read_csv(REPO / "data" / "01_raw" / "movies.csv", keep_default_na=False, na_values=[""])
    out = run(sample, sample, BY_ID)
    assert len(out) == len(sample) == 240
    assert list(out.columns) == ["movie_id", "title", "overview"]
    pd.testing.assert_frame_equal(out.astype(object), sample.astype(object))
    assert out["movie_id"].dtype == "int64"


def test_by_movie_id_keeps_the_movie_order_and_leaves_out_movies_without_a_row():
    movies = pd.DataFrame({"movie_id": [3, 1, 2], "title": ["C (2001)", "A (1999)", "B (2000)"]})
    overviews = pd.DataFrame({"movie_id": [1, 3, 9], "overview": ["About A.", "About C.", "About a film not listed."]})
    out = run(movies, overviews, BY_ID)
    assert out.to_dict("list") == {
        "movie_id": [3, 1],
        "title": ["C (2001)", "A (1999)"],
        "overview": ["About C.", "About A."],
    }
    assert out.index.tolist() == [0, 1]


def tmdb(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["title", "release_date", "overview"])


def test_by_title_and_year_flips_articles_tries_the_alternative_title_and_needs_the_year():
    movies = pd.DataFrame(
        {
            "movie_id": [1, 2, 3, 4, 5, 6],
            "title": [
                "Usual Suspects, The (1995)",
                "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
                "Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)",
                "Heat (1995)",
                "Heat (1996)",  # TMDB's Heat is 1995: another year finds nothing
                "Untitled",  # no year: matches nothing
            ],
        }
    )
    overviews = tmdb(
        [
            ("The Usual Suspects", "1995-07-19", "  Keyser Soze.  "),
            ("La Cité des Enfants Perdus", "1995-05-17", "Dreams are stolen."),
            ("Yao a yao, yao dao waipo qiao", "1995-05-01", "Shanghai gangsters."),
            ("Heat", "1995-12-15", "A heist."),
            ("Untitled", "2009-01-01", "Not the same film."),
        ]
    )
    out = run(movies, overviews, BY_TITLE)
    assert out["movie_id"].tolist() == [1, 2, 3, 4]
    assert out["overview"].tolist() == ["Keyser Soze.", "Dreams are stolen.", "Shanghai gangsters.", "A heist."]
    assert out["title"].tolist() == movies["title"].iloc[:4].tolist(), "MovieLens's titles are kept"


def test_by_title_and_year_skips_ambiguous_and_incomplete_tmdb_rows():
    movies = pd.DataFrame(
        {
            "movie_id": [1, 2, 3, 4, 5],
            "title": ["Twins (1988)", "Alien (1979)", "Brazil (1985)", "Ran (1985)", "Heat (1995)"],
        }
    )
    overviews = tmdb(
        [
            ("Twins", "1988-12-09", "Arnold."),
            ("Twins", "1988-01-01", "Other twins."),  # two TMDB films share title and year: neither matches
            ("Alien", None, "No release date."),
            ("Alien", "1979-05-25", " \u200b "),  # a blank overview (spaces, a zero-width space) describes nothing
            ("Brazil", "1985-02-20", None),
            ("Ran", " ", "No year."),  # a blank date (a date that cannot be read is refused by the check)
            ("Heat", "1995-12-15", "A heist."),  # (one movie matches: none at all is an error)
        ]
    )
    out = run(movies, overviews, BY_TITLE)
    assert out.to_dict("list") == {"movie_id": [5], "title": ["Heat (1995)"], "overview": ["A heist."]}


def test_the_articles_are_the_parameter():
    movies = pd.DataFrame({"movie_id": [1, 2], "title": ["Usual Suspects, The (1995)", "Avventura, L' (1960)"]})
    overviews = tmdb([("The Usual Suspects", "1995-07-19", "Keyser Soze."), ("L'Avventura", "1960-06-29", "Lost.")])
    assert run(movies, overviews, BY_TITLE)["movie_id"].tolist() == [1, 2]
    with pytest.raises(RawDataError, match="none of the 2 movies"):  # neither title is found without its article
        run(movies, overviews, {**BY_TITLE, "articles": []})
    assert run(movies, overviews, {**BY_TITLE, "articles": ["the"]})["movie_id"].tolist() == [1]


def test_no_movie_matched_is_an_error_naming_both_tables_and_the_rule():
    """Nothing to embed: refused here, not left to the embedding (numpy's "need at least one array to stack")."""
    movies = pd.DataFrame({"movie_id": [1, 2], "title": ["Toy Story (1995)", "Heat (1995)"]})
    off_by_years = tmdb([("Toy Story", "1999-11-24", "Toys."), ("Heat", "1986-03-14", "Another heist.")])
    with pytest.raises(
        RawDataError,
        match=r"dataset 'movie_overviews', column 'title': none of the 2 movies of 'movies' has an overview here "
        r"\(matched on title_year\).*titles and years.*movie_overviews\.match_on",
    ):
        run(movies, off_by_years, BY_TITLE)
    other_ids = pd.DataFrame({"movie_id": [7, 8], "overview": ["About G.", "About H."]})
    with pytest.raises(
        RawDataError,
        match=r"dataset 'movie_overviews', column 'movie_id': none of the 2 movies .*matched on movie_id.*match_on",
    ):
        run(movies, other_ids, BY_ID)


def test_by_title_and_year_on_a_list_without_years_names_the_table_and_the_layout():
    # MovieLens 1M's movies.dat read with 100K's '|': the whole line lands in movie_id, genres in title
    movies = pd.DataFrame({"movie_id": [1, 2], "title": ["Animation", "Action"]})
    with pytest.raises(
        RawDataError, match=r"dataset 'movies', column 'title', row 0 .*no title ends with a year.*load_args"
    ):
        match_overviews(
            check_movies(movies), check_movie_overviews(tmdb([("Heat", "1995-12-15", "A.")]), BY_TITLE), BY_TITLE
        )


def test_check_movies_wants_ids_and_titles_only():
    movies = pd.DataFrame({"movie_id": [1, 2], "title": ["A (1999)", "B (2000)"], "genres": ["x", "y"]})
    assert list(check_movies(movies).columns) == ["movie_id", "title"]
    with pytest.raises(RawDataError, match=r"dataset 'movies', column 'movie_id', row 1 .*duplicate id 1"):
        check_movies(movies.assign(movie_id=[1, 1]))
    with pytest.raises(RawDataError, match=r"dataset 'movies', column 'title', row 0 .*missing or blank"):
        check_movies(movies.assign(title=[" ", "B (2000)"]))


def test_check_movie_overviews_follows_the_rule():
    by_id = pd.DataFrame({"movie_id": [1, 2], "overview": ["About A.", ""]})
    with pytest.raises(RawDataError, match=r"dataset 'movie_overviews', column 'overview', row 1 .*missing or blank"):
        check_movie_overviews(by_id, BY_ID)
    with pytest.raises(RawDataError, match=r"dataset 'movie_overviews', column 'movie_id', row 1 .*duplicate id 1"):
        check_movie_overviews(by_id.assign(movie_id=[1, 1], overview=["A.", "B."]), BY_ID)
    # TMDB: missing dates and overviews are allowed (match_overviews skips those rows); a missing column is not
    tmdb_rows = tmdb([("Heat", None, None), ("Alien", "1979-05-25", "A.")])
    checked = check_movie_overviews(tmdb_rows, BY_TITLE)
    assert checked["release_date"].isna().tolist() == [True, False] and checked["title"].tolist() == ["Heat", "Alien"]
    with pytest.raises(RawDataError, match=r"dataset 'movie_overviews', column 'release_date'.*missing"):
        check_movie_overviews(tmdb_rows.drop(columns="release_date"), BY_TITLE)
    # a date that cannot be read would drop its row from the match without a word: refused, at its row
    odd = tmdb([("Heat", "1995-12-15", "A."), ("Casino", "30/12/1995", "B."), ("Alien", "not a date", "C.")])
    with pytest.raises(
        RawDataError, match=r"column 'release_date', row 1 .*expected a date YYYY-MM-DD, found '30/12/1995'"
    ):
        check_movie_overviews(odd, BY_TITLE)
