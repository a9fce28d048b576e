"""Read-only dataset: MovieLens 100K movies with their TMDB overviews."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from qeu_kedro.movielens import match_movielens_tmdb

logger = logging.getLogger(__name__)

_ITEM_COLUMNS = ["movie_id", "title", "release_date", "video_release_date", "imdb_url"] + [
    f"genre_{i}" for i in range(19)
]
# How each MovieLens release writes its movie list (titles are "Title (Year)" in all of them).
LAYOUTS: dict[str, dict[str, Any]] = {
    # 100K: u.item, '|'-separated, latin-1, no header, 24 columns
    "100k": {"sep": "|", "header": None, "names": _ITEM_COLUMNS, "encoding": "latin-1"},
    # 1M and 10M: movies.dat, MovieID::Title::Genres, no header (1M is latin-1, 10M UTF-8)
    "dat": {
        "sep": "::",
        "header": None,
        "names": ["movie_id", "title", "genres"],
        "encoding": "latin-1",
        "engine": "python",
    },
    # 20M, 25M, 32M: movies.csv, movieId,title,genres with a header, UTF-8, quoted titles
    "csv": {"header": 0, "names": ["movie_id", "title", "genres"], "encoding": "utf-8"},
}


class MovieLensTmdbDataset(AbstractDataset):
    """``movie_id, title, overview`` for the MovieLens movies that TMDB describes.

    Args:
        items_path: the MovieLens movie list: ``u.item`` (100K), ``movies.dat`` (1M, 10M) or
            ``movies.csv`` (20M, 25M, 32M).
        tmdb_path: TMDB ``tmdb_5000_movies.csv``.
        layout: ``100k`` (default), ``dat`` or ``csv``: how the release writes the list (:data:`LAYOUTS`).
        load_args: overrides of the layout's ``pandas.read_csv`` arguments (e.g. ``encoding`` for 10M).
    """

    def __init__(
        self,
        items_path: str,
        tmdb_path: str,
        layout: str = "100k",
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if layout not in LAYOUTS:
            raise DatasetError(f"MovieLensTmdbDataset: layout {layout!r} is not one of {sorted(LAYOUTS)}.")
        self._items_path = Path(items_path)
        self._tmdb_path = Path(tmdb_path)
        self._layout = layout
        self._read_args = {**LAYOUTS[layout], **(load_args or {})}
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"items_path": str(self._items_path), "tmdb_path": str(self._tmdb_path), "layout": self._layout}

    def load(self) -> pd.DataFrame:
        for path in (self._items_path, self._tmdb_path):
            if not path.exists():
                raise DatasetError(
                    f"{path} does not exist. The movielens environment reads the real data from "
                    "../shared/data (or QEU_SHARED_DATA); see the README."
                )
        # Only an empty cell is missing: a title "NA" or "Null" is a title.
        text = {"keep_default_na": False, "na_values": [""]}
        items = pd.read_csv(self._items_path, **{**text, **self._read_args})
        years = items["title"].astype(str).str.contains(r"\(\d{4}\)\s*$", regex=True) if len(items) else items["title"]
        if len(items) == 0 or not years.any() or items["movie_id"].isna().any():
            raise DatasetError(
                f"{self._items_path} does not parse as the MovieLens '{self._layout}' layout "
                f"({self._read_args.get('sep', ',')!r}-separated, columns {self._read_args['names'][:3]}): "
                f"no 'Title (Year)' found in its second column. Set the catalog entry's layout: "
                f"100k (u.item), dat (movies.dat of 1M/10M) or csv (movies.csv of 20M/25M/32M)."
            )
        tmdb = pd.read_csv(self._tmdb_path, usecols=["title", "release_date", "overview"], **text)
        movies = match_movielens_tmdb(items, tmdb)
        logger.info("Matched %d of %d MovieLens movies to a TMDB overview", len(movies), len(items))
        return movies

    def save(self, data: Any) -> None:
        raise DatasetError("MovieLensTmdbDataset is read-only: raw data is never written.")

    def _exists(self) -> bool:
        return self._items_path.exists() and self._tmdb_path.exists()
