"""A catalog entry for a sentence-transformers model."""

from __future__ import annotations

from typing import Any

from qeu_kedro.datasets._model_folder import ModelFolderDataset


class SentenceTransformerDataset(ModelFolderDataset):
    """Loads a :class:`~qeu_kedro.datasets.LazySentenceTransformer` with its model read at once; saves
    a ``SentenceTransformer`` (or a handle of one) to ``filepath``.

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
    RUN_FIRST = "for the fine-tuned embedding model: kedro run --pipelines bge_finetune"
    DEFAULT_LOAD_ARGS = {"device": "cpu"}

    def load(self) -> Any:
        # imported here: lazy_sentence_transformer builds on this module
        from qeu_kedro.datasets.lazy_sentence_transformer import LazySentenceTransformer

        handle = LazySentenceTransformer(self.source(), dict(self._load_args))
        handle.load()
        return handle

    def save(self, data: Any) -> None:
        self._save_folder(lambda tmp: data.save(str(tmp)))
