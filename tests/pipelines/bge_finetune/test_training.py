"""Fine-tuning on tiny data with the bundled all-MiniLM-L6-v2: loss, save/reload, triplets, seeds."""

import numpy as np
import pytest

from qeu_kedro.datasets import LazySentenceTransformerDataset, SentenceTransformerDataset
from qeu_kedro.datasets.lazy_sentence_transformer import LazySentenceTransformer
from qeu_kedro.pipelines.bge_finetune.nodes import (
    build_retrieval_task,
    evaluate_retrieval,
    fine_tune,
    make_pairs,
    prepare_training_set,
    split_pairs,
)
from qeu_kedro.sample_data.pairs import make_pairs as make_sample_pairs
from tests.pipelines.bge_finetune.test_nodes import params

pytestmark = pytest.mark.slow

TRAINING = {
    "epochs": 1, "max_steps": 2, "batch_size": 8, "learning_rate": 5e-5, "warmup": 0,
    "lr_scheduler_type": "constant", "weight_decay": 0.0, "logging_steps": 1, "seed": 0,
}
HARD = {"use_negative_column": True, "mine": False, "range_min": 0, "range_max": 10,
        "relative_margin": 0.05, "sampling_strategy": "top", "batch_size": 32}


def base_model():
    """What the shipped catalog gives the nodes: a lazy model (the nodes load it)."""
    model = LazySentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2").load()
    assert isinstance(model, LazySentenceTransformer) and not model.loaded
    return model


def eager_model():
    return SentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2").load()


def tiny_pairs(n=48, seed=5):
    return make_pairs(make_sample_pairs(n_pairs=n, seed=seed), params())


def p(**training):
    return params(training={**TRAINING, **training}, hard_negatives=dict(HARD), matryoshka_dims=[384, 64])


def test_training_lowers_the_loss_and_the_saved_model_reloads_with_the_same_embeddings(tmp_path):
    train_set = prepare_training_set(tiny_pairs(24), None, p())
    # 3 batches of 8 per epoch, 3 epochs: the same pairs again, so the loss must fall
    model, log = fine_tune(base_model(), train_set, p(epochs=3, max_steps=None, learning_rate=1e-4))
    losses = [h["loss"] for h in log["loss_history"]]
    assert log["steps"] == 9 and len(losses) == 9
    assert log["matryoshka_dims"] == [384, 64]
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses

    dataset = SentenceTransformerDataset(filepath=str(tmp_path / "bge_finetuned"))
    dataset.save(model)
    reloaded = dataset.load()
    texts = ["Which movie follows Anna in space?", "Anna's story. A chef opens a small restaurant."]
    trained = model.encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(reloaded.encode(texts, convert_to_numpy=True), trained, atol=1e-5)
    # and it is not the pretrained model any more
    assert not np.allclose(base_model().encode(texts, convert_to_numpy=True), trained, atol=1e-3)
    # the lazy dataset saves and reloads it the same way (finetuned.embedding_model in the catalog)
    lazy_saved = LazySentenceTransformerDataset(filepath=str(tmp_path / "lazy_saved"))
    lazy_saved.save(model)
    np.testing.assert_allclose(lazy_saved.load().encode(texts, convert_to_numpy=True), trained, atol=1e-5)


def test_same_seed_same_model_whether_the_model_comes_lazy_or_eager():
    train_set = prepare_training_set(tiny_pairs(16), None, p())
    texts = ["a film about a haunted house"]
    first = fine_tune(base_model(), train_set, p(max_steps=1))[0].encode(texts)
    second = fine_tune(eager_model(), train_set, p(max_steps=1))[0].encode(texts)
    np.testing.assert_allclose(first, second, atol=1e-6)


def test_triplets_mined_and_given_train_and_evaluate_like_pairs():
    pairs = tiny_pairs(32, seed=9)
    train, test = split_pairs(pairs, p())
    mine = p()
    mine["hard_negatives"]["mine"] = True
    triplets = prepare_training_set(train, base_model(), mine)
    assert list(triplets.columns) == ["anchor", "positive", "negative"]
    assert len(triplets) > 0
    assert (triplets["negative"] != triplets["positive"]).all()
    # negatives are mined among the training positives only: no test text leaks in
    assert set(triplets["negative"]) <= set(train["positive"])

    model, log = fine_tune(base_model(), triplets, p())
    assert log["columns"] == ["anchor", "positive", "negative"] and log["steps"] == 2
    task = build_retrieval_task(pairs, test, p())
    result = evaluate_retrieval(model, task, p())
    assert list(result) == ["384", "64"]
    for values in result.values():
        assert all(0.0 <= v <= 1.0 for v in values.values())
        assert values["recall@1"] <= values["mrr@10"] <= values["recall@10"]

    # the evaluation loads a lazy model itself, and scores it as the loaded one
    assert evaluate_retrieval(base_model(), task, p()) == evaluate_retrieval(eager_model(), task, p())

    # a `negative` column in the data is trained on as given
    given = prepare_training_set(train.assign(negative=train["positive"].iloc[::-1].to_numpy()), None, p())
    _, log = fine_tune(base_model(), given, p(max_steps=1))
    assert log["columns"] == ["anchor", "positive", "negative"] and log["steps"] == 1
