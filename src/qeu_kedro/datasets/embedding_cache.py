"""A Parquet table of text embeddings keyed by (model_key, sha256 of the text)."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset

from qeu_kedro.datasets._atomic import clean_stale_temporaries

logger = logging.getLogger(__name__)

COLUMNS = ("model_key", "text_sha256", "embedding")


def empty_cache() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})


class EmbeddingCacheDataset(AbstractDataset):
    """Embeddings already computed: ``model_key``, ``text_sha256``, ``embedding`` (float32 list).

    Loading a cache that does not exist yet gives an empty table (the first run); so does a
    cache that cannot be read (a corrupt or foreign file): it is reported, then rebuilt by the
    run's save. Saving replaces the file atomically, so an interrupted run leaves the previous
    cache intact (and a temporary file that the next save removes); the file gets the umask's mode.

    Args:
        filepath: the Parquet file.
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    def load(self) -> pd.DataFrame:
        if not self._filepath.exists():
            return empty_cache()
        try:
            table = pd.read_parquet(self._filepath)
        except Exception as err:  # noqa: BLE001 - any unreadable file: the cache is only an optimisation
            logger.warning(
                "Embedding cache %s cannot be read (%s: %s): ignoring it; this run rebuilds it.",
                self._filepath,
                type(err).__name__,
                err,
            )
            return empty_cache()
        missing = set(COLUMNS) - set(table.columns)
        if missing:
            logger.warning(
                "Embedding cache %s is not an embedding cache (missing %s): ignoring it; this run rebuilds it.",
                self._filepath,
                sorted(missing),
            )
            return empty_cache()
        return table[list(COLUMNS)]

    def save(self, data: pd.DataFrame) -> None:
        # written as .<name>.tmp-<pid>-<random> (the project's temporary files: a save killed before the rename
        # leaves one, which the next save removes) and created as any new file is, with the umask's mode
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temporaries(self._filepath)
        tmp = self._filepath.with_name(f".{self._filepath.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            data[list(COLUMNS)].to_parquet(tmp, index=False)
            os.replace(tmp, self._filepath)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _exists(self) -> bool:
        return self._filepath.exists()
