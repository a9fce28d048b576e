"""A catalog entry for a sentence-transformers model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from qeu_kedro.datasets._atomic import save_folder_atomically
from qeu_kedro.models import resolve_model


class SentenceTransformerDataset(AbstractDataset):
    """Loads a ``SentenceTransformer``; saves one to ``filepath``.

    Example catalog entries::

        base.embedding_model:
          type: qeu_kedro.datasets.SentenceTransformerDataset
          model: bundled:all-MiniLM-L6-v2

        finetuned.embedding_model:          # written by bge_finetune
          type: qeu_kedro.datasets.SentenceTransformerDataset
          filepath: data/06_models/bge_finetuned

    Args:
        model: a spec for :func:`qeu_kedro.models.resolve_model` (bundled, folder or hub id),
            used when there is no ``filepath``.
        filepath: folder the model is saved to and loaded from.
        allow_download: let a hub id be downloaded (the ``hub`` environment).
        load_args: keyword arguments for ``SentenceTransformer`` (default ``device="cpu"``).
    """

    def __init__(
        self,
        model: str | None = None,
        filepath: str | None = None,
        allow_download: bool = False,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if model is None and filepath is None:
            raise DatasetError("SentenceTransformerDataset needs 'model' or 'filepath'.")
        self._model = model
        self._filepath = Path(filepath) if filepath else None
        self._allow_download = allow_download
        self._load_args = {"device": "cpu", **(load_args or {})}
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"model": self._model, "filepath": str(self._filepath) if self._filepath else None}

    def source(self) -> str:
        """What would be loaded: the saved folder if present, else the resolved spec."""
        if self._filepath is not None and (self._filepath / "modules.json").exists():
            return str(self._filepath)
        if self._model is None:
            raise DatasetError(
                f"No model has been saved at '{self._filepath}' yet: run the pipeline that trains it "
                "first (for the fine-tuned embedding model: kedro run --pipeline bge_finetune)."
            )
        return resolve_model(self._model, allow_download=self._allow_download)

    def load(self) -> Any:
        source = self.source()
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(source, **self._load_args)

    def save(self, data: Any) -> None:
        if self._filepath is None:
            raise DatasetError("This SentenceTransformerDataset has no 'filepath' to save to.")
        save_folder_atomically(self._filepath, lambda tmp: data.save(str(tmp)))

    def _exists(self) -> bool:
        return self._filepath is not None and (self._filepath / "modules.json").exists()
