"""Nodes of the ``movie_embedding`` pipeline."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from qeu_kedro.validation import Column, check_table

logger = logging.getLogger(__name__)

MOVIE_COLUMNS = (
    Column("movie_id", "int", min=1, unique=True),
    Column("title", "str"),
    Column("overview", "str", hint="Every movie needs an overview to embed; drop the movie or fill it in."),
)


def check_movies(movies: pd.DataFrame) -> pd.DataFrame:
    """Check the raw ``movies`` table (movie_id, title, overview) and return it typed."""
    return check_table(movies, "movies", MOVIE_COLUMNS)


def embed_movies(movies: pd.DataFrame, embedding_model: Any, params: dict[str, Any]) -> pd.DataFrame:
    """Embed every text column in ``params["text_columns"]`` for each movie.

    Args:
        movies: checked movies with ``movie_id`` and the text columns.
        embedding_model: a ``SentenceTransformer`` from the catalog.
        params: ``text_columns``, ``batch_size``, ``normalize_embeddings``, ``show_progress_bar``.

    Returns:
        One row per movie: ``movie_id`` then ``<column>_embedding_<i>`` float32 columns.
    """
    blocks = [movies[["movie_id"]].reset_index(drop=True)]
    for column in params["text_columns"]:
        texts = movies[column].tolist()
        logger.info("Embedding %d %s texts (batch size %d)", len(texts), column, params["batch_size"])
        vectors = embedding_model.encode(
            texts,
            batch_size=params["batch_size"],
            normalize_embeddings=params["normalize_embeddings"],
            show_progress_bar=params["show_progress_bar"],
            convert_to_numpy=True,
        ).astype(np.float32)
        names = [f"{column}_embedding_{i}" for i in range(vectors.shape[1])]
        blocks.append(pd.DataFrame(vectors, columns=names))
    embeddings = pd.concat(blocks, axis=1)
    logger.info("Embedded %d movies into %d features", len(embeddings), embeddings.shape[1] - 1)
    return embeddings
