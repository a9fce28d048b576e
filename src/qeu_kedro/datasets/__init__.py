"""Dataset types the project needs beyond kedro-datasets (none imports torch until it loads).

Each is imported when it is first named (``qeu_kedro.datasets.FigureDataset`` in a catalog, or an import),
not with the package: the figure dataset brings matplotlib, which a node that only reads embeddings does
not need.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "CSVDataset": "previews",
    "FigureDataset": "figures",
    "LazySentenceTransformer": "lazy_sentence_transformer",
    "LazySentenceTransformerDataset": "lazy_sentence_transformer",
    "MarkdownDataset": "previews",
    "ModelHandle": "_model_folder",
    "ParquetDataset": "previews",
    "SentenceTransformerDataset": "sentence_transformer",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
