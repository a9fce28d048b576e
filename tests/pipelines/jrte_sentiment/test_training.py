"""Each fine-tuning switch changes training as it says, on a tiny BERT and a handful of sentences."""

import pandas as pd
import pytest

from qeu_kedro.datasets import ModelHandle
from qeu_kedro.datasets.hf_sequence_classifier import HFSequenceClassifierDataset
from qeu_kedro.pipelines.jrte_sentiment.model import fine_tune_classifier, predict_run, train_seed_ensemble
from tests.conftest import REPO, load_config

PARAMS = load_config(REPO, None, "parameters")["jrte_sentiment"]
TASK = PARAMS["task"]
NAMES = ["negative", "normal", "positive"]
TRAINING = {
    "trainer": {
        **PARAMS["training"]["trainer"],
        "num_train_epochs": 2,
        "per_device_train_batch_size": 4,
        "disable_tqdm": True,
    },
    "max_length": 16,
    "prefix": "",
    "freeze_embeddings": False,
}
RUN = {
    "enabled": True,
    "predict_splits": ["dev", "test"],
    "early_stopping_patience": None,
    "trainer": {},
    "config": {},
    "soft_labels": False,
    "class_weights": None,
}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(0)  # the same random weights whatever ran before: the losses below are compared
    folder = tmp_path_factory.mktemp("tiny")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "良", "い", "悪", "普", "通"]) + "\n")
    config = BertConfig(
        vocab_size=9,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        num_labels=3,
        initializer_range=0.5,  # logits far from uniform, so that the losses compared below differ clearly
    )
    HFSequenceClassifierDataset(filepath=str(folder / "clf")).save(
        ModelHandle(
            "tiny BERT", model=BertForSequenceClassification(config), tokenizer=BertTokenizerFast(vocab_file=str(vocab))
        )
    )
    return HFSequenceClassifierDataset(filepath=str(folder / "clf")).load()


@pytest.fixture(scope="module")
def headless_bert(tmp_path_factory):
    """A tiny BERT saved without a classification head: fine-tuning draws the head's weights at random."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("headless")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "良", "い", "悪", "普", "通"]) + "\n")
    config = BertConfig(vocab_size=9, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    BertModel(config).save_pretrained(folder / "bert")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(folder / "bert")
    return HFSequenceClassifierDataset(filepath=str(folder / "bert")).load()


def sentences(votes, labels):
    texts = {"positive": "良い", "negative": "悪い", "normal": "普通"}
    n = len(labels)
    frame = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(n)],
            "text": [texts[x] for x in labels],
            "label_name": labels,
            "length": [2] * n,
            "agreement": [max(v) / sum(v) for v in votes],
        }
    )
    for j, name in enumerate(NAMES):
        frame[f"votes_{name}"] = [v[j] for v in votes]
    return frame


LABELS = ["positive", "negative", "normal", "positive", "positive", "negative", "normal", "positive"]
UNANIMOUS = [[0, 0, 3] if x == "positive" else [3, 0, 0] if x == "negative" else [0, 3, 0] for x in LABELS]
SPLIT = [[0, 1, 2] if x == "positive" else [2, 1, 0] if x == "negative" else [1, 2, 0] for x in LABELS]


def train_losses(tiny_bert, votes, **switches):
    data = sentences(votes, LABELS)
    _, metrics = fine_tune_classifier(data, data, tiny_bert, TRAINING, {**RUN, **switches}, TASK)
    return [round(r["train_loss"], 6) for r in metrics["history"]], metrics


def test_soft_labels_train_on_the_vote_shares(tiny_bert):
    hard, metrics = train_losses(tiny_bert, SPLIT)
    assert (
        metrics["epochs_run"] == 2
        and metrics["n_train"] == 8
        and [r["epoch"] for r in metrics["history"]] == [1.0, 2.0]
    )
    # unanimous votes: the vote shares are the one-hot labels, so training is the same
    assert train_losses(tiny_bert, UNANIMOUS, soft_labels=True)[0] == pytest.approx(hard, abs=1e-5)
    # split votes: the targets differ, and so does training (a softer target has a higher cross-entropy floor)
    soft = train_losses(tiny_bert, SPLIT, soft_labels=True)[0]
    assert soft[0] != pytest.approx(hard[0], abs=1e-4)


def test_balanced_class_weights_change_training_only_when_classes_are_unbalanced(tiny_bert):
    hard, _ = train_losses(tiny_bert, SPLIT)
    weighted, metrics = train_losses(tiny_bert, SPLIT, class_weights="balanced")
    assert metrics["class_weights"] == pytest.approx({"negative": 8 / 6, "normal": 8 / 6, "positive": 8 / 12}, abs=1e-4)
    assert abs(weighted[0] - hard[0]) > 0.01  # seeded weights: 1.413 against 1.207
    with pytest.raises(ValueError, match="class_weights"):
        train_losses(tiny_bert, SPLIT, class_weights="inverse")


def test_trainer_arguments_come_from_parameters_under_their_own_names(tiny_bert):
    # max_steps is a TrainingArguments key: it stops the run after 1 step of the first epoch
    data = sentences(SPLIT, LABELS)
    training = {**TRAINING, "trainer": {**TRAINING["trainer"], "max_steps": 1}}
    classifier, metrics = fine_tune_classifier(data, data, tiny_bert, training, RUN, TASK)
    assert len(metrics["history"]) == 1
    preds = predict_run(classifier, data, data, data, training, RUN, TASK)
    assert preds.groupby("split").size().to_dict() == {"dev": 8, "test": 8}
    assert preds[[f"p_{n}" for n in NAMES]].sum(axis=1).to_numpy() == pytest.approx(1.0, abs=1e-5)
    # a run switched off trains nothing and predicts nothing
    off, info = fine_tune_classifier(data, data, tiny_bert, training, {**RUN, "enabled": False}, TASK)
    assert not off.loaded and "switched off" in off.source and info == {"enabled": False, "history": []}
    assert predict_run(off, data, data, data, training, {**RUN, "enabled": False}, TASK).empty


def test_average_last_epochs_keeps_the_mean_of_the_last_epochs_weights(tiny_bert):
    import torch

    # a constant learning rate: the first 2 epochs of a 3-epoch run are a 2-epoch run, so each epoch's weights are known
    data = sentences(SPLIT, LABELS)
    trainer = {**TRAINING["trainer"], "lr_scheduler_type": "constant", "warmup_steps": 0, "learning_rate": 0.05}

    def trained(epochs, **switches):
        training = {**TRAINING, "trainer": {**trainer, "num_train_epochs": epochs}}
        classifier, metrics = fine_tune_classifier(data, data, tiny_bert, training, {**RUN, **switches}, TASK)
        return {n: p.detach().clone() for n, p in classifier.model.named_parameters()}, metrics

    epoch2, _ = trained(2)
    epoch3, _ = trained(3)
    averaged, metrics = trained(3, average_last_epochs=2)
    assert metrics["averaged_epochs"] == [2.0, 3.0] and metrics["restored_best"] is False
    moved = [n for n in epoch3 if not epoch2[n].equal(epoch3[n])]
    assert moved  # training changed the weights between the epochs, so the mean differs from either
    for name in epoch3:
        torch.testing.assert_close(averaged[name], (epoch2[name] + epoch3[name]) / 2, atol=1e-5, rtol=0, msg=name)
    # more epochs asked for than were run: the mean of all of them; a run without the switch reports none
    _, metrics = trained(2, average_last_epochs=5)
    assert metrics["averaged_epochs"] == [1.0, 2.0]
    assert trained(2)[1]["averaged_epochs"] is None
    with pytest.raises(ValueError, match="average_last_epochs"):
        trained(1, average_last_epochs=0)


def test_mean_pooling_gives_the_head_the_mean_of_the_sentence_tokens_and_nothing_of_the_padding(tiny_bert):
    import torch

    from qeu_kedro.pipelines.jrte_sentiment.model import use_pooling

    enc = tiny_bert.tokenizer(["良い", "悪い普通良い"], padding=True, return_tensors="pt")
    lengths = enc["attention_mask"].sum(1).tolist()
    assert lengths[0] < lengths[1]  # the first sentence is padded

    def head_input(pooling, positional=False):
        model = tiny_bert.from_pretrained("AutoModelForSequenceClassification", num_labels=3).eval()
        seen = {}
        # registered before use_pooling's hook: the encoder's own output, before the pooling changes it
        model.bert.encoder.register_forward_hook(lambda m, a, out: seen.__setitem__("tokens", out[0].clone()))
        model.bert.pooler.register_forward_pre_hook(lambda m, a: seen.__setitem__("first", a[0][:, 0].clone()))
        use_pooling(model, pooling)
        with torch.no_grad():
            model(enc["input_ids"], enc["attention_mask"]) if positional else model(**enc)
        return seen["tokens"], seen["first"], model

    tokens, first, model = head_input("first_token")
    torch.testing.assert_close(first, tokens[:, 0])
    assert model.config.sentence_pooling == "first_token"
    tokens, first, model = head_input("mean")
    for i, n in enumerate(lengths):
        torch.testing.assert_close(first[i], tokens[i, :n].mean(0))
    assert not torch.allclose(first[0], tokens[0].mean(0), atol=1e-4)  # a mean over the padding too would differ
    torch.testing.assert_close(head_input("mean", positional=True)[1], first)  # the mask passed by position
    assert model.config.sentence_pooling == "mean"
    use_pooling(model)  # again, from the config: no second pair of hooks
    assert len(model.bert.encoder._forward_hooks) == 2
    with pytest.raises(ValueError, match="pooling must be one of"):
        use_pooling(model, "max")


def test_a_saved_mean_pooling_classifier_predicts_as_it_did_in_memory(tiny_bert, tmp_path):
    import torch

    data = sentences(SPLIT, LABELS)
    data.loc[::2, "text"] = data.loc[::2, "text"] + "普通良い"  # sentences of two lengths: padding in every batch
    classifier, metrics = fine_tune_classifier(data, data, tiny_bert, TRAINING, {**RUN, "pooling": "mean"}, TASK)
    assert metrics["pooling"] == "mean"
    assert fine_tune_classifier(data, data, tiny_bert, TRAINING, RUN, TASK)[1]["pooling"] == "first_token"
    in_memory = predict_run(classifier, data, data, data, TRAINING, RUN, TASK)
    HFSequenceClassifierDataset(filepath=str(tmp_path / "clf")).save(classifier)
    loaded = HFSequenceClassifierDataset(filepath=str(tmp_path / "clf")).load()
    assert loaded.model.config.sentence_pooling == "mean"
    # the loaded weights with transformers' own first-token head answer differently ...
    enc = loaded.tokenizer(list(data["text"]), padding=True, return_tensors="pt")
    with torch.no_grad():
        plain = torch.softmax(loaded.model.eval()(**enc).logits, -1).numpy()
    p = [f"p_{n}" for n in NAMES]
    assert abs(plain - in_memory[in_memory["split"] == "dev"][p].to_numpy()).max() > 1e-3
    # ... and prediction puts the mean pooling back from the saved config
    reloaded = predict_run(loaded, data, data, data, TRAINING, RUN, TASK)
    assert reloaded[p].to_numpy() == pytest.approx(in_memory[p].to_numpy(), abs=1e-5)


FROZEN = {**TRAINING, "trainer": {**TRAINING["trainer"], "learning_rate": 0.0, "max_steps": 1}}  # weights stay initial


def initial_head(headless_bert, run_trainer, training=FROZEN):
    data = sentences(SPLIT, LABELS)
    classifier, metrics = fine_tune_classifier(
        data, data, headless_bert, training, {**RUN, "trainer": run_trainer}, TASK
    )
    return classifier.model.classifier.weight.detach().clone(), metrics["seed"]


def test_the_runs_own_seed_draws_the_heads_initial_weights(headless_bert):
    import torch

    one, seed = initial_head(headless_bert, {"seed": 1, "data_seed": 1})
    assert seed == 1
    assert torch.equal(one, initial_head(headless_bert, {"seed": 1, "data_seed": 1})[0])  # reproducible
    assert not torch.equal(one, initial_head(headless_bert, {"seed": 2, "data_seed": 2})[0])
    # without a seed of its own the run takes the shared one
    shared = {**FROZEN, "trainer": {**FROZEN["trainer"], "seed": 1}}
    shared_head, shared_seed = initial_head(headless_bert, {}, shared)
    assert shared_seed == 1 and torch.equal(shared_head, one)


def test_the_seed_ensemble_averages_level2_with_its_recipe_trained_on_other_seeds(headless_bert):
    data = sentences(SPLIT, LABELS)
    level2 = {**RUN, "predict_splits": ["train", "dev", "test"]}
    classifier, _ = fine_tune_classifier(data, data, headless_bert, TRAINING, level2, TASK)
    level2_predictions = predict_run(classifier, data, data, data, TRAINING, level2, TASK)
    params = {"enabled": True, "seeds": [1, 2]}
    ensemble, member_predictions, info = train_seed_ensemble(
        data, data, data, headless_bert, TRAINING, level2, params, level2_predictions, TASK
    )
    assert info["level2_seed"] == 42 and info["seeds"] == [1, 2] and set(info["members"]) == {"seed_1", "seed_2"}
    assert [info["members"][m]["seed"] for m in ("seed_1", "seed_2")] == [1, 2]
    assert all(len(m["history"]) == 2 for m in info["members"].values())
    # each member is Level 2's run with only the seed changed
    p = [f"p_{n}" for n in NAMES]
    members = [level2_predictions[level2_predictions["split"] != "train"].reset_index(drop=True)[p].to_numpy()]
    for seed in (1, 2):
        run = {**level2, "trainer": {"seed": seed, "data_seed": seed}, "predict_splits": ["dev", "test"]}
        member, _ = fine_tune_classifier(data, data, headless_bert, TRAINING, run, TASK)
        members.append(predict_run(member, data, data, data, TRAINING, run, TASK)[p].to_numpy())
    assert abs(members[1] - members[2]).max() > 1e-4  # the seeds' models differ
    # the extra members' own predictions are kept, one table, each member's rows its own
    assert list(member_predictions.columns[:2]) == ["member", "split"]
    assert member_predictions["member"].unique().tolist() == ["seed_1", "seed_2"]
    for i, seed in enumerate((1, 2), 1):
        own = member_predictions[member_predictions["member"] == f"seed_{seed}"]
        assert own[p].to_numpy() == pytest.approx(members[i], abs=1e-6)
    assert ensemble.groupby("split").size().to_dict() == {"dev": 8, "test": 8}
    assert ensemble[p].to_numpy() == pytest.approx(sum(members) / 3, abs=1e-6)
    assert (ensemble["predicted"] == [NAMES[i] for i in ensemble[p].to_numpy().argmax(1)]).all()
    # switched off, or Level 2 switched off: no training, empty predictions
    off = train_seed_ensemble(
        data, data, data, headless_bert, TRAINING, level2, {**params, "enabled": False}, level2_predictions, TASK
    )
    assert off[0].empty and off[1].empty and off[2] == {"enabled": False, "members": {}}
    assert list(off[1].columns[:2]) == ["member", "split"]
    assert train_seed_ensemble(
        data, data, data, headless_bert, TRAINING, {**level2, "enabled": False}, params, level2_predictions, TASK
    )[0].empty
    # Level 2's own seed is a member already; a repeated seed would count one model twice
    for seeds in ([42, 1], [1, 1], []):
        with pytest.raises(ValueError, match="distinct seeds other than Level 2's own"):
            train_seed_ensemble(
                data, data, data, headless_bert, TRAINING, level2, {**params, "seeds": seeds}, level2_predictions, TASK
            )


@pytest.mark.parametrize("switch", [{"soft_labels": True}, {"class_weights": "balanced"}])
def test_label_smoothing_with_the_pipelines_own_loss_is_refused_before_training(switch):
    # the Trainer skips its label smoother when given a loss function: the smoothing would not be trained with
    run = {**RUN, **switch, "trainer": {"label_smoothing_factor": 0.1}}
    never_loaded = ModelHandle("not a model: refused before loading")
    data = sentences(SPLIT, LABELS)
    with pytest.raises(ValueError, match="label_smoothing_factor has no effect with"):
        fine_tune_classifier(data, data, never_loaded, TRAINING, run, TASK)
