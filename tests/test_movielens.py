import pandas as pd
import pytest

from qeu_kedro.movielens import match_movielens_tmdb, movielens_title_keys, normalise_title
from tests.conftest import REPO, load_config, matched_movies

ARTICLES = load_config(REPO, None, "parameters")["movie_overviews"]["articles"]


@pytest.mark.parametrize(
    ("raw", "keys", "year"),
    [
        ("Usual Suspects, The (1995)", ["the usual suspects"], 1995),
        ("Toy Story (1995)", ["toy story"], 1995),
        (
            "Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)",
            ["shanghai triad", "yao a yao yao dao waipo qiao"],
            1995,
        ),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            ["the city of lost children", "la cite des enfants perdus"],
            1995,
        ),
        ("Untitled", ["untitled"], None),
    ],
)
def test_movielens_title_keys(raw, keys, year):
    assert movielens_title_keys(raw, ARTICLES) == (keys, year)


def test_normalise_title():
    assert normalise_title("Romeo & Juliet: Part II!") == "romeo and juliet part ii"


def test_match_uses_title_and_year_and_skips_ambiguous():
    items = pd.DataFrame(
        {
            "movie_id": [1, 2, 3, 4],
            "title": ["Usual Suspects, The (1995)", "Heat (1995)", "Heat (1986)", "Twins (1988)"],
        }
    )
    tmdb = pd.DataFrame(
        {
            "title": ["The Usual Suspects", "Heat", "Heat", "Twins", "Twins"],
            "release_date": ["1995-07-19", "1995-12-15", "1986-03-01", "1988-12-09", "1988-01-01"],
            "overview": ["Keyser Soze.", "A heist.", "Burt Reynolds.", "Arnold.", "Other twins."],
        }
    )
    out = match_movielens_tmdb(items, tmdb, ARTICLES)
    assert out["movie_id"].tolist() == [1, 2, 3]
    assert out.set_index("movie_id").loc[3, "overview"] == "Burt Reynolds."


@pytest.mark.real_data
def test_real_movielens_tmdb_match_counts(shared_data, monkeypatch):
    monkeypatch.setenv("QEU_SHARED_DATA", str(shared_data))
    movies = matched_movies("movielens")
    # 469 of u.item's 1,682 movies, as the dataset that matched them before the node did
    assert len(movies) == 469
    assert movies["movie_id"].is_unique
    assert movies["overview"].str.len().min() > 0
    assert "Toy Story (1995)" in set(movies["title"])
