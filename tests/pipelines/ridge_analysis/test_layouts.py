"""MovieLens layouts through the catalog: 1M's '::' files and code tables, the movie lists of 1M/10M and 20M+."""

import io

import pandas as pd
import pytest
from kedro.io import DataCatalog
from kedro_datasets.pandas import CSVDataset

from qeu_kedro.pipelines.movie_embedding.overviews import check_movie_overviews, check_movies, match_overviews
from qeu_kedro.pipelines.ridge_analysis.dispatch import check_ratings, check_users
from qeu_kedro.pipelines.ridge_analysis.layouts import decode_users
from qeu_kedro.validation import RawDataError
from tests.conftest import REPO, load_config, matched_movies

TMDB = 'title,release_date,overview\nToy Story,1995-10-30,"Toys come alive."\nHeat,1995-12-15,"A heist in LA."\n'


@pytest.fixture
def ml1m(tmp_path, monkeypatch):
    """A folder laid out as ../shared/data with a tiny MovieLens 1M (same format, made-up rows)."""
    (tmp_path / "tmdb5000").mkdir()
    (tmp_path / "tmdb5000" / "tmdb_5000_movies.csv").write_text(TMDB)
    folder = tmp_path / "movielens-1m"
    folder.mkdir()
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's\n6::Heat (1995)::Action\n".encode("latin-1")
    )
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n")
    (folder / "ratings.dat").write_text("1::1::5::978300760\n2::6::3::978302109\n3::1::4::978301968\n")
    monkeypatch.setenv("QEU_SHARED_DATA", str(tmp_path))
    return tmp_path


def test_movielens_1m_loads_and_decodes_through_its_environment(ml1m):
    catalog = DataCatalog.from_config(load_config(REPO, env="movielens_1m"))
    params = load_config(REPO, env="movielens_1m", key="parameters")["ridge_analysis"]
    # conf/movielens_1m's schema lists the occupations its code table decodes to, each of them once
    occupations = params["schema"]["occupations"]
    assert sorted(occupations) == sorted(set(params["user_codes"]["occupation"].values()))
    users = check_users(decode_users(catalog.load("users"), params), params)
    assert users["age"].tolist() == [15, 60, 30]
    assert users["occupation"].tolist() == ["K-12 student", "self-employed", "scientist"]
    ratings = check_ratings(catalog.load("ratings"), params)
    assert ratings["rating"].tolist() == [5, 3, 4]
    movies = matched_movies("movielens_1m")
    assert movies["movie_id"].tolist() == [1, 6] and movies["overview"].tolist() == [
        "Toys come alive.",
        "A heist in LA.",
    ]


def test_an_unknown_code_names_column_row_and_table():
    with pytest.raises(RawDataError, match=r"column 'occupation', row 1.*'99'.*user_codes.occupation"):
        decode_users(pd.DataFrame({"occupation": ["1", "99"]}), {"user_codes": {"occupation": {1: "artist"}}})


def test_a_blank_code_is_named_at_its_row_and_the_codes_of_a_column_it_made_float_still_decode(ml1m):
    """A blank age turns the column into floats (1.0, 56.0, ...): those decode as 1 and 56, and the blank is
    named as missing at its own row (it was named as an unknown code 1.0 at row 0)."""
    (ml1m / "movielens-1m" / "users.dat").write_text(
        "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n4::M::::7::02460\n"
    )
    catalog = DataCatalog.from_config(load_config(REPO, env="movielens_1m"))
    params = load_config(REPO, env="movielens_1m", key="parameters")["ridge_analysis"]
    users = catalog.load("users")
    assert users["age"].dtype.kind == "f"
    with pytest.raises(RawDataError, match=r"'users', column 'age', row 3 .*missing value"):
        decode_users(users, params)
    decoded = decode_users(users.iloc[:3], params)
    assert decoded["age"].tolist() == [15, 60, 30]  # the code table's values, as from whole-number codes


@pytest.mark.parametrize("code", ["²", "١", "1.5"])
def test_a_code_that_only_looks_like_a_number_is_unknown(code):
    with pytest.raises(RawDataError, match=r"column 'occupation', row 1.*not in ridge_analysis.user_codes"):
        decode_users(pd.DataFrame({"occupation": ["1", code]}), {"user_codes": {"occupation": {1: "artist"}}})


def test_empty_code_tables_leave_the_100k_users_as_they_are():
    users = pd.DataFrame({"user_id": [1], "age": [24], "gender": ["M"], "occupation": ["technician"]})
    pd.testing.assert_frame_equal(decode_users(users, {"user_codes": {"age": {}, "occupation": {}}}), users)


def test_movie_lists_of_every_layout(tmp_path):
    """1M/10M's movies.dat (the movielens_1m entry) and 20M+'s movies.csv (the README's entry) match TMDB."""
    (tmp_path / "movies.csv").write_text('movieId,title,genres\n1,Toy Story (1995),Animation\n6,"Heat (1995)",Action\n')
    (tmp_path / "movies.dat").write_text("1::Toy Story (1995)::Animation\n6::Heat (1995)::Action\n")
    params = load_config(REPO, "movielens_1m", "parameters")["movie_overviews"]
    overviews = check_movie_overviews(pd.read_csv(io.StringIO(TMDB)), params)
    dat = load_config(REPO, "movielens_1m")["movies"]["load_args"]
    csv = {"header": 0, "names": ["movie_id", "title", "genres"], "keep_default_na": False, "na_values": [""]}
    for name, load_args in (("movies.dat", dat), ("movies.csv", csv)):
        movies = check_movies(CSVDataset(filepath=str(tmp_path / name), load_args=load_args).load())
        assert match_overviews(movies, overviews, params)["movie_id"].tolist() == [1, 6]
    # the 1M file read as 100K ('|'): an error that names the table, the column and the row, not an empty table
    u_item = load_config(REPO, "movielens")["movies"]["load_args"]
    with pytest.raises(RawDataError, match=r"dataset 'movies', column 'movie_id', row 0 .*'1::Toy Story"):
        check_movies(CSVDataset(filepath=str(tmp_path / "movies.dat"), load_args=u_item).load())
