"""Base class for catalog entries that are a model folder: saved at ``filepath``, else named by a spec."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from kedro.io import AbstractDataset, DatasetError

from qeu_kedro.datasets._atomic import clean_stale_temporaries, save_folder_atomically
from qeu_kedro.models import resolve_model


class ModelFolderDataset(AbstractDataset):
    """A model folder saved to ``filepath``, or else the model spec ``model`` resolved.

    Subclasses set the class attributes and write ``load`` (from :meth:`source`) and
    ``save`` (through :meth:`_save_folder`); nothing here imports torch.

    Args:
        model: a spec for :func:`qeu_kedro.models.resolve_model` (bundled, folder or hub id),
            used when nothing has been saved at ``filepath``.
        filepath: folder the model is saved to and loaded from.
        allow_download: let a hub id be downloaded (the ``hub`` environment).
        load_args: keyword arguments for loading, over ``DEFAULT_LOAD_ARGS``.
    """

    #: A file every saved folder has; the dataset exists when it is there.
    MARKER: ClassVar[str] = "config.json"
    #: What is saved, for the "not saved yet" message.
    KIND: ClassVar[str] = "model"
    #: How to produce the folder, e.g. ``kedro run --pipeline alpaca_sft`` ("" for no hint).
    RUN_FIRST: ClassVar[str] = ""
    DEFAULT_LOAD_ARGS: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        model: str | None = None,
        filepath: str | None = None,
        allow_download: bool = False,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if model is None and filepath is None:
            raise DatasetError(f"{type(self).__name__} needs 'model' or 'filepath'.")
        self._model = model
        self._filepath = Path(filepath) if filepath else None
        self._allow_download = allow_download
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **(load_args or {})}
        self.metadata = metadata
        if self._filepath is not None:  # leftovers of a save that was killed, at the next run
            clean_stale_temporaries(self._filepath)

    def _describe(self) -> dict[str, Any]:
        return {"model": self._model, "filepath": str(self._filepath) if self._filepath else None}

    def _exists(self) -> bool:
        return self._filepath is not None and (self._filepath / self.MARKER).exists()

    def _not_saved_error(self) -> DatasetError:
        hint = f" ({self.RUN_FIRST})" if self.RUN_FIRST else ""
        return DatasetError(
            f"No {self.KIND} has been saved at '{self._filepath}' yet: run the pipeline that trains it first{hint}."
        )

    def source(self) -> str:
        """What would be loaded: the saved folder if present, else the resolved spec."""
        if self._exists():
            return str(self._filepath)
        if self._model is None:
            raise self._not_saved_error()
        return resolve_model(self._model, allow_download=self._allow_download)

    def _save_folder(self, write: Callable[[Path], None]) -> None:
        """``write(folder)`` into a fresh folder that then replaces ``filepath`` atomically.

        The folder it replaces is kept as ``.<name>.previous`` beside it (one version back).
        """
        if self._filepath is None:
            raise DatasetError(f"This {type(self).__name__} has no 'filepath' to save to.")
        save_folder_atomically(self._filepath, write)
