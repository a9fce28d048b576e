"""HFSequenceClassifierDataset: a transformers model folder (tokenizer + model) through the catalog."""

import pytest
from kedro.io import DatasetError

from qeu_kedro.datasets.hf_sequence_classifier import HFModelFolder, HFSequenceClassifierDataset


def test_needs_a_model_or_a_filepath():
    with pytest.raises(DatasetError, match="'model' or 'filepath'"):
        HFSequenceClassifierDataset()


def test_unsaved_classifier_says_to_run_the_pipeline(tmp_path):
    ds = HFSequenceClassifierDataset(filepath=str(tmp_path / "clf"))
    assert not ds.exists()
    with pytest.raises(DatasetError, match="run the pipeline"):
        ds.load()


def test_save_and_load_a_classifier(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "良", "い"]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    config = BertConfig(
        vocab_size=6, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, num_labels=3
    )
    model = BertForSequenceClassification(config)
    ds = HFSequenceClassifierDataset(filepath=str(tmp_path / "clf"))
    with pytest.raises(DatasetError, match="'model' and 'tokenizer'"):
        ds.save(model)
    ds.save({"model": model, "tokenizer": tokenizer})
    loaded = ds.load()
    assert isinstance(loaded, HFModelFolder) and ds.exists()
    assert loaded.model().config.num_labels == 3
    assert loaded.tokenizer()("良い")["input_ids"] == tokenizer("良い")["input_ids"]
