"""The environments of jrte_sentiment (hub, jrte) and the hub env's Level 1 path on a tiny local model."""

import time

import pandas as pd
import pytest
from kedro.io import DatasetError

from qeu_kedro.datasets import ModelHandle
from qeu_kedro.datasets.hf_sequence_classifier import HFSequenceClassifierDataset
from qeu_kedro.models import ModelNotAvailableError
from tests.conftest import REPO, load_config

TASK = load_config(REPO, None, "parameters")["jrte_sentiment"]["task"]


def test_hub_env_names_the_original_models_and_maps_their_labels():
    catalog = load_config(REPO, "hub")
    assert catalog["jrte_sentiment.level1_model"]["model"] == "mr4/bert-base-jp-sentiment-analysis"
    assert catalog["jrte_sentiment.level2_base_model"]["model"] == "tohoku-nlp/bert-base-japanese-v3"
    assert (
        catalog["jrte_sentiment.level1_model"]["allow_download"]
        and catalog["jrte_sentiment.level2_base_model"]["allow_download"]
    )
    params = load_config(REPO, "hub", "parameters")["jrte_sentiment"]
    base = load_config(REPO, None, "parameters")["jrte_sentiment"]
    assert params["level1"]["method"] == "pipeline" and base["level1"]["method"] == "embedding_zero_shot"
    assert params["training"]["prefix"] == "" and set(params) == set(base)
    assert set(params["level1"]["mapping"]["labels"].values()) == {"positive", "negative"}
    # layered: what the hub env does not state comes from base
    assert (
        params["training"]["trainer"]["per_device_train_batch_size"]
        == base["training"]["trainer"]["per_device_train_batch_size"]
    )
    assert params["training"]["trainer"]["learning_rate"] == 3.0e-5


@pytest.mark.parametrize("entry", ["jrte_sentiment.level1_model", "jrte_sentiment.level2_base_model"])
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
    assert catalog["jrte_sentiment.pn"]["filepath"].endswith("/jrte/pn.tsv")
    assert (
        catalog["jrte_sentiment.level2.classifier"]["filepath"]
        == "data/06_models/jrte/jrte_sentiment/level2_classifier"
    )
    params = load_config(REPO, "jrte", "parameters")["jrte_sentiment"]
    assert params["training"]["trainer"]["num_train_epochs"] > 1
    assert params["baseline"]["trainer"]["num_train_epochs"] >= 5  # long enough for the validation loss to turn up


def test_level1_through_transformers_pipeline_on_a_local_2_class_model(tmp_path):
    """The hub env's Level 1 path (text-classification pipeline + mapping), on a tiny local model."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from qeu_kedro.pipelines.jrte_sentiment.model import predict_level1

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "良", "い", "悪"]) + "\n")
    config = BertConfig(
        vocab_size=7,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    HFSequenceClassifierDataset(filepath=str(tmp_path / "clf")).save(
        ModelHandle(
            "tiny BERT", model=BertForSequenceClassification(config), tokenizer=BertTokenizerFast(vocab_file=str(vocab))
        )
    )
    folder = HFSequenceClassifierDataset(filepath=str(tmp_path / "clf")).load()
    test = pd.DataFrame(
        {
            "id": ["t1", "t2", "t3"],
            "text": ["良い", "悪い", "良"],
            "label_name": ["positive", "negative", "normal"],
            "length": [2, 2, 1],
            "agreement": [1.0, 1.0, 2 / 3],
        }
    )
    params = load_config(REPO, "hub", "parameters")["jrte_sentiment"]["level1"]
    out = predict_level1(test, folder, params, TASK)
    assert out["id"].tolist() == ["t1", "t2", "t3"] and (out["split"] == "test").all()
    assert set(out["model_label"]) <= {"NEGATIVE", "POSITIVE"}
    assert set(out["predicted"]) <= {"negative", "normal", "positive"}
    # an untrained 2-class model is unsure: its scores sit near 0.5, inside the neutral band
    assert (out["predicted"] == "normal").tolist() == (out["confidence"] < params["mapping"]["unsure_below"]).tolist()
    with pytest.raises(ValueError, match="level1.method"):
        predict_level1(test, folder, {**params, "method": "nope"}, TASK)


@pytest.mark.parametrize(
    "entry", ["jrte_sentiment.{run}.predictions", "jrte_sentiment.seed_ensemble.member_predictions"]
)
def test_predictions_are_read_back_as_written(entry, tmp_path):
    """A prediction table goes to CSV between nodes. Class names, ids and texts that look like numbers or
    like pandas' NA words ("1", "1000", "NA") must come back as the same text; read back as numbers,
    every sentence fell outside the configured classes and macro-F1 dropped to 0 with no error."""
    from kedro.io import DataCatalog

    from qeu_kedro.pipelines.jrte_sentiment.report import classification_metrics

    config = dict(load_config(REPO)[entry], filepath=str(tmp_path / "predictions.csv"))
    name = entry.replace("{run}", "level2")
    catalog = DataCatalog.from_config({name: config})
    task = {"corpus": "stars", "classes": [{"value": v, "name": n} for v, n in ((1, "1"), (2, "2"), (3, "NA"))]}
    names = ["1", "2", "NA"]
    rows = 30
    written = pd.DataFrame(
        {
            "split": ["test"] * rows,
            "id": [str(1000 + i) for i in range(rows)],
            "text": ["None" if i % 7 == 0 else str(i) for i in range(rows)],
            "true": [names[i % 3] for i in range(rows)],
            "predicted": [names[i % 3] if i % 5 else names[(i + 1) % 3] for i in range(rows)],
            "confidence": [0.9] * rows,
        }
    )
    catalog.save(name, written)
    loaded = catalog.load(name)
    pd.testing.assert_frame_equal(
        loaded.astype({c: object for c in ("split", "id", "text", "true", "predicted")}),
        written.astype({c: object for c in ("split", "id", "text", "true", "predicted")}),
    )
    stats = {"n_resamples": 50, "confidence": 0.95, "seed": 0}
    assert classification_metrics(loaded, task, stats)["macro_f1"] == pytest.approx(
        classification_metrics(written, task, stats)["macro_f1"]
    )
    assert classification_metrics(loaded, task, stats)["macro_f1"] > 0.5
