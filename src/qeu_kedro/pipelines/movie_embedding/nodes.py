"""Nodes of the ``movie_embedding`` pipeline.

Embeddings are cached by (model identity, load arguments and encode settings, sha256 of the
text): a re-run with unchanged inputs encodes nothing and, with a lazily loaded model, never loads it.

A cached vector was encoded in other batches than a fresh run would use, and a text's vector
depends slightly on the texts that share its batch (padding, batched matrix products): a run
that reuses the cache agrees with a fresh run to float32 rounding, not bit for bit (max
abs. difference 2.1e-7 on the sample's 240 movies with all-MiniLM-L6-v2, length buckets;
``test_cache.py::test_cached_vectors_agree_with_a_fresh_run_to_float32_rounding``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import numpy as np
import pandas as pd

from qeu_kedro.batching import length_sorted_batches
from qeu_kedro.datasets.embedding_cache import empty_cache
from qeu_kedro.datasets.lazy_sentence_transformer import (
    LazySentenceTransformer,
    as_sentence_transformer,
    weights_identity,
)
from qeu_kedro.models import warn_truncated

logger = logging.getLogger(__name__)


def _encoder_params(params: dict[str, Any]) -> dict[str, Any]:
    encoder = params["encoder"]
    if encoder["batching"] not in ("fixed", "length_buckets"):
        raise ValueError(
            f"parameters_movie_embedding.yml: encoder.batching is {encoder['batching']!r}; "
            "use 'fixed' or 'length_buckets'."
        )
    if encoder["quantize"] not in ("none", "int8"):
        raise ValueError(
            f"parameters_movie_embedding.yml: encoder.quantize is {encoder['quantize']!r}; use 'none' or 'int8'."
        )
    return encoder


def model_identity(embedding_model: Any) -> str:
    """What the embeddings depend on in the model: a lazy model's folder hash, else its loaded weights."""
    identity = getattr(embedding_model, "identity", None)
    return identity if isinstance(identity, str) else weights_identity(embedding_model)


#: Load arguments of the model dataset that do not change the vectors (where the model runs).
NOT_KEY_LOAD_ARGS = frozenset({"device"})
#: What changes a loaded ``SentenceTransformer``'s vectors besides its weights (set by its load arguments).
ENCODE_ATTRIBUTES = ("truncate_dim", "prompts", "default_prompt_name")


def model_settings(embedding_model: Any) -> dict[str, Any]:
    """What besides the weights the vectors depend on: a model handle's load arguments but ``device``
    (``truncate_dim``, ``prompts``, ``default_prompt_name``, ``model_kwargs``...), else, for a
    ``SentenceTransformer`` given as it is, its :data:`ENCODE_ATTRIBUTES`."""
    load_args = getattr(embedding_model, "load_args", None)
    if isinstance(load_args, dict):
        return {k: v for k, v in load_args.items() if k not in NOT_KEY_LOAD_ARGS}
    return {name: getattr(embedding_model, name, None) for name in ENCODE_ATTRIBUTES}


def cache_key(embedding_model: Any, params: dict[str, Any]) -> str:
    """Key of this model, its load arguments and the settings that change the vectors.

    Not the batch size or batching: they change the vectors only by float32 rounding (see the
    module's docstring), and a cached vector is reused whichever batch encoded it.
    """
    encoder = _encoder_params(params)
    settings = {
        "model": model_identity(embedding_model),
        "normalize_embeddings": bool(params["normalize_embeddings"]),
        "quantize": encoder["quantize"],
    }
    if model_args := model_settings(embedding_model):  # absent for none: keys of earlier caches stay valid
        settings["model_args"] = model_args
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _quantized(model: Any) -> Any:
    """A copy whose transformer ``Linear`` layers use int8 weights (torch dynamic quantisation)."""
    import copy
    import warnings

    import torch

    quantized = copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.ao.quantization is being moved to torchao
        for module in quantized.modules():
            if hasattr(module, "model") and isinstance(module.model, torch.nn.Module):
                module.model = torch.ao.quantization.quantize_dynamic(
                    module.model, {torch.nn.Linear}, dtype=torch.qint8
                )
    return quantized


def encode_texts(model: Any, texts: list[str], params: dict[str, Any]) -> np.ndarray:
    """Embed ``texts`` (float32), in fixed batches or in batches of similar token length.

    Texts longer than the model's ``max_seq_length`` are truncated by the model; how many is logged as a warning.
    """
    warn_truncated(model, texts)
    encoder = _encoder_params(params)
    if encoder["quantize"] == "int8":
        model = _quantized(model)
    kwargs = {"normalize_embeddings": params["normalize_embeddings"], "convert_to_numpy": True}
    if encoder["batching"] == "fixed":
        vectors = model.encode(
            texts, batch_size=params["batch_size"], show_progress_bar=params["show_progress_bar"], **kwargs
        )
        return np.asarray(vectors, dtype=np.float32)
    from tqdm.auto import tqdm

    tokens = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]
    # a fixed batch of 256 pads short titles to the longest overview in it
    batches = length_sorted_batches([len(t) for t in tokens], params["batch_size"], encoder["max_tokens_per_batch"])
    out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    for batch in tqdm(batches, desc="Encoding (length buckets)", disable=not params["show_progress_bar"]):
        out[batch] = model.encode([texts[i] for i in batch], batch_size=len(batch), show_progress_bar=False, **kwargs)
    return out


def embed_movies(
    movies: pd.DataFrame, embedding_model: Any, embedding_cache: pd.DataFrame | None, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Embed every text column in ``params["text_columns"]`` for each movie, encoding only uncached texts.

    Args:
        movies: movies with ``movie_id`` and the text columns (``match_overviews``'s table).
        embedding_model: a ``SentenceTransformer``, or a lazy one (loaded only if a text is not cached).
        embedding_cache: earlier embeddings (``model_key``, ``text_sha256``, ``embedding``), or None.
        params: ``text_columns``, ``batch_size``, ``normalize_embeddings``, ``show_progress_bar``,
            ``use_cache``, ``encoder`` (``batching``, ``max_tokens_per_batch``, ``quantize``,
            ``text_partitions``: above 0, uncached texts are encoded in that many partitions on
            the active Dask scheduler, the model loaded once per worker; needs a lazy model).

    Returns:
        One row per movie: ``movie_id`` then ``<column>_embedding_<i>`` float32 columns; and the
        updated cache (this model's entries only: a changed model starts a new cache).
    """
    use_cache = params["use_cache"] and embedding_cache is not None
    key = cache_key(embedding_model, params)
    known: dict[str, np.ndarray] = {}
    if use_cache:
        mine = embedding_cache[embedding_cache["model_key"] == key]
        known = dict(zip(mine["text_sha256"], mine["embedding"], strict=True))
        if len(mine) < len(embedding_cache):
            logger.info("Embedding cache: dropping %d entries of other models", len(embedding_cache) - len(mine))
    texts = {text_hash(t): t for column in params["text_columns"] for t in movies[column].tolist()}
    missing = [h for h in texts if h not in known]
    logger.info(
        "Embedding cache (key %s…): %d of %d distinct texts cached, encoding %d",
        key[:12],
        len(texts) - len(missing),
        len(texts),
        len(missing),
    )
    if missing:
        partitions = int(_encoder_params(params)["text_partitions"])
        if partitions > 0 and isinstance(embedding_model, LazySentenceTransformer):
            from .workers import encode_on_workers

            # the workers load the model from its source; this process never does
            vectors = encode_on_workers(
                embedding_model.source,
                embedding_model.identity,  # the key's: a model saved again at the same path is loaded anew
                embedding_model.load_args,
                [texts[h] for h in missing],
                params,
                partitions,
            )
        else:
            vectors = encode_texts(as_sentence_transformer(embedding_model), [texts[h] for h in missing], params)
        known.update(zip(missing, vectors, strict=True))

    blocks = [movies[["movie_id"]].reset_index(drop=True)]
    for column in params["text_columns"]:
        vectors = np.stack([np.asarray(known[text_hash(t)], dtype=np.float32) for t in movies[column].tolist()])
        names = [f"{column}_embedding_{i}" for i in range(vectors.shape[1])]
        blocks.append(pd.DataFrame(vectors, columns=names))
    embeddings = pd.concat(blocks, axis=1)
    logger.info("Embedded %d movies into %d features", len(embeddings), embeddings.shape[1] - 1)
    cache = embedding_cache if embedding_cache is not None else empty_cache()  # untouched when not used
    if use_cache:
        cache = pd.DataFrame(
            {
                "model_key": key,
                "text_sha256": list(known),
                "embedding": [np.asarray(v, np.float32) for v in known.values()],
            }
        )
    return embeddings, cache
