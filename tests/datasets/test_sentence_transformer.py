import numpy as np
import pytest
from kedro.io import DatasetError

from qeu_kedro.datasets import SentenceTransformerDataset
from qeu_kedro.datasets._atomic import save_folder_atomically


def test_save_folder_atomically_keeps_old_folder_when_writing_fails(tmp_path):
    target = tmp_path / "model"
    save_folder_atomically(target, lambda d: (d / "weights").write_text("v1"))

    def broken(d):
        (d / "weights").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_folder_atomically(target, broken)
    assert (target / "weights").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    save_folder_atomically(target, lambda d: (d / "weights").write_text("v2"))
    assert (target / "weights").read_text() == "v2"


def test_missing_trained_model_tells_which_pipeline_to_run(tmp_path):
    dataset = SentenceTransformerDataset(filepath=str(tmp_path / "bge_finetuned"))
    assert not dataset.exists()
    with pytest.raises(DatasetError, match="kedro run --pipelines bge_finetune"):
        dataset.load()


def test_needs_model_or_filepath():
    with pytest.raises(DatasetError):
        SentenceTransformerDataset()


def test_bundled_model_saves_and_reloads_identically(tmp_path):
    texts = ["A crew travels to a distant planet.", "Two strangers fall in love in Paris."]
    model = SentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2").load()
    before = model.encode(texts, normalize_embeddings=True)
    assert before.shape == (2, 384)

    saved = SentenceTransformerDataset(filepath=str(tmp_path / "copy"))
    saved.save(model)
    assert saved.exists()
    after = saved.load().encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(before, after, atol=1e-6)
