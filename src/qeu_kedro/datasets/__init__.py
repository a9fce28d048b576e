"""Dataset types the project needs beyond kedro-datasets (none imports torch until it loads)."""

from qeu_kedro.datasets._model_folder import ModelHandle
from qeu_kedro.datasets.figures import FigureDataset
from qeu_kedro.datasets.lazy_sentence_transformer import LazySentenceTransformer, LazySentenceTransformerDataset
from qeu_kedro.datasets.previews import CSVDataset, MarkdownDataset, ParquetDataset
from qeu_kedro.datasets.sentence_transformer import SentenceTransformerDataset

__all__ = [
    "CSVDataset",
    "FigureDataset",
    "LazySentenceTransformer",
    "LazySentenceTransformerDataset",
    "MarkdownDataset",
    "ModelHandle",
    "ParquetDataset",
    "SentenceTransformerDataset",
]
