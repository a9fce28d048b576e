"""A sentence-transformers model that is loaded only when it is used, with a cheap identity.

``movie_embedding`` keeps an embedding cache keyed by the model's identity; with this
dataset (the default type of ``base.embedding_model`` and ``finetuned.embedding_model``)
a re-run whose texts are all cached reads no model and never imports torch. Nodes that
need the model itself call :func:`as_sentence_transformer` on what they are given.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Any

from kedro.io import DatasetError

from qeu_kedro.datasets._model_folder import ModelHandle
from qeu_kedro.datasets.sentence_transformer import SentenceTransformerDataset

_CHUNK = 1 << 20


#: Files of a model folder that describe it without changing its outputs: the model card (which
#: records the training time), the training data's description.
NOT_IDENTITY = frozenset({"README.md", "data_config.json", "training_args.bin"})
#: Keys of JSON configs that record when or with what the folder was written, not what it computes.
VOLATILE_KEYS = frozenset({"__version__"})


def _identity_bytes(path: Path) -> bytes:
    """The bytes of one file that count for the identity: JSON configs without their volatile keys."""
    data = path.read_bytes()
    if path.suffix == ".json":
        import json

        try:
            config = json.loads(data)
        except ValueError:
            return data
        if isinstance(config, dict) and VOLATILE_KEYS & set(config):
            stable = {k: v for k, v in config.items() if k not in VOLATILE_KEYS}
            return json.dumps(stable, sort_keys=True).encode()
    return data


def folder_identity(folder: str | Path) -> str:
    """sha256 over the files of a model folder that change its outputs (relative path and content).

    Weights, tokenizer and module configs count; the model card (``README.md``, which records
    the training time), other ``.md`` files, hidden files and the library versions recorded in
    ``config_sentence_transformers.json`` do not: a bit-identical retrained model keeps its identity.
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.name not in NOT_IDENTITY and p.suffix != ".md"
    )
    if not files:
        raise DatasetError(f"Model folder '{folder}' holds no files.")
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        if path.suffix == ".json":
            digest.update(_identity_bytes(path))
        else:
            with path.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def weights_identity(model: Any) -> str:
    """sha256 of a loaded model: each module's class, configuration and weights, and the vocabulary."""
    import json

    import torch

    digest = hashlib.sha256()
    for name, module in model.named_children():
        config = module.get_config_dict() if hasattr(module, "get_config_dict") else {}
        digest.update(f"{name}:{type(module).__name__}:{json.dumps(config, sort_keys=True, default=str)}".encode())
        for key, tensor in module.state_dict().items():
            flat = tensor.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None and hasattr(tokenizer, "get_vocab"):
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    digest.update(f"max_seq_length={getattr(model, 'max_seq_length', None)}".encode())
    return digest.hexdigest()


class LazySentenceTransformer(ModelHandle):
    """A :class:`~qeu_kedro.datasets.ModelHandle` whose ``model`` is a ``SentenceTransformer`` at ``source``,
    loaded at the first ``model`` / ``load()`` / ``encode()``; ``identity`` needs no loading for a folder."""

    def __init__(self, source: str, load_args: dict[str, Any] | None = None, *, model: Any = None) -> None:
        super().__init__(source, model=model, load_args=load_args)

    @cached_property
    def identity(self) -> str:
        """Content hash of the model folder; for a hub id (no folder), of the loaded weights."""
        folder = Path(self.source)
        if folder.is_dir():
            return folder_identity(folder)
        return weights_identity(self.load())

    def _load_model(self) -> Any:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(self.source, **self._load_args)

    def _load_tokenizer(self) -> Any:
        return self.model.tokenizer

    def load(self) -> Any:
        """The ``SentenceTransformer`` (loaded now if it was not)."""
        return self.model

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        return self.model.encode(*args, **kwargs)

    def save(self, path: str) -> None:
        self.model.save(path)


def as_sentence_transformer(model: Any) -> Any:
    """The ``SentenceTransformer`` itself: a :class:`LazySentenceTransformer`'s (loaded now), anything else as it is.

    Nodes call it on a model input, so they work with the lazy dataset of the shipped catalog
    and with an eager ``SentenceTransformerDataset`` (or a model passed in a test) alike.
    """
    return model.load() if isinstance(model, LazySentenceTransformer) else model


class LazySentenceTransformerDataset(SentenceTransformerDataset):
    """Like :class:`SentenceTransformerDataset`, but ``load`` returns a :class:`LazySentenceTransformer`.

    Same arguments as :class:`SentenceTransformerDataset`, and the type of the shipped
    ``*.embedding_model`` entries (``movie_embedding`` needs the model only for uncached texts)::

        base.embedding_model:
          type: qeu_kedro.datasets.LazySentenceTransformerDataset
          model: bundled:all-MiniLM-L6-v2

    Saving accepts a ``SentenceTransformer`` or a lazy one (``bge_finetune`` saves the trained model).
    """

    def load(self) -> LazySentenceTransformer:
        return LazySentenceTransformer(self.source(), dict(self._load_args))
