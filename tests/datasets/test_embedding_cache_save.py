"""The embedding cache's save: the umask's file mode (not mkstemp's 0600), and the temporary file of a save
killed mid-write named as the project's others (.<name>.tmp-<pid>-<hex>), so the next save removes it."""

import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd

from qeu_kedro.datasets.embedding_cache import EmbeddingCacheDataset

DATA = pd.DataFrame({"model_key": ["k"], "text_sha256": ["h"], "embedding": [np.zeros(3, np.float32)]})


def test_the_cache_file_gets_the_umask_mode(tmp_path):
    path = tmp_path / "embedding_cache.parquet"
    old = os.umask(0o022)
    try:
        EmbeddingCacheDataset(str(path)).save(DATA)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_the_temporary_file_of_a_killed_save_is_removed_by_the_next_save(tmp_path):
    path = tmp_path / "embedding_cache.parquet"
    killed = textwrap.dedent(
        f"""
        import os, numpy as np, pandas as pd
        from qeu_kedro.datasets.embedding_cache import EmbeddingCacheDataset
        def die(self, target, *args, **kwargs):
            open(target, "wb").write(b"PAR1 half")  # killed in the middle of writing
            os._exit(9)
        pd.DataFrame.to_parquet = die
        EmbeddingCacheDataset({str(path)!r}).save(
            pd.DataFrame({{"model_key": ["k"], "text_sha256": ["h"], "embedding": [np.zeros(3, np.float32)]}}))
        """
    )
    subprocess.run([sys.executable, "-c", killed], check=False, env={**os.environ})
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".embedding_cache.parquet.tmp-"), left
    EmbeddingCacheDataset(str(path)).save(DATA)
    assert [p.name for p in tmp_path.iterdir()] == ["embedding_cache.parquet"]
    assert EmbeddingCacheDataset(str(path)).load()["model_key"].tolist() == ["k"]
