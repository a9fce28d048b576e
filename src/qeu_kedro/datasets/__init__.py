"""Dataset types the project needs beyond kedro-datasets."""

from qeu_kedro.datasets.movielens_tmdb import MovieLensTmdbDataset
from qeu_kedro.datasets.sentence_transformer import SentenceTransformerDataset

__all__ = ["MovieLensTmdbDataset", "SentenceTransformerDataset"]
