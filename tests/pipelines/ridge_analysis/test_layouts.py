"""MovieLens layouts through the catalog: 1M's '::' files and code tables, the movie lists of 1M/10M and 20M+."""

import pandas as pd
import pytest
from kedro.io import DataCatalog, DatasetError

from qeu_kedro.datasets.movielens_tmdb import MovieLensTmdbDataset
from qeu_kedro.pipelines.ridge_analysis.dispatch import check_ratings, check_users
from qeu_kedro.pipelines.ridge_analysis.layouts import decode_users
from qeu_kedro.validation import RawDataError
from tests.conftest import load_config

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
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    catalog = DataCatalog.from_config(load_config(repo, env="movielens_1m"))
    params = load_config(repo, env="movielens_1m", key="parameters")["ridge_analysis"]
    users = check_users(decode_users(catalog.load("users"), params))
    assert users["age"].tolist() == [15, 60, 30]
    assert users["occupation"].tolist() == ["K-12 student", "self-employed", "scientist"]
    ratings = check_ratings(catalog.load("ratings"))
    assert ratings["rating"].tolist() == [5, 3, 4]
    movies = catalog.load("movies")
    assert movies["movie_id"].tolist() == [1, 6] and movies["overview"].str.len().gt(0).all()


def test_an_unknown_code_names_column_row_and_table():
    with pytest.raises(RawDataError, match=r"column 'occupation', row 1.*'99'.*user_codes.occupation"):
        decode_users(pd.DataFrame({"occupation": ["1", "99"]}), {"user_codes": {"occupation": {1: "artist"}}})


def test_empty_code_tables_leave_the_100k_users_as_they_are():
    users = pd.DataFrame({"user_id": [1], "age": [24], "gender": ["M"], "occupation": ["technician"]})
    pd.testing.assert_frame_equal(decode_users(users, {"user_codes": {"age": {}, "occupation": {}}}), users)


def test_movie_lists_of_every_layout(tmp_path):
    (tmp_path / "tmdb.csv").write_text(TMDB)
    (tmp_path / "movies.csv").write_text('movieId,title,genres\n1,Toy Story (1995),Animation\n6,"Heat (1995)",Action\n')
    (tmp_path / "movies.dat").write_text("1::Toy Story (1995)::Animation\n6::Heat (1995)::Action\n")
    for name, layout in (("movies.csv", "csv"), ("movies.dat", "dat")):
        movies = MovieLensTmdbDataset(str(tmp_path / name), str(tmp_path / "tmdb.csv"), layout=layout).load()
        assert movies["movie_id"].tolist() == [1, 6]
    # the 1M file read as 100K: an error that names the layouts, not an empty table further on
    with pytest.raises(DatasetError, match=r"does not parse as the MovieLens '100k' layout.*layout: 100k.*dat.*csv"):
        MovieLensTmdbDataset(str(tmp_path / "movies.dat"), str(tmp_path / "tmdb.csv")).load()
    with pytest.raises(DatasetError, match="not one of"):
        MovieLensTmdbDataset(str(tmp_path / "movies.dat"), str(tmp_path / "tmdb.csv"), layout="10m")
