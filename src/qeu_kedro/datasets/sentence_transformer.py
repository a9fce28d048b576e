"""A catalog entry for a sentence-transformers model."""

from __future__ import annotations

from typing import Any

from qeu_kedro.datasets._model_folder import ModelFolderDataset


class SentenceTransformerDataset(ModelFolderDataset):
    """Loads a ``SentenceTransformer``; saves one to ``filepath``.

    Example catalog entries::

        base.embedding_model:
          type: qeu_kedro.datasets.SentenceTransformerDataset
          model: bundled:all-MiniLM-L6-v2

        finetuned.embedding_model:          # written by bge_finetune
          type: qeu_kedro.datasets.SentenceTransformerDataset
          filepath: data/06_models/bge_finetuned

    Arguments as for :class:`~qeu_kedro.datasets._model_folder.ModelFolderDataset`;
    ``load_args`` go to ``SentenceTransformer`` (default ``device="cpu"``).
    """

    MARKER = "modules.json"
    RUN_FIRST = "for the fine-tuned embedding model: kedro run --pipeline bge_finetune"
    DEFAULT_LOAD_ARGS = {"device": "cpu"}

    def load(self) -> Any:
        source = self.source()
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(source, **self._load_args)

    def save(self, data: Any) -> None:
        self._save_folder(lambda tmp: data.save(str(tmp)))
