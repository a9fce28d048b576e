"""Nothing stale: interrupted saves cleaned, the replaced model kept, a corrupt cache rebuilt,
a stable model identity."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from qeu_kedro.datasets._atomic import clean_stale_temporaries, previous_version, save_folder_atomically
from qeu_kedro.datasets.embedding_cache import EmbeddingCacheDataset
from qeu_kedro.datasets.lazy_sentence_transformer import folder_identity
from qeu_kedro.models import resolve_model
from tests.datasets.test_model_folder import DemoDataset


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_folder_of_a_killed_save_is_removed_at_the_next_run(tmp_path, caplog):
    target = tmp_path / "models" / "bge_finetuned"
    stale = tmp_path / "models" / f".bge_finetuned.tmp-{dead_pid()}-abc"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    live = tmp_path / "models" / f".bge_finetuned.tmp-{os.getppid()}-xyz"  # a save still under way
    live.mkdir()
    with caplog.at_level(logging.WARNING):
        DemoDataset(filepath=str(target))  # the catalog builds its datasets at the start of a run
    assert not stale.exists() and live.exists()
    assert "Removed 1 temporary folder(s) of interrupted saves" in caplog.text
    assert clean_stale_temporaries(target) == []


def test_a_save_keeps_the_model_it_replaces(tmp_path):
    target = tmp_path / "bge_finetuned"
    dataset = DemoDataset(filepath=str(target))
    dataset.save(b"good")
    assert not previous_version(target).exists()
    dataset.save(b"newer")
    assert (target / "weights.bin").read_bytes() == b"newer"
    assert (previous_version(target) / "weights.bin").read_bytes() == b"good"
    dataset.save(b"newest")  # one version back only
    assert (previous_version(target) / "weights.bin").read_bytes() == b"newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".bge_finetuned.previous", "bge_finetuned"]


def test_a_failed_save_leaves_the_model_and_no_temp_folder(tmp_path):
    target = tmp_path / "m"
    save_folder_atomically(target, lambda d: (d / "w").write_text("v1"))

    def broken(folder):
        (folder / "w").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        save_folder_atomically(target, broken)
    assert (target / "w").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


@pytest.mark.parametrize("content", [b"not parquet at all", b"PAR1\x00\x00garbage"])
def test_a_corrupt_cache_is_reported_and_rebuilt(tmp_path, caplog, content):
    path = tmp_path / "embedding_cache.parquet"
    path.write_bytes(content)
    dataset = EmbeddingCacheDataset(str(path))
    with caplog.at_level(logging.WARNING):
        cache = dataset.load()
    assert cache.empty and list(cache.columns) == ["model_key", "text_sha256", "embedding"]
    assert "cannot be read" in caplog.text and "rebuilds it" in caplog.text
    rebuilt = pd.DataFrame({"model_key": ["k"], "text_sha256": ["h"], "embedding": [[0.5, 0.25]]})
    dataset.save(rebuilt)
    assert dataset.load()["text_sha256"].tolist() == ["h"]


def test_a_foreign_parquet_file_is_not_taken_for_a_cache(tmp_path, caplog):
    path = tmp_path / "embedding_cache.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(path)
    with caplog.at_level(logging.WARNING):
        assert EmbeddingCacheDataset(str(path)).load().empty
    assert "is not an embedding cache" in caplog.text


@pytest.fixture(scope="module")
def minilm_folder():
    return resolve_model("bundled:all-MiniLM-L6-v2")


def test_identity_ignores_the_model_card_and_library_versions(minilm_folder, tmp_path):
    copy = shutil.copytree(minilm_folder, tmp_path / "retrained")
    (copy / "README.md").write_text("Trained on 2026-11-25 at 17:03 in 312 s.")
    config = copy / "config_sentence_transformers.json"
    data = json.loads(config.read_text())
    data["__version__"] = {"sentence_transformers": "9.9.9", "transformers": "9.9.9", "pytorch": "9.9.9"}
    config.write_text(json.dumps(data, indent=4))
    assert folder_identity(copy) == folder_identity(minilm_folder)


def test_identity_follows_a_config_that_changes_outputs(minilm_folder, tmp_path):
    copy = shutil.copytree(minilm_folder, tmp_path / "other_pooling")
    pooling = copy / "1_Pooling" / "config.json"
    data = json.loads(pooling.read_text())
    data["pooling_mode_mean_tokens"], data["pooling_mode_cls_token"] = False, True
    pooling.write_text(json.dumps(data))
    assert folder_identity(copy) != folder_identity(minilm_folder)


def test_a_model_folder_that_is_a_link_is_replaced_where_it_points_save_after_save(tmp_path):
    """data/06_models/<model> linked to a bigger disk: the first save replaced the link with a folder in data/,
    the second failed after writing (rmtree refuses a link) and left the new model only in a temporary folder."""
    disk = tmp_path / "big" / "model"
    disk.mkdir(parents=True)
    (disk / "config.json").write_text("v0")
    link = tmp_path / "data" / "model"
    link.parent.mkdir()
    link.symlink_to(disk, target_is_directory=True)
    for version in ("v1", "v2"):
        save_folder_atomically(link, lambda folder, v=version: (folder / "config.json").write_text(v))
        assert link.is_symlink() and (link / "config.json").read_text() == version
    assert (disk / "config.json").read_text() == "v2"
    assert (previous_version(disk) / "config.json").read_text() == "v1"
    assert sorted(p.name for p in link.parent.iterdir()) == ["model"]  # nothing left beside the link


def test_a_saved_model_folder_has_the_mode_a_plain_mkdir_gives_and_keeps_a_shared_groups_bit(tmp_path):
    """mkdtemp made the folder 0o700; copying the parent's mode instead made it 0o777 under a /tmp-like parent."""
    import stat

    old = os.umask(0o022)
    try:
        for parent_mode, expected in ((0o755, 0o755), (0o1777, 0o755), (0o2775, 0o2755)):
            parent = tmp_path / f"models-{parent_mode:o}"
            parent.mkdir()
            parent.chmod(parent_mode)
            save_folder_atomically(parent / "m", lambda folder: (folder / "config.json").write_text("{}"))
            mode = (parent / "m").stat().st_mode
            assert mode & (0o777 | stat.S_ISGID) == expected, (oct(parent_mode), oct(mode))
    finally:
        os.umask(old)
