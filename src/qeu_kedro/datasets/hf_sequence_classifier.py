"""A catalog entry for a Hugging Face encoder folder (tokenizer + model), e.g. a sequence classifier."""

from __future__ import annotations

from pathlib import Path

from kedro.io import DatasetError

from qeu_kedro.datasets._model_folder import ModelFolderDataset, ModelHandle


class HFSequenceClassifierDataset(ModelFolderDataset):
    """Loads a :class:`~qeu_kedro.datasets.ModelHandle` (nothing read until used); saves one to ``filepath``.

    The handle's ``model`` is an ``AutoModelForSequenceClassification``; a node that fine-tunes
    builds its own head with ``handle.from_pretrained(..., num_labels=...)``.

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

    def load(self) -> ModelHandle:
        return ModelHandle(self.source(), load_args=self._load_args, auto_class="AutoModelForSequenceClassification")

    def save(self, data: ModelHandle) -> None:
        if not isinstance(data, ModelHandle):
            raise DatasetError(f"HFSequenceClassifierDataset saves a ModelHandle, not {type(data).__name__}.")

        def write(tmp: Path) -> None:
            data.model.save_pretrained(str(tmp))
            data.tokenizer.save_pretrained(str(tmp))

        self._save_folder(write)
