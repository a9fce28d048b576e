"""A catalog entry for a Hugging Face encoder folder (tokenizer + model), e.g. a sequence classifier."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from qeu_kedro.datasets._atomic import save_folder_atomically
from qeu_kedro.models import resolve_model


@dataclass(frozen=True)
class HFModelFolder:
    """Where a transformers model lives; loads its parts on demand.

    Nodes get this rather than a loaded model because they decide the head and its
    configuration (number of labels, dropout) when they build it.
    """

    path: str
    load_args: dict[str, Any] | None = None

    def tokenizer(self, **kwargs: Any) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.path, **{**(self.load_args or {}), **kwargs})

    def model(self, auto_class: str = "AutoModelForSequenceClassification", **kwargs: Any) -> Any:
        """``transformers.<auto_class>.from_pretrained(path, **kwargs)`` (for example ``AutoModel``)."""
        import transformers

        cls = getattr(transformers, auto_class)
        return cls.from_pretrained(self.path, **{**(self.load_args or {}), **kwargs})


class HFSequenceClassifierDataset(AbstractDataset):
    """Loads an :class:`HFModelFolder`; saves ``{"model": ..., "tokenizer": ...}`` to ``filepath``.

    Example catalog entries::

        level2_base_model:                       # a pretrained encoder to fine-tune
          type: qeu_kedro.datasets.HFSequenceClassifierDataset
          model: bundled:multilingual-e5-small

        level2_classifier:                       # written by the fine-tuning node
          type: qeu_kedro.datasets.HFSequenceClassifierDataset
          filepath: data/06_models/jrte_sentiment/level2_classifier

    Args:
        model: a spec for :func:`qeu_kedro.models.resolve_model` (bundled, folder or hub id),
            used when nothing has been saved at ``filepath``.
        filepath: folder the model and tokenizer are saved to and loaded from.
        allow_download: let a hub id be downloaded (the ``hub`` environment).
        load_args: keyword arguments for every ``from_pretrained`` call.
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
            raise DatasetError("HFSequenceClassifierDataset needs 'model' or 'filepath'.")
        self._model = model
        self._filepath = Path(filepath) if filepath else None
        self._allow_download = allow_download
        self._load_args = load_args or {}
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"model": self._model, "filepath": str(self._filepath) if self._filepath else None}

    def _exists(self) -> bool:
        return self._filepath is not None and (self._filepath / "config.json").exists()

    def load(self) -> HFModelFolder:
        if self._exists():
            return HFModelFolder(str(self._filepath), self._load_args)
        if self._model is None:
            raise DatasetError(
                f"No model has been saved at '{self._filepath}' yet: run the pipeline that trains it first."
            )
        return HFModelFolder(resolve_model(self._model, allow_download=self._allow_download), self._load_args)

    def save(self, data: Any) -> None:
        if self._filepath is None:
            raise DatasetError("This HFSequenceClassifierDataset has no 'filepath' to save to.")
        if not isinstance(data, dict) or not {"model", "tokenizer"} <= set(data):
            raise DatasetError("HFSequenceClassifierDataset saves a dict with 'model' and 'tokenizer'.")

        def write(tmp: Path) -> None:
            data["model"].save_pretrained(str(tmp))
            data["tokenizer"].save_pretrained(str(tmp))

        save_folder_atomically(self._filepath, write)
