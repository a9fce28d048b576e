"""HFSequenceClassifierDataset: a transformers model folder (tokenizer + model) through the catalog."""

import pytest
from kedro.io import DatasetError

from qeu_kedro.datasets import ModelHandle
from qeu_kedro.datasets.hf_sequence_classifier import HFSequenceClassifierDataset


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
    with pytest.raises(DatasetError, match="saves a ModelHandle, not BertForSequenceClassification"):
        ds.save(model)
    ds.save(ModelHandle("a test classifier", model=model, tokenizer=tokenizer))
    loaded = ds.load()
    assert isinstance(loaded, ModelHandle) and ds.exists() and not loaded.loaded  # nothing read until used
    assert type(loaded.model).__name__ == "BertForSequenceClassification" and loaded.model.config.num_labels == 3
    assert loaded.tokenizer("良い")["input_ids"] == tokenizer("良い")["input_ids"]
    # a node that builds another model on the same weights (here the encoder without the head)
    encoder = loaded.from_pretrained("AutoModel")
    assert type(encoder).__name__ == "BertModel" and encoder.config.hidden_size == 8
