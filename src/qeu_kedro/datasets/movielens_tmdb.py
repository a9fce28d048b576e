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


class MovieLensTmdbDataset(AbstractDataset):
    """``movie_id, title, overview`` for the MovieLens movies that TMDB describes.

    Args:
        items_path: MovieLens ``u.item`` ('|'-separated, latin-1, no header).
        tmdb_path: TMDB ``tmdb_5000_movies.csv``.
    """

    def __init__(self, items_path: str, tmdb_path: str, metadata: dict[str, Any] | None = None) -> None:
        self._items_path = Path(items_path)
        self._tmdb_path = Path(tmdb_path)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"items_path": str(self._items_path), "tmdb_path": str(self._tmdb_path)}

    def load(self) -> pd.DataFrame:
        for path in (self._items_path, self._tmdb_path):
            if not path.exists():
                raise DatasetError(
                    f"{path} does not exist. The movielens environment reads the real data from "
                    "../shared/data (or QEU_SHARED_DATA); see the README."
                )
        # Only an empty cell is missing: a title "NA" or "Null" is a title.
        text = {"keep_default_na": False, "na_values": [""]}
        items = pd.read_csv(self._items_path, sep="|", header=None, names=_ITEM_COLUMNS, encoding="latin-1", **text)
        tmdb = pd.read_csv(self._tmdb_path, usecols=["title", "release_date", "overview"], **text)
        movies = match_movielens_tmdb(items, tmdb)
        logger.info("Matched %d of %d MovieLens movies to a TMDB overview", len(movies), len(items))
        return movies

    def save(self, data: Any) -> None:
        raise DatasetError("MovieLensTmdbDataset is read-only: raw data is never written.")

    def _exists(self) -> bool:
        return self._items_path.exists() and self._tmdb_path.exists()
