"""The model folder dataset and the hub environment's configuration."""

import time

import pytest
from kedro.io import DatasetError

from qeu_kedro.datasets.hf_sequence_classifier import HFModelFolder, HFSequenceClassifierDataset
from qeu_kedro.models import ModelNotAvailableError
from tests.conftest import REPO, load_config


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
    config = BertConfig(vocab_size=6, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, num_labels=3)
    model = BertForSequenceClassification(config)
    ds = HFSequenceClassifierDataset(filepath=str(tmp_path / "clf"))
    with pytest.raises(DatasetError, match="'model' and 'tokenizer'"):
        ds.save(model)
    ds.save({"model": model, "tokenizer": tokenizer})
    loaded = ds.load()
    assert isinstance(loaded, HFModelFolder) and ds.exists()
    assert loaded.model().config.num_labels == 3
    assert loaded.tokenizer()("良い")["input_ids"] == tokenizer("良い")["input_ids"]


def test_hub_env_names_the_original_models_and_maps_their_labels():
    catalog = load_config(REPO, "hub")
    assert catalog["level1_model"]["model"] == "mr4/bert-base-jp-sentiment-analysis"
    assert catalog["level2_base_model"]["model"] == "tohoku-nlp/bert-base-japanese-v3"
    assert catalog["level1_model"]["allow_download"] and catalog["level2_base_model"]["allow_download"]
    params = load_config(REPO, "hub", "parameters")["jrte_sentiment"]
    base = load_config(REPO, None, "parameters")["jrte_sentiment"]
    assert params["level1"]["method"] == "pipeline" and base["level1"]["method"] == "embedding_zero_shot"
    assert params["training"]["prefix"] == "" and set(params) == set(base)
    assert set(params["level1"]["mapping"]["labels"].values()) == {"positive", "negative"}


@pytest.mark.parametrize("entry", ["level1_model", "level2_base_model"])
def test_hub_models_fail_at_once_offline_with_advice(entry, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = dict(load_config(REPO, "hub")[entry])
    config.pop("type")
    start = time.monotonic()
    with pytest.raises(DatasetError, match="no --env") as info:  # Kedro wraps the resolver's error
        HFSequenceClassifierDataset(**config).load()
    assert isinstance(info.value.__cause__, ModelNotAvailableError)
    assert config["model"] in str(info.value)
    assert time.monotonic() - start < 10


def test_jrte_env_reads_the_real_corpus_and_writes_apart():
    catalog = load_config(REPO, "jrte")
    assert catalog["pn"]["filepath"].endswith("/jrte/pn.tsv")
    assert catalog["level2_classifier"]["filepath"] == "data/06_models/jrte/jrte_sentiment/level2_classifier"
    assert load_config(REPO, "jrte", "parameters")["jrte_sentiment"]["training"]["epochs"] > 1


def test_level1_through_transformers_pipeline_on_a_local_2_class_model(tmp_path):
    """The hub env's Level 1 path (text-classification pipeline + mapping), on a tiny local model."""
    import pandas as pd
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from qeu_kedro.pipelines.jrte_sentiment.nodes import CLASSES, predict_level1

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "良", "い", "悪"]) + "\n")
    config = BertConfig(
        vocab_size=7, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
        id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    HFSequenceClassifierDataset(filepath=str(tmp_path / "clf")).save(
        {"model": BertForSequenceClassification(config), "tokenizer": BertTokenizerFast(vocab_file=str(vocab))}
    )
    folder = HFSequenceClassifierDataset(filepath=str(tmp_path / "clf")).load()
    test = pd.DataFrame(
        {"id": ["t1", "t2", "t3"], "text": ["良い", "悪い", "良"], "label_name": ["positive", "negative", "neutral"],
         "length": [2, 2, 1], "agreement": [1.0, 1.0, 2 / 3]}
    )
    params = load_config(REPO, "hub", "parameters")["jrte_sentiment"]["level1"]
    out = predict_level1(test, folder, params)
    assert out["id"].tolist() == ["t1", "t2", "t3"] and (out["split"] == "test").all()
    assert set(out["model_label"]) <= {"NEGATIVE", "POSITIVE"}
    assert set(out["predicted"]) <= set(CLASSES)
    # an untrained 2-class model is unsure: its scores sit near 0.5, inside the neutral band
    assert (out["predicted"] == "neutral").tolist() == (out["confidence"] < params["mapping"]["neutral_below"]).tolist()
    with pytest.raises(ValueError, match="level1.method"):
        predict_level1(test, folder, {**params, "method": "nope"})
