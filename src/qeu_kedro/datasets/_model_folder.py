"""What every model entry of the catalog loads (:class:`ModelHandle`), and the base of the entries
that are a model folder (:class:`ModelFolderDataset`: saved at ``filepath``, else named by a spec)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from kedro.io import AbstractDataset, DatasetError

from qeu_kedro.datasets._atomic import clean_stale_temporaries, save_folder_atomically
from qeu_kedro.models import ModelNotAvailableError, resolve_model


class ModelHandle:
    """A model and its tokenizer, and where they come from: the one type the project's model datasets
    load and the nodes pass on.

    ``source`` is the model's folder or spec, or a description such as ``"<base> + LoRA"`` (for logs,
    reports and MLflow tags). ``model`` and ``tokenizer`` are loaded from ``source`` the first time
    they are used, unless they were given (a model a node has just trained, or one a dataset loaded
    with its adapter). A node that builds a new head on the same weights (a classifier with its own
    labels) calls :meth:`from_pretrained`. :class:`~qeu_kedro.datasets.LazySentenceTransformer`
    loads its model with sentence-transformers instead; nothing here imports torch.

    Args:
        source: a model folder or spec, or what the given model is.
        model: the loaded model, if it is one already.
        tokenizer: its tokenizer, if loaded.
        load_args: keyword arguments for every ``from_pretrained``.
        auto_class: the transformers auto class that ``model`` is loaded with.
    """

    def __init__(
        self,
        source: str,
        *,
        model: Any = None,
        tokenizer: Any = None,
        load_args: dict[str, Any] | None = None,
        auto_class: str = "AutoModel",
    ) -> None:
        self.source = source
        self._model = model
        self._tokenizer = tokenizer
        self._load_args = dict(load_args or {})
        self.auto_class = auto_class

    @property
    def load_args(self) -> dict[str, Any]:
        return dict(self._load_args)

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded (or was given)."""
        return self._model is not None

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = self._load_model()
        return self._model

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = self._load_tokenizer()
        return self._tokenizer

    def from_pretrained(self, auto_class: str | None = None, **kwargs: Any) -> Any:
        """A fresh ``transformers.<auto_class>.from_pretrained(source, **load_args, **kwargs)`` (``source``: a folder)."""
        import transformers

        cls = getattr(transformers, auto_class or self.auto_class)
        return cls.from_pretrained(self.source, **{**self._load_args, **kwargs})

    def _load_model(self) -> Any:
        return self.from_pretrained()

    def _load_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.source, **self._load_args)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r}, loaded={self.loaded})"


class ModelFolderDataset(AbstractDataset):
    """A model folder saved to ``filepath``, or else the model spec ``model`` resolved.

    Subclasses set the class attributes and write ``load`` (a :class:`ModelHandle` on
    :meth:`source`) and ``save`` (through :meth:`_save_folder`); nothing here imports torch.

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
    #: How to produce the folder, e.g. ``kedro run --pipelines alpaca_sft`` ("" for no hint).
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

    def has_model(self) -> bool:
        """Whether there is a model to load: one saved in the folder, or a ``model:`` to load instead (which
        may still need a download). False before the pipeline that trains it has run."""
        return self._exists() or self._model is not None

    def spec_to_resolve(self) -> str | None:
        """The model spec a load resolves (:func:`~qeu_kedro.models.resolve_model`), or None: the saved folder is
        loaded alone, or there is nothing to load. A run asks it before its first node (a hub model offline)."""
        return None if self._exists() else self._model

    def _not_saved_error(self) -> DatasetError:
        # the folder is the environment's (data/06_models/<env prefix>/...): the same --env trains it there
        hint = f" ({self.RUN_FIRST}, with the same --env as this run)" if self.RUN_FIRST else ""
        return DatasetError(
            f"No {self.KIND} has been saved at '{self._filepath}' yet: run the pipeline that trains it first{hint}."
        )

    def source(self) -> str:
        """What would be loaded: the saved folder if present, else the resolved spec."""
        if self._exists():
            return str(self._filepath)
        if not self.has_model():
            raise self._not_saved_error()
        return resolve_model(self._model, allow_download=self._allow_download)

    def offline_source(self) -> str | None:
        """The folder :meth:`source` would load where it is on this machine without a download (a bundled model
        converted into the model cache first, once); None where it is not (a hub model not in the cache)."""
        if self._exists():
            return str(self._filepath)
        if self._model is None:
            return None
        try:
            found = resolve_model(self._model, allow_download=False)
        except ModelNotAvailableError:
            return None
        return found if Path(found).is_dir() else None

    def _save_folder(self, write: Callable[[Path], None]) -> None:
        """``write(folder)`` into a fresh folder that then replaces ``filepath`` atomically.

        The folder it replaces is kept as ``.<name>.previous`` beside it (one version back).
        """
        if self._filepath is None:
            raise DatasetError(f"This {type(self).__name__} has no 'filepath' to save to.")
        save_folder_atomically(self._filepath, write)
