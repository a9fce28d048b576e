"""Fine-tuning on tiny data with the bundled all-MiniLM-L6-v2: loss, save/reload, triplets, seeds."""

import logging

import numpy as np
import pandas as pd
import pytest

from qeu_kedro.datasets import LazySentenceTransformerDataset, SentenceTransformerDataset
from qeu_kedro.datasets.lazy_sentence_transformer import LazySentenceTransformer
from qeu_kedro.pipelines.bge_finetune.nodes import (
    build_loss,
    build_retrieval_task,
    evaluate_retrieval,
    fine_tune,
    make_pairs,
    matryoshka_dims,
    mean_scores,
    prepare_training_set,
    split_pairs,
)
from qeu_kedro.sample_data.pairs import make_pairs as make_sample_pairs
from tests.pipelines.bge_finetune.test_nodes import params

pytestmark = pytest.mark.slow

TRAINER = {
    "num_train_epochs": 1,
    "max_steps": 2,
    "per_device_train_batch_size": 8,
    "learning_rate": 5e-5,
    "warmup_steps": 0,
    "lr_scheduler_type": "constant",
    "weight_decay": 0.0,
    "logging_steps": 1,
    "seed": 0,
    "data_seed": 0,
}
HARD = {
    "use_negative_column": True,
    "mine": False,
    "range_min": 0,
    "range_max": 10,
    "relative_margin": 0.05,
    "sampling_strategy": "top",
    "batch_size": 32,
}


def base_model():
    """What the shipped catalog gives the nodes: a lazy model (the nodes load it)."""
    model = LazySentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2").load()
    assert isinstance(model, LazySentenceTransformer) and not model.loaded
    return model


def eager_model():
    return SentenceTransformerDataset(model="bundled:all-MiniLM-L6-v2").load().model  # the SentenceTransformer


def tiny_pairs(n=48, seed=5):
    return make_pairs(make_sample_pairs(n_pairs=n, seed=seed), params())


def p(**trainer):
    return params(trainer={**TRAINER, **trainer}, hard_negatives=dict(HARD), matryoshka_dims=[384, 64])


def test_training_lowers_the_loss_and_the_saved_model_reloads_with_the_same_embeddings(tmp_path):
    train_set = prepare_training_set(tiny_pairs(24), None, p())
    # 3 batches of 8 per epoch, 3 epochs: the same pairs again, so the loss must fall
    model, log = fine_tune(base_model(), train_set, None, p(num_train_epochs=3, max_steps=-1, learning_rate=1e-4))
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
    first = fine_tune(base_model(), train_set, None, p(max_steps=1))[0].encode(texts)
    second = fine_tune(eager_model(), train_set, None, p(max_steps=1))[0].encode(texts)
    np.testing.assert_allclose(first, second, atol=1e-6)


def test_mining_says_how_many_pairs_it_leaves_out(caplog):
    """A pair whose every candidate is within the margin gets no negative and is left out of training."""
    train, _ = split_pairs(tiny_pairs(32, seed=9), p())
    strict = p()
    strict["hard_negatives"].update(mine=True, relative_margin=0.6)
    with caplog.at_level(logging.WARNING):
        triplets = prepare_training_set(train, base_model(), strict)
    assert 0 < len(triplets) < len(train)
    (message,) = [r.getMessage() for r in caplog.records if "found no negative" in r.getMessage()]
    assert f"no negative for {len(train) - len(triplets)} of {len(train)} training pairs" in message
    assert "relative_margin" in message


def test_randomly_sampled_negatives_are_the_same_for_the_same_parameters_and_leave_random_alone():
    """sampling_strategy random draws from Python's random module: seeded by split.seed inside the node."""
    import random

    train, _ = split_pairs(tiny_pairs(32, seed=9), p())
    sampled = p()
    sampled["hard_negatives"].update(mine=True, sampling_strategy="random", relative_margin=None, range_max=10)
    random.seed(1)
    first = prepare_training_set(train, base_model(), sampled)
    after_first = random.random()
    random.seed(2)
    second = prepare_training_set(train, base_model(), sampled)
    pd.testing.assert_frame_equal(first, second)
    random.seed(1)
    assert random.random() == after_first  # the caller's random state is given back


def test_triplets_mined_and_given_train_and_evaluate_like_pairs(caplog):
    pairs = tiny_pairs(32, seed=9)
    train, test = split_pairs(pairs, p())
    mine = p()
    mine["hard_negatives"]["mine"] = True
    with caplog.at_level(logging.WARNING):
        triplets = prepare_training_set(train, base_model(), mine)
    assert list(triplets.columns) == ["anchor", "positive", "negative"]
    assert len(triplets) > 0
    assert len(triplets) == len(train)  # every tiny pair finds a negative at the 5 % margin: no warning
    assert not [r for r in caplog.records if "found no negative" in r.getMessage()]
    assert (triplets["negative"] != triplets["positive"]).all()
    # negatives are mined among the training positives only: no test text leaks in
    assert set(triplets["negative"]) <= set(train["positive"])

    model, log = fine_tune(base_model(), triplets, None, p())
    assert log["columns"] == ["anchor", "positive", "negative"] and log["steps"] == 2
    task = build_retrieval_task(pairs, test, p())
    result = mean_scores(evaluate_retrieval(model, task, p()))
    assert list(result) == ["384", "64"]
    for values in result.values():
        assert all(0.0 <= v <= 1.0 for v in values.values())
        assert values["recall@1"] <= values["mrr@10"] <= values["recall@10"]

    # the evaluation loads a lazy model itself, and scores it as the loaded one
    assert evaluate_retrieval(base_model(), task, p()).equals(evaluate_retrieval(eager_model(), task, p()))

    # a `negative` column in the data is trained on as given
    given = prepare_training_set(train.assign(negative=train["positive"].iloc[::-1].to_numpy()), None, p())
    _, log = fine_tune(base_model(), given, None, p(max_steps=1))
    assert log["columns"] == ["anchor", "positive", "negative"] and log["steps"] == 1


def test_per_query_scores_average_to_the_library_evaluator_at_every_dimension():
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.util import cos_sim

    pairs = tiny_pairs(60, seed=11)
    _, test = split_pairs(pairs, p())
    task = build_retrieval_task(pairs, test, p())
    model = eager_model()
    ours = mean_scores(evaluate_retrieval(model, task, p()))
    for dim in matryoshka_dims(384, p()):
        evaluator = InformationRetrievalEvaluator(
            task["queries"],
            task["corpus"],
            {q: set(d) for q, d in task["relevant"].items()},
            mrr_at_k=[10],
            ndcg_at_k=[10],
            accuracy_at_k=[1, 10],
            precision_recall_at_k=[1, 10],
            map_at_k=[10],
            truncate_dim=dim,
            score_functions={"cosine": cos_sim},
            write_csv=False,
        )
        theirs = evaluator.compute_all_metrics(model)["cosine"]
        assert ours[str(dim)]["ndcg@10"] == pytest.approx(theirs["ndcg@k"][10], abs=1e-6)
        assert ours[str(dim)]["mrr@10"] == pytest.approx(theirs["mrr@k"][10], abs=1e-6)
        assert ours[str(dim)]["recall@1"] == pytest.approx(theirs["recall@k"][1], abs=1e-6)
        assert ours[str(dim)]["recall@10"] == pytest.approx(theirs["recall@k"][10], abs=1e-6)


@pytest.mark.parametrize("name", ["cached_mnrl", "gist", "cached_gist"])
def test_each_loss_trains_inside_matryoshka(name):
    params = p(max_steps=1)
    params["loss"] = {"name": name, "mini_batch_size": 4, "matryoshka_weights": [2.0, 1.0]}
    model = eager_model()
    loss = build_loss(model, [384, 64], params, guide=eager_model() if "gist" in name else None)
    assert type(loss).__name__ == "MatryoshkaLoss" and list(loss.matryoshka_weights) == [2.0, 1.0]
    expected = {
        "cached_mnrl": "CachedMultipleNegativesRankingLoss",
        "gist": "GISTEmbedLoss",
        "cached_gist": "CachedGISTEmbedLoss",
    }
    assert type(loss.loss).__name__ == expected[name]
    trained, log = fine_tune(model, prepare_training_set(tiny_pairs(16), None, params), None, params)
    assert log["loss"] == name and log["steps"] == 1
    assert log["matryoshka_weights"] == [2.0, 1.0] and log["loss_kwargs"] == {}  # what trained, in metrics.json
    with pytest.raises(ValueError, match="matryoshka_weights has 1 weights for 2 dims"):
        build_loss(model, [384, 64], {"loss": {"name": "mnrl", "matryoshka_weights": [1.0]}})
    with pytest.raises(ValueError, match="loss.name"):
        build_loss(model, [384, 64], {"loss": {"name": "triplet"}})


def test_auto_dimensions_of_a_small_model_take_the_first_of_the_five_weights(caplog):
    """conf/base: matryoshka_dims auto with 5 weights. A model of 256 dimensions gets 4 auto dimensions; the loss
    used to refuse them inside fine_tune, after the split and the base model's scores had been written."""
    params = p()
    params["matryoshka_dims"] = "auto"
    params["loss"] = {"name": "mnrl", "mini_batch_size": 8, "matryoshka_weights": [64, 1, 1, 1, 1]}
    dims = matryoshka_dims(256, params)
    assert dims == [256, 128, 64, 32]
    with caplog.at_level(logging.INFO, logger="qeu_kedro.pipelines.bge_finetune.nodes"):
        loss = build_loss(eager_model(), dims, params)
    assert list(loss.matryoshka_weights) == [64, 1, 1, 1]
    assert "the first 4 of the 5 matryoshka_weights" in caplog.text
    params["matryoshka_dims"] = [256, 128, 64, 32]  # listed dimensions: the count must match
    with pytest.raises(ValueError, match="matryoshka_weights has 5 weights for 4 dims"):
        build_loss(eager_model(), dims, params)


def test_loss_kwargs_reach_the_loss_and_change_what_it_computes():
    """loss.kwargs go to the loss class as they are: the symmetric, hardness-weighted MNRL of the same
    batch gives another loss value than the plain one; a key the class does not take is refused."""
    import torch

    model = eager_model()
    batch = tiny_pairs(8)
    features = [model.tokenize(batch["anchor"].tolist()), model.tokenize(batch["positive"].tolist())]
    values = {}
    for label, kwargs in {
        "plain": {},
        "tuned": {
            "directions": ["query_to_doc", "doc_to_query"],
            "hardness_mode": "in_batch_negatives",
            "hardness_strength": 9.0,
        },
    }.items():
        loss = build_loss(model, [384, 64], {"loss": {"name": "mnrl", "matryoshka_weights": None, "kwargs": kwargs}})
        if kwargs:
            assert tuple(loss.loss.directions) == ("query_to_doc", "doc_to_query")
            assert loss.loss.hardness_mode == "in_batch_negatives" and loss.loss.hardness_strength == 9.0
        with torch.no_grad():
            values[label] = float(loss(features, labels=None))
    assert values["plain"] != pytest.approx(values["tuned"])
    with pytest.raises(
        ValueError,
        match=r"loss.kwargs \['temperature'\] are not keyword arguments of "
        "MultipleNegativesRankingLoss",
    ):
        build_loss(
            model, [384, 64], {"loss": {"name": "mnrl", "matryoshka_weights": None, "kwargs": {"temperature": 0.05}}}
        )


def _validation_run(learning_rate, n_pairs, epochs, eval_steps=None):
    from qeu_kedro.pipelines.bge_finetune.nodes import VALIDATION_METRIC, _validation_evaluator, split_validation

    params = p(num_train_epochs=epochs, max_steps=-1, learning_rate=learning_rate, per_device_train_batch_size=16)
    params["validation"] = {
        "fraction": 0.25,
        "eval_steps": eval_steps,
        "early_stopping_patience": None,
        "keep_base_if_better": True,
    }
    pairs = tiny_pairs(n_pairs, seed=3)
    fit, validation = split_validation(pairs, params)
    task = build_retrieval_task(pairs, validation, params)
    model, log = fine_tune(base_model(), prepare_training_set(fit, None, params), task, params)
    final = float(_validation_evaluator(task, params)(model)[VALIDATION_METRIC])
    return log["validation"], final


def test_the_best_checkpoint_is_restored_when_a_later_epoch_is_worse():
    # lr 1e-3 is too high on purpose: the first epoch gains on validation, the later ones lose
    validation, final = _validation_run(1e-3, 200, 3)
    scores = [e["ndcg@10"] for e in validation["curve"]]
    best = max(scores)
    assert len(scores) == 3 and best > validation["base_ndcg@10"] and scores[-1] < best, validation  # the scenario
    assert validation["chosen"] == f"step {validation['curve'][scores.index(best)]['step']}"
    assert final == pytest.approx(best, abs=1e-6)  # the model returned is the best checkpoint, not the last
    assert validation["best_checkpoint_loaded"] is True


def test_a_best_checkpoint_that_cannot_be_loaded_back_is_said_and_not_reported_as_chosen(monkeypatch, caplog):
    """sentence-transformers only logs an error when loading the best checkpoint fails, and keeps the last weights;
    fine_tune reported the curve's best step and score for a model that did not have them."""
    from sentence_transformers.base import trainer as base_trainer

    from qeu_kedro.pipelines.bge_finetune.nodes import VALIDATION_METRIC, _validation_evaluator, split_validation

    def unreadable(self, path):
        raise OSError("simulated: checkpoint unreadable")

    monkeypatch.setattr(base_trainer.BaseTrainer, "_load_from_checkpoint", unreadable)
    # lr 2e-2 is far too high on purpose: validation NDCG@10 rises at step 2 and falls at step 3
    params = p(max_steps=3, learning_rate=2e-2)
    params["validation"] = {"fraction": 0.3, "eval_steps": 1, "early_stopping_patience": None}
    params["validation"]["keep_base_if_better"] = False
    pairs = make_pairs(make_sample_pairs(60, seed=0), params)
    fit, validation = split_validation(pairs, params)
    task = build_retrieval_task(pairs, validation, params)
    with caplog.at_level(logging.ERROR, logger="qeu_kedro.pipelines.bge_finetune.nodes"):
        model, log = fine_tune(base_model(), prepare_training_set(fit, None, params), task, params)
    final = float(_validation_evaluator(task, params)(model)[VALIDATION_METRIC])
    v = log["validation"]
    scores = [e["ndcg@10"] for e in v["curve"]]
    assert len(scores) == 3 and scores.index(max(scores)) == 1 and scores[2] < scores[1], v  # the scenario
    assert v["best_ndcg@10"] == pytest.approx(final, abs=1e-6) == pytest.approx(scores[2], abs=1e-4)
    assert v["chosen"] == "step 3, the last (the best, step 2, could not be loaded back)"
    assert v["best_checkpoint_loaded"] is False and "was not loaded back" in caplog.text


def test_the_base_model_is_kept_when_no_checkpoint_beats_it():
    validation, final = _validation_run(2e-3, 96, 2, eval_steps=2)
    assert max(e["ndcg@10"] for e in validation["curve"]) <= validation["base_ndcg@10"], validation  # the scenario
    assert validation["chosen"] == "base model"
    assert final == pytest.approx(validation["base_ndcg@10"], abs=1e-6)


def test_steps_per_epoch_are_counted_as_the_trainer_counts_them(tmp_path):
    """Optimizer steps, not batches: gradient accumulation and the last partial batch or accumulation
    give the very number the library's trainer plans for an epoch."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer

    from qeu_kedro.pipelines.bge_finetune.nodes import training_arguments, update_steps_per_epoch

    model = eager_model()
    pairs = tiny_pairs(13)
    for n, batch, accumulation, drop_last in [
        (13, 4, 1, False),  # 4 batches, the last of 1 row: 4 steps
        (13, 4, 2, False),  # 4 batches: 2 steps
        (12, 4, 2, False),  # 3 batches: 2 steps, the last one batch only
        (13, 4, 2, True),  # the last batch dropped: 3 batches, 2 steps
        (13, 2, 3, False),  # 7 batches: 3 steps
        (5, 8, 4, False),  # 1 batch: 1 step
    ]:
        trainer = {
            **TRAINER,
            "max_steps": -1,
            "per_device_train_batch_size": batch,
            "gradient_accumulation_steps": accumulation,
            "dataloader_drop_last": drop_last,
        }
        args = training_arguments(p(**trainer), str(tmp_path), None, None)
        dataset = Dataset.from_pandas(pairs[["anchor", "positive"]].head(n), preserve_index=False)
        library = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset)
        planned = library.set_initial_training_values(args, library.get_train_dataloader())[1]
        assert update_steps_per_epoch(n, trainer) == planned, (n, batch, accumulation, drop_last)


def test_gradient_accumulation_keeps_one_evaluation_per_epoch_and_no_early_stop():
    """With gradient_accumulation_steps the default evaluation is still once per epoch, at the epoch's last
    optimizer step, and a run that trains every epoch is not reported as stopped early (counting the 3
    batches as steps, the run of 2 optimizer steps fell short of the 3 planned: "stopped early")."""
    params = p(max_steps=-1, num_train_epochs=1, per_device_train_batch_size=2, gradient_accumulation_steps=2)
    params["validation"] = {
        "fraction": 0.25,
        "eval_steps": None,
        "early_stopping_patience": None,
        "keep_base_if_better": False,
    }
    words = ["red", "blue", "green", "cold", "warm", "fast", "slow", "loud"]
    pairs = pd.DataFrame(
        {
            "id": [str(i) for i in range(8)],
            "anchor": [f"a {w} one" for w in words],
            "positive": [f"the {w}" for w in words],
        }
    )
    fit, validation = pairs.iloc[:6], pairs.iloc[6:]  # 3 batches of 2: 2 optimizer steps (2 batches, then 1)
    task = build_retrieval_task(pairs, validation, params)
    _, log = fine_tune(base_model(), prepare_training_set(fit, None, params), task, params)
    assert log["steps"] == 2
    assert [e["step"] for e in log["validation"]["curve"]] == [2]
    assert log["validation"]["stopped_early"] is False


def test_a_soup_is_the_mean_of_the_runs_each_seed_trains_alone():
    """``soup.seeds``: one run per seed from the base weights, then their mean; each member is the very
    model that seed trains alone, and the soup is scored on validation like a checkpoint."""
    import torch

    from qeu_kedro.pipelines.bge_finetune.nodes import VALIDATION_METRIC, _validation_evaluator, split_validation

    params = p(max_steps=2, learning_rate=1e-4, per_device_train_batch_size=8)
    params["validation"] = {
        "fraction": 0.25,
        "eval_steps": None,
        "early_stopping_patience": None,
        "keep_base_if_better": False,
    }
    pairs = tiny_pairs(48, seed=3)
    fit, validation = split_validation(pairs, params)
    task = build_retrieval_task(pairs, validation, params)
    train_set = prepare_training_set(fit, None, params)
    alone = []
    for seed in (3, 4):
        single = {**params, "trainer": {**params["trainer"], "seed": seed, "data_seed": seed}}
        model, _ = fine_tune(base_model(), train_set, task, single)
        alone.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    soup, log = fine_tune(base_model(), train_set, task, {**params, "soup": {"seeds": [3, 4]}})

    weights = "0.model.encoder.layer.0.attention.self.query.weight"
    assert not torch.allclose(alone[0][weights], alone[1][weights])  # the seeds train different models
    expected = (alone[0][weights].double() + alone[1][weights].double()) / 2
    assert torch.allclose(soup.state_dict()[weights].double(), expected, atol=1e-6)
    assert log["soup_seeds"] == [3, 4] and log["steps"] == 4
    assert [r["seed"] for r in log["validation"]["runs"]] == [3, 4]
    assert log["validation"]["chosen"].startswith("soup of 2 runs (seed 3 step ")
    final = float(_validation_evaluator(task, params)(soup)[VALIDATION_METRIC])
    assert log["validation"]["best_ndcg@10"] == pytest.approx(final, abs=1e-6)


def test_the_evaluation_says_how_many_texts_the_model_cuts(caplog):
    model = eager_model()
    model.max_seq_length = 8  # [CLS] + 6 word pieces + [SEP]
    long = " ".join(["retrieval"] * 20)
    pairs = pd.DataFrame(
        {"id": list("abcd"), "anchor": ["q a", "q b", "q c", "q d"], "positive": ["short", long, "tiny", long + " x"]}
    )
    task = build_retrieval_task(pairs, pairs, p())
    with caplog.at_level(logging.WARNING):
        evaluate_retrieval(model, task, p())
    messages = [r.getMessage() for r in caplog.records if "longer than the model's" in r.getMessage()]
    assert messages == [
        "2 of 4 corpus documents are longer than the model's 8 tokens: only their first 8 tokens are embedded, in "
        "training as here. A model with a longer limit (or documents split into passages) sees all of them."
    ]


def test_an_empty_prompt_adds_none_of_the_models_own_prompts_where_training_adds_none():
    """The trainer adds only the configured prompts; with an empty one the evaluation, the validation
    evaluator and hard-negative mining must not add the model's own ``prompts`` either: the same scores
    and negatives as the same model without prompts. (A prefix longer than the model's 256 tokens makes
    every prompted query the same vector, so a prompt slipping in cannot go unnoticed.)"""
    from qeu_kedro.pipelines.bge_finetune.nodes import _validation_evaluator

    pairs = tiny_pairs(24, seed=7)
    train, test = split_pairs(pairs, p())
    task = build_retrieval_task(pairs, test, p())
    mine = p()
    mine["hard_negatives"]["mine"] = True
    flooding = "please read this note first. " * 60
    plain, prompted = eager_model(), eager_model()
    prompted.prompts = {"query": flooding, "document": flooding}
    assert plain.prompts == {"query": "", "document": ""}

    expected = evaluate_retrieval(plain, task, p())
    # the scenario: these prompts, when given, do change the scores
    flooded = {**p(), "prompts": {"query": flooding, "document": flooding}}
    assert not evaluate_retrieval(plain, task, flooded).equals(expected)
    pd.testing.assert_frame_equal(evaluate_retrieval(prompted, task, p()), expected)
    assert _validation_evaluator(task, p())(prompted) == _validation_evaluator(task, p())(plain)
    pd.testing.assert_frame_equal(prepare_training_set(train, prompted, mine), prepare_training_set(train, plain, mine))


def test_rows_no_batch_holds_are_counted_as_the_trainer_feeds_them(monkeypatch, caplog):
    """12 questions on 3 paragraphs, batch 4: a no-duplicates batch holds at most 3 of them, and the trainer
    takes the 3 batches the sampler announces, so at least 3 rows go unseen each epoch. The count in the
    training log is the number of questions the loss never saw (read here from the tokens each training
    step's loss is given), and the log says so."""
    from sentence_transformers import SentenceTransformerTrainer

    trained: list[list[str]] = []
    compute_loss = SentenceTransformerTrainer.compute_loss

    def watched(self, model, inputs, *args, **kwargs):
        tokenizer = model.tokenizer if hasattr(model, "tokenizer") else model.module.tokenizer
        trained.append(tokenizer.batch_decode(inputs["anchor_input_ids"], skip_special_tokens=True))
        return compute_loss(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformerTrainer, "compute_loss", watched)
    paragraphs = ["the red house", "the blue river", "the green hill"]
    questions = [f"question {i} about {paragraphs[i % 3].split()[1]}" for i in range(12)]
    pairs = pd.DataFrame(
        {"id": [str(i) for i in range(12)], "anchor": questions, "positive": [paragraphs[i % 3] for i in range(12)]}
    )
    params = p(max_steps=-1, num_train_epochs=2, per_device_train_batch_size=4)
    with caplog.at_level(logging.WARNING):
        _, log = fine_tune(base_model(), prepare_training_set(pairs, None, params), None, params)
    assert len(trained) == 2 * 3 and set(sum(trained, [])) <= set(questions)  # 2 epochs of 3 steps, read back
    unseen = [12 - len({q for batch in trained[e * 3 : e * 3 + 3] for q in batch}) for e in range(2)]
    assert min(unseen) >= 3  # the scenario
    assert log["rows_left_out_by_epoch"] == unseen
    assert "Epoch 1 left" in caplog.text and "of 12 training rows" in caplog.text


def test_no_rows_are_left_out_when_every_text_is_distinct():
    params = p(max_steps=-1, num_train_epochs=1, per_device_train_batch_size=8)
    _, log = fine_tune(base_model(), prepare_training_set(tiny_pairs(24), None, params), None, params)
    assert log["rows_left_out_by_epoch"] == [0]


def test_rows_left_out_are_counted_for_the_epochs_trained_not_the_epochs_planned():
    """Early stopping ended a 5-epoch run after 2, and the log still counted 5 epochs."""
    params = p(max_steps=-1, num_train_epochs=5, learning_rate=1e-3, per_device_train_batch_size=8)
    params["validation"] = {
        "fraction": 0.25,
        "eval_steps": None,
        "early_stopping_patience": 1,
        "keep_base_if_better": False,
    }
    pairs = tiny_pairs(120)
    fit, validation = pairs.iloc[:96], pairs.iloc[96:]
    task = build_retrieval_task(pairs, validation, params)
    _, log = fine_tune(base_model(), prepare_training_set(fit, None, params), task, params)
    assert log["validation"]["stopped_early"] and log["epochs"] < 5  # the scenario
    assert len(log["rows_left_out_by_epoch"]) == int(log["epochs"] + 1e-9)
