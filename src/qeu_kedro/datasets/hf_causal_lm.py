"""Catalog entries for a causal language model and for a LoRA adapter trained on it.

Both load a :class:`~qeu_kedro.datasets.ModelHandle` with the model and its tokenizer loaded, so
the nodes that generate or train take one type whatever its origin. Nothing here imports torch at
module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from qeu_kedro.datasets._model_folder import ModelFolderDataset, ModelHandle
from qeu_kedro.models import resolve_model


def load_causal_lm(spec: str, allow_download: bool = False, load_args: dict[str, Any] | None = None) -> ModelHandle:
    """Resolve ``spec`` (bundled, folder or hub id) and load it for CPU inference or training."""
    # Resolve first: an unavailable model fails at once, before the slow transformers import.
    path = resolve_model(spec, allow_download=allow_download)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        # Phi-2 and others have no pad token; padding only ever sits outside the loss.
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, **(load_args or {}))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return ModelHandle(spec, model=model, tokenizer=tokenizer, load_args=load_args, auto_class="AutoModelForCausalLM")


class HFCausalLMDataset(AbstractDataset):
    """A pretrained causal LM named by a model spec (read-only).

    Example::

        alpaca_base_model:
          type: qeu_kedro.datasets.hf_causal_lm.HFCausalLMDataset
          model: bundled:SmolLM2-135M-Instruct

    Args:
        model: spec for :func:`qeu_kedro.models.resolve_model`.
        allow_download: let a hub id be downloaded (the ``hub`` environment).
        load_args: keyword arguments for ``AutoModelForCausalLM.from_pretrained`` (e.g. ``dtype``).
    """

    def __init__(
        self,
        model: str,
        allow_download: bool = False,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._model = model
        self._allow_download = allow_download
        self._load_args = dict(load_args or {})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"model": self._model, "allow_download": self._allow_download}

    def load(self) -> ModelHandle:
        return load_causal_lm(self._model, self._allow_download, self._load_args)

    def save(self, data: Any) -> None:
        raise DatasetError(
            "HFCausalLMDataset is read-only: it names a pretrained model. Save adapters with PeftAdapterDataset."
        )

    def _exists(self) -> bool:
        return True

    def spec_to_resolve(self) -> str:
        """The model spec a load resolves: always its ``model``."""
        return self._model


class PeftAdapterDataset(ModelFolderDataset):
    """A peft (LoRA) adapter saved to ``filepath``; loads as the base model with the adapter applied.

    Example::

        alpaca_sft.lora_adapter:
          type: qeu_kedro.datasets.hf_causal_lm.PeftAdapterDataset
          filepath: data/06_models/alpaca_sft/lora_adapter
          base_model: bundled:SmolLM2-135M-Instruct

    Only the adapter weights and the tokenizer are written (a few MB), atomically.

    Args:
        filepath: folder of the adapter.
        base_model: spec of the model the adapter was trained on.
        allow_download: let a hub base model be downloaded.
        load_args: keyword arguments for loading the base model.
    """

    MARKER = "adapter_config.json"
    KIND = "adapter"
    RUN_FIRST = "kedro run --pipelines alpaca_sft"

    def __init__(
        self,
        filepath: str,
        base_model: str,
        allow_download: bool = False,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            model=base_model, filepath=filepath, allow_download=allow_download, load_args=load_args, metadata=metadata
        )

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "base_model": self._model}

    def spec_to_resolve(self) -> str | None:
        """The base model a saved adapter is loaded on (None before one is saved: nothing to load)."""
        return self._model if self._exists() else None

    def load(self) -> ModelHandle:
        from peft import PeftModel

        if not self._exists():
            raise self._not_saved_error()
        base = load_causal_lm(self._model, self._allow_download, self._load_args)
        model = PeftModel.from_pretrained(base.model, str(self._filepath))
        model.eval()
        return ModelHandle(f"{self._model} + {self._filepath}", model=model, tokenizer=base.tokenizer)

    def save(self, data: ModelHandle) -> None:
        if not isinstance(data, ModelHandle) or not hasattr(data.model, "peft_config"):
            raise DatasetError("PeftAdapterDataset saves a peft model (with an adapter); got a plain model.")

        def write(tmp: Path) -> None:
            data.model.save_pretrained(str(tmp))
            data.tokenizer.save_pretrained(str(tmp))

        self._save_folder(write)
