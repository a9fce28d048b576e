"""A catalog entry for a Hugging Face encoder folder (tokenizer + model), e.g. a sequence classifier."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.io import DatasetError

from qeu_kedro.datasets._model_folder import ModelFolderDataset


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


class HFSequenceClassifierDataset(ModelFolderDataset):
    """Loads an :class:`HFModelFolder`; saves ``{"model": ..., "tokenizer": ...}`` to ``filepath``.

    Example catalog entries::

        jrte_sentiment.level2_base_model:        # a pretrained encoder to fine-tune
          type: qeu_kedro.datasets.hf_sequence_classifier.HFSequenceClassifierDataset
          model: bundled:multilingual-e5-small

        jrte_sentiment.level2.classifier:        # written by the fine-tuning node
          type: qeu_kedro.datasets.hf_sequence_classifier.HFSequenceClassifierDataset
          filepath: data/06_models/jrte_sentiment/level2_classifier

    Arguments as for :class:`~qeu_kedro.datasets._model_folder.ModelFolderDataset`;
    ``load_args`` go to every ``from_pretrained`` call.
    """

    MARKER = "config.json"

    def load(self) -> HFModelFolder:
        return HFModelFolder(self.source(), self._load_args)

    def save(self, data: Any) -> None:
        if not isinstance(data, dict) or not {"model", "tokenizer"} <= set(data):
            raise DatasetError("HFSequenceClassifierDataset saves a dict with 'model' and 'tokenizer'.")

        def write(tmp: Path) -> None:
            data["model"].save_pretrained(str(tmp))
            data["tokenizer"].save_pretrained(str(tmp))

        self._save_folder(write)
