"""Encoding on Dask workers: texts in partitions, the model loaded once per worker process.

A task carries the model's source (a folder), its identity (what the embedding cache key holds:
the folder's content hash) and load arguments, never the model: each worker process loads it at
its first partition and keeps it for the next ones (and the next runs of a long-lived cluster)
under that identity, so a model saved again at the same path (``bge_finetune``) is loaded anew.
Without a ``distributed`` client the partitions run on Dask's threaded scheduler in this process,
which loads the model once as well.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_MODELS: dict[tuple[str, str, str], Any] = {}
_LOCK = threading.Lock()
LOADS: Counter = Counter()  # loads per (source, identity, load arguments) in this process: "once per worker"


def worker_model(source: str, identity: str, load_args: dict[str, Any]) -> Any:
    """The ``SentenceTransformer`` at ``source`` whose identity is ``identity``, loaded at the first call
    in this process with that identity; a model of another identity at ``source`` is dropped then.

    Raises:
        RuntimeError: ``source`` is a folder whose content is not the model ``identity`` names (it was
            saved again since the key was computed, or this worker sees another copy at that path).
    """
    args = json.dumps(load_args, sort_keys=True, default=str)
    key = (source, identity, args)
    with _LOCK:  # threads of one worker share the process: one load
        if key not in _MODELS:
            from sentence_transformers import SentenceTransformer

            from qeu_kedro.datasets.lazy_sentence_transformer import folder_identity

            if Path(source).is_dir() and (found := folder_identity(source)) != identity:
                raise RuntimeError(
                    f"The model folder '{source}' holds model {found[:12]}…, not {identity[:12]}… that the "
                    "embedding cache key names: it was saved again during the run, or this Dask worker "
                    "sees another copy at that path. Run again once the model is written (and the same everywhere)."
                )
            for earlier in [k for k in _MODELS if k[0] == source and k[2] == args]:
                del _MODELS[earlier]  # an earlier model at the same path: not asked for again
            _MODELS[key] = SentenceTransformer(source, **load_args)
            LOADS[key] += 1
        return _MODELS[key]


def encode_partition(
    source: str, identity: str, load_args: dict[str, Any], texts: list[str], params: dict[str, Any]
) -> np.ndarray:
    """One partition's vectors, with this worker's copy of the model."""
    from .nodes import encode_texts

    return encode_texts(worker_model(source, identity, load_args), texts, params)


def encode_on_workers(
    source: str, identity: str, load_args: dict[str, Any], texts: list[str], params: dict[str, Any], partitions: int
) -> np.ndarray:
    """``texts`` cut into ``partitions`` and encoded on the active Dask scheduler, in order.

    ``identity`` is the model's (:func:`~qeu_kedro.pipelines.movie_embedding.nodes.model_identity`):
    workers keep their loaded model under it.
    """
    import dask
    from dask import delayed

    chunks = [list(c) for c in np.array_split(np.asarray(texts, dtype=object), min(partitions, len(texts))) if len(c)]
    logger.info("Encoding %d texts in %d partitions on Dask", len(texts), len(chunks))
    tasks = [delayed(encode_partition, pure=True)(source, identity, load_args, c, params) for c in chunks]
    parts = dask.compute(*tasks)
    return np.concatenate(parts, axis=0).astype(np.float32)
