"""Encoding on Dask workers: texts in partitions, the model loaded once per worker process.

A task carries the model's source (a folder) and load arguments, never the model: each worker
process loads it at its first partition and keeps it for the next ones (and the next runs
of a long-lived cluster). Without a ``distributed`` client the partitions run on Dask's
threaded scheduler in this process, which loads the model once as well.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_MODELS: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()
LOADS: Counter = Counter()  # loads per (source, load arguments) in this process: what "once per worker" means


def worker_model(source: str, load_args: dict[str, Any]) -> Any:
    """The ``SentenceTransformer`` at ``source``, loaded at the first call in this process."""
    key = (source, json.dumps(load_args, sort_keys=True))
    with _LOCK:  # threads of one worker share the process: one load
        if key not in _MODELS:
            from sentence_transformers import SentenceTransformer

            _MODELS[key] = SentenceTransformer(source, **load_args)
            LOADS[key] += 1
        return _MODELS[key]


def encode_partition(source: str, load_args: dict[str, Any], texts: list[str], params: dict[str, Any]) -> np.ndarray:
    """One partition's vectors, with this worker's copy of the model."""
    from .nodes import encode_texts

    return encode_texts(worker_model(source, load_args), texts, params)


def encode_on_workers(
    source: str, load_args: dict[str, Any], texts: list[str], params: dict[str, Any], partitions: int
) -> np.ndarray:
    """``texts`` cut into ``partitions`` and encoded on the active Dask scheduler, in order."""
    import dask
    from dask import delayed

    chunks = [list(c) for c in np.array_split(np.asarray(texts, dtype=object), min(partitions, len(texts))) if len(c)]
    logger.info("Encoding %d texts in %d partitions on Dask", len(texts), len(chunks))
    parts = dask.compute(*[delayed(encode_partition, pure=True)(source, load_args, c, params) for c in chunks])
    return np.concatenate(parts, axis=0).astype(np.float32)
