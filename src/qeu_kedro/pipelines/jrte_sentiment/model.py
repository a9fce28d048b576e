"""Models of ``jrte_sentiment``: the Level 1 zero-shot classifier, fine-tuning (Levels 2, 4, 5) and prediction."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from qeu_kedro.datasets import ModelHandle
from qeu_kedro.weights import average_state_dicts  # imports torch only when called

from .data import PREDICTION_COLUMNS, class_names
from .report import class_codes, macro_f1_codes

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- level 1
def mapping_problems(mapping: dict[str, Any], names: list[str]) -> list[tuple[str, str]]:
    """``(key under level1.mapping, what is wrong)`` for each target of the Level 1 ``mapping`` that is not one of
    the task's class ``names``: :func:`map_two_to_task` refuses them, and so does the parameter check, before the
    run (Level 1 predicts after the first fine-tuning has run)."""
    labels = mapping.get("labels") or {}
    bad = sorted({v for v in labels.values() if v not in names}, key=str)
    problems = []
    if bad:
        problems.append(
            (
                "labels",
                f"maps to {bad}, which are not classes of the task ({names}); map each of the 2-class model's "
                "labels to one of them",
            )
        )
    unsure = mapping.get("unsure_class")
    if unsure is not None and unsure not in names:
        problems.append(
            (
                "unsure_class",
                f"{unsure!r} is not a class of the task ({names}); name the class a prediction whose top score is "
                "below unsure_below becomes, or set it to null for no unsure band (a 2-class task)",
            )
        )
    return problems


def map_two_to_task(two_class: pd.DataFrame, mapping: dict[str, Any], names: list[str]) -> pd.Series:
    """Resolve a 2-class model's ``label``/``score`` against the task's classes.

    Args:
        two_class: columns ``label`` (the model's label name) and ``score`` (its probability).
        mapping: ``labels`` (model label -> a class name of the task), ``unsure_class`` (a
            class name, or null) and ``unsure_below``: a prediction whose score is below it
            is ``unsure_class`` (the model is unsure between the two poles, which is what a
            neutral sentence looks like to it).
        names: the task's class names.

    Raises:
        ValueError: a model label that ``mapping["labels"]`` does not name, or a target that is
            not a class of the task.
    """
    labels = mapping["labels"]
    unknown = sorted(set(two_class["label"]) - set(labels))
    if unknown:
        raise ValueError(
            f"The 2-class model answered labels {unknown} that parameters jrte_sentiment.level1.mapping.labels "
            f"do not map (mapped: {sorted(labels)}); add them there."
        )
    problems = mapping_problems(mapping, names)
    if problems:
        raise ValueError(
            "; ".join(f"parameters jrte_sentiment.level1.mapping.{key}: {text}" for key, text in problems) + "."
        )
    unsure = mapping.get("unsure_class")
    mapped = two_class["label"].map(labels)
    if unsure is None:
        return mapped.rename("predicted")
    return mapped.where(two_class["score"] >= mapping["unsure_below"], unsure).rename("predicted")


class EmbeddingZeroShot:
    """A 2-class sentiment classifier with no training: cosine to label descriptions.

    Texts and descriptions are embedded by ``SentenceTransformer.encode`` (mean pooling, the
    e5 prompt, unit length); the class scores are a softmax of the cosine to each class's mean
    description divided by ``temperature``. It answers like transformers' text-classification
    ``pipeline``: a list of ``{"label", "score"}`` for the top class.
    """

    def __init__(self, folder: ModelHandle, descriptions: dict[str, list[str]], params: dict[str, Any]) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(folder.source, device="cpu")
        self.model.max_seq_length = params["max_length"]
        self.params = params
        self.labels = list(descriptions)
        centroids = np.stack([self.embed(descriptions[k]).mean(axis=0) for k in self.labels])
        self.centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(
            texts,
            prompt=self.params["prefix"],
            batch_size=self.params["batch_size"],
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def __call__(self, texts: list[str]) -> list[dict[str, Any]]:
        from scipy.special import softmax

        probs = softmax(self.embed(texts) @ self.centroids.T / self.params["temperature"], axis=1)
        best = probs.argmax(axis=1)
        return [{"label": self.labels[b], "score": float(p[b])} for b, p in zip(best, probs, strict=True)]


def _two_class_model(folder: ModelHandle, params: dict[str, Any]) -> Any:
    if params["method"] == "embedding_zero_shot":
        return EmbeddingZeroShot(folder, params["descriptions"], params["zero_shot"])
    if params["method"] == "pipeline":
        from transformers import pipeline

        clf = pipeline("text-classification", model=folder.source, device="cpu")
        return lambda texts: clf(texts, batch_size=params["zero_shot"]["batch_size"], truncation=True)
    raise ValueError(f"level1.method must be 'embedding_zero_shot' or 'pipeline', not {params['method']!r}.")


def prediction_table(
    data: pd.DataFrame,
    split: str,
    predicted: np.ndarray,
    confidence: np.ndarray,
    probs: np.ndarray | None = None,
    names: list[str] | None = None,
    raw_label: Any = None,
) -> pd.DataFrame:
    """One row per sentence: split, id, text, true, predicted, confidence, length, agreement (+ ``p_<class>``)."""
    table = pd.DataFrame(
        {
            "split": split,
            "id": data["id"].to_numpy(),
            "text": data["text"].to_numpy(),
            "true": data["label_name"].to_numpy(),
            "predicted": predicted,
            "confidence": np.round(confidence.astype(float), 4),
            "length": data["length"].to_numpy(),
            "agreement": np.round(data["agreement"].to_numpy(), 3),
        }
    )
    if probs is not None:
        for j, name in enumerate(names or []):
            table[f"p_{name}"] = probs[:, j].astype(float)
    if raw_label is not None:
        table["model_label"] = np.asarray(raw_label)
    return table


def predict_level1(
    test: pd.DataFrame, level1_model: ModelHandle, params: dict[str, Any], task: dict[str, Any]
) -> pd.DataFrame:
    """Level 1: classify ``test`` with a 2-class model (no training on this corpus), mapped to the task's classes."""
    model = _two_class_model(level1_model, params)
    logger.info("Level 1 (%s): classifying %d sentences", params["method"], len(test))
    two_class = pd.DataFrame(model(test["text"].tolist()))
    predicted = map_two_to_task(two_class, params["mapping"], class_names(task))
    return prediction_table(
        test, "test", predicted.to_numpy(), two_class["score"].to_numpy(), raw_label=two_class["label"]
    )


# ---------------------------------------------------------------- fine-tuning (levels 2, 4, 5)
def vote_shares(data: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The annotators' votes as a distribution over the classes (one row per sentence)."""
    votes = data[[f"votes_{n}" for n in names]].to_numpy(dtype=np.float64)
    return votes / votes.sum(axis=1, keepdims=True)


def balanced_class_weights(data: pd.DataFrame, names: list[str]) -> np.ndarray:
    """scikit-learn's "balanced" weights ``n / (k · n_c)``; a class absent from ``data`` gets weight 0."""
    counts = data["label_name"].value_counts().reindex(names, fill_value=0).to_numpy(dtype=np.float64)
    return np.where(counts > 0, counts.sum() / (len(names) * np.maximum(counts, 1)), 0.0)


def soft_cross_entropy(logits: Any, targets: Any, class_weights: Any = None) -> Any:
    """Cross-entropy against a target distribution (soft labels) or class indices, optionally class-weighted.

    With weights ``w``, each sentence counts ``sum_c t_c w_c`` and the loss is the weighted mean
    (as ``torch.nn.functional.cross_entropy(weight=w)`` for hard targets).
    """
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    if targets.dim() == 1:
        targets = torch.nn.functional.one_hot(targets.long(), logits.shape[-1]).to(logp.dtype)
    targets = targets.to(logp.dtype)
    if class_weights is None:
        return -(targets * logp).sum(-1).mean()
    w = torch.as_tensor(class_weights, dtype=logp.dtype, device=logp.device)
    return -(targets * w * logp).sum() / (targets * w).sum()


POOLINGS = ("first_token", "mean")


def use_pooling(model: Any, pooling: str | None = None) -> Any:
    """Make ``model`` pool as ``pooling`` says (default: what its config recorded), and record it in the config.

    ``first_token`` is the classifier as transformers builds it: the head reads the final hidden state
    of the first token (``<s>`` / ``[CLS]``). ``mean`` puts the mean of the sentence's final hidden
    states (padding left out) in that token's place before the head reads it: the pooling e5 models
    were trained with (Wang et al. 2022, "Text Embeddings by Weakly-Supervised Contrastive
    Pre-training"), whereas their first token was never trained to summarise a sentence. The weights
    and their names are unchanged (the head is the same); only two forward hooks are added, and the
    config key ``sentence_pooling`` saved with the model tells :func:`predict_classifier` to add them
    again to a model loaded from disk.
    """
    pooling = pooling or getattr(model.config, "sentence_pooling", "first_token")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {list(POOLINGS)}, not {pooling!r}.")
    model.config.sentence_pooling = pooling
    if pooling == "first_token" or getattr(model, "_mean_pooling_hooks", None):
        return model
    encoder = getattr(model.base_model, "encoder", None)
    if encoder is None:
        raise ValueError(f"pooling: mean needs a model with an encoder stack; {type(model).__name__} has none.")
    mask: dict[str, Any] = {}

    def keep_mask(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        # forward(input_ids, attention_mask, ...): by keyword (the Trainer, predict_classifier) or by position
        mask["value"] = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)

    def mean_into_first_token(module: Any, args: Any, output: Any) -> Any:
        import torch

        hidden = output[0]
        m = mask.get("value")
        m = hidden.new_ones(hidden.shape[:2]) if m is None else m.to(hidden.dtype)
        mean = (hidden * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp(min=1)
        pooled = torch.cat([mean.unsqueeze(1), hidden[:, 1:]], dim=1)
        if isinstance(output, tuple):
            return (pooled, *output[1:])
        output["last_hidden_state"] = pooled
        return output

    model._mean_pooling_hooks = (
        model.register_forward_pre_hook(keep_mask, with_kwargs=True),
        encoder.register_forward_hook(mean_into_first_token),
    )
    return model


def _encode(tokenizer: Any, data: pd.DataFrame, names: list[str], max_length: int, prefix: str, soft: bool) -> Any:
    from datasets import Dataset

    labels = vote_shares(data, names).tolist() if soft else [names.index(n) for n in data["label_name"]]
    ds = Dataset.from_dict({"text": [prefix + t for t in data["text"]], "labels": labels})
    return ds.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True, remove_columns=["text"]
    )


def _macro_scores(eval_pred: Any) -> dict[str, float]:
    from scipy.special import log_softmax
    from sklearn.metrics import accuracy_score, f1_score

    logits, labels = np.asarray(eval_pred[0]), np.asarray(eval_pred[1])
    pred = logits.argmax(axis=-1)
    # Plain cross-entropy: the Trainer's eval_loss includes label smoothing or class weights
    # when they are on, which would make runs with and without them incomparable.
    nll = -log_softmax(logits, axis=-1)[np.arange(len(labels)), labels].mean()
    return {
        "cross_entropy": float(nll),
        "accuracy": accuracy_score(labels, pred),
        "macro_f1": f1_score(labels, pred, average="macro", labels=np.arange(logits.shape[-1]), zero_division=0),
    }


def run_trainer(training: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """A run's ``TrainingArguments`` keys: its own ``trainer`` block on top of the shared ``training.trainer``."""
    return {**training["trainer"], **(run.get("trainer") or {})}


def trainer_arguments(scratch: str, training: dict[str, Any], run: dict[str, Any]) -> Any:
    """``TrainingArguments``: the fixed settings of this pipeline, then ``training.trainer`` and the run's ``trainer``.

    The parameters use ``TrainingArguments``' own key names, so any of its knobs can be set in YAML.
    """
    from transformers import TrainingArguments

    early = run.get("early_stopping_patience")
    fixed = {
        "output_dir": scratch,
        "eval_strategy": "epoch",
        "logging_strategy": "epoch",
        "save_strategy": "epoch" if early is not None else "no",
        "save_only_model": True,
        "save_total_limit": 2,
        "load_best_model_at_end": early is not None,
        "metric_for_best_model": "eval_cross_entropy",
        "greater_is_better": False,
        "use_cpu": True,
        "report_to": "none",
        "dataloader_num_workers": 0,
    }
    return TrainingArguments(**{**fixed, **run_trainer(training, run)})


def fine_tune_classifier(
    train: pd.DataFrame,
    dev: pd.DataFrame,
    base_model: ModelHandle,
    training: dict[str, Any],
    run: dict[str, Any],
    task: dict[str, Any],
) -> tuple[ModelHandle, dict[str, Any]]:
    """Fine-tune ``base_model`` with a head over the task's classes on ``train``, evaluated on ``dev`` every epoch.

    Args:
        training: shared by every run: ``trainer`` (``TrainingArguments`` keys), ``max_length``,
            ``prefix``, ``freeze_embeddings`` (the token embedding matrix is most of the weights:
            freezing it makes a step much cheaper on CPU).
        run: this run's ``enabled``, ``trainer`` (``TrainingArguments`` keys on top of the shared
            ones: the Level 4 countermeasures weight decay, label smoothing, schedule), ``config``
            (model-config keys such as ``hidden_dropout_prob``), ``early_stopping_patience`` (null: off;
            on: the epoch with the lowest validation loss is restored) and the Level 5 switches
            ``soft_labels`` (train on the annotators' vote shares), ``class_weights``
            (null or ``balanced``) and ``average_last_epochs`` (null, or k: the kept weights are the
            mean of the trainable weights at the end of the last k epochs run, in place of the
            restored best epoch: checkpoint averaging along one run, Izmailov et al. 2018), and
            ``pooling`` (``first_token``, the default, or ``mean``: :func:`use_pooling`).

    Returns:
        The fine-tuned classifier as a ``ModelHandle`` (one with no model when the run is switched off) and the training
        metrics: ``seed`` (the run's own, which also drew the head's initial weights); ``history``, one dict per
        epoch with ``epoch``, ``train_loss``, ``eval_loss``, ``eval_cross_entropy`` (without smoothing or
        weights: the validation loss compared across runs), ``eval_accuracy``, ``eval_macro_f1``; ``best_epoch``;
        ``epochs_run``;
        ``averaged_epochs`` (the epochs whose weights were averaged, or null).
    """
    if not run["enabled"]:
        logger.info("Run switched off (enabled: false): not trained")
        return ModelHandle(f"{base_model.source}: not fine-tuned (run switched off)"), {"enabled": False, "history": []}

    import tempfile

    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer, set_seed

    names = class_names(task)
    own_loss = [k for k in ("soft_labels", "class_weights") if run.get(k)]
    if own_loss and (run_trainer(training, run).get("label_smoothing_factor") or 0) > 0:
        raise ValueError(
            f"label_smoothing_factor has no effect with {' and '.join(own_loss)} (the pipeline gives the Trainer its "
            "own loss, and the Trainer then skips label smoothing); set the run's trainer.label_smoothing_factor "
            "to 0.0, or switch them off."
        )
    # The run's own seed (its trainer block on top of the shared one): it draws the classifier head's
    # initial weights here, before the Trainer seeds dropout and the batch order with the same number.
    seed = run_trainer(training, run)["seed"]
    set_seed(seed)
    tokenizer = base_model.tokenizer
    model = base_model.from_pretrained(
        "AutoModelForSequenceClassification",
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={c: i for i, c in enumerate(names)},
        **(run.get("config") or {}),
    )
    use_pooling(model, run.get("pooling") or "first_token")
    if training.get("freeze_embeddings"):
        for p in model.base_model.embeddings.word_embeddings.parameters():
            p.requires_grad = False
    soft = bool(run.get("soft_labels"))
    weights = balanced_class_weights(train, names) if run.get("class_weights") == "balanced" else None
    if run.get("class_weights") not in (None, "balanced"):
        raise ValueError(f"class_weights must be null or 'balanced', not {run['class_weights']!r}.")
    loss_func = None
    if soft or weights is not None:
        # A per-batch mean: with one gradient-accumulation step this is the Trainer's own scaling.
        def loss_func(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
            return soft_cross_entropy(outputs["logits"], labels, weights)

    early = run.get("early_stopping_patience")
    average = run.get("average_last_epochs")
    if average is not None and (isinstance(average, bool) or not isinstance(average, int) or average < 1):
        raise ValueError(f"average_last_epochs must be null or a positive number of epochs, not {average!r}.")
    snapshots = _EpochSnapshots(average) if average else None
    train_ds = _encode(tokenizer, train, names, training["max_length"], training["prefix"], soft)
    dev_ds = _encode(tokenizer, dev, names, training["max_length"], training["prefix"], soft=False)
    # Checkpoints are the Trainer's scratch space for restoring the best epoch; the kept
    # model goes through the catalog.
    with tempfile.TemporaryDirectory(prefix="jrte_trainer_") as scratch:
        trainer = Trainer(
            model=model,
            args=trainer_arguments(scratch, training, run),
            train_dataset=train_ds,
            eval_dataset=dev_ds,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=_macro_scores,
            compute_loss_func=loss_func,
            callbacks=[EarlyStoppingCallback(early_stopping_patience=early)] if early is not None else [],
        )
        if snapshots is not None:
            trainer.add_callback(snapshots.callback())
        result = trainer.train()
        history = loss_history(trainer.state.log_history)
    averaged_epochs = snapshots.load_mean_into(trainer.model) if snapshots is not None else None
    best = min(history, key=lambda r: r.get("eval_cross_entropy", np.inf))["epoch"] if history else None
    logger.info(
        "Fine-tuned %d epochs in %.0f s (seed %d, soft labels %s, class weights %s, pooling %s); lowest validation"
        " loss at epoch %s\n%s",
        len(history),
        result.metrics["train_runtime"],
        seed,
        soft,
        run.get("class_weights"),
        model.config.sentence_pooling,
        best,
        pd.DataFrame(history).to_string(index=False),
    )
    metrics = {
        "enabled": True,
        "seed": seed,
        "history": history,
        "best_epoch": best,
        "epochs_run": len(history),
        "restored_best": early is not None and averaged_epochs is None,
        "averaged_epochs": averaged_epochs,
        "pooling": model.config.sentence_pooling,
        "class_weights": None if weights is None else dict(zip(names, weights.round(4).tolist(), strict=True)),
        "train_runtime_s": float(result.metrics["train_runtime"]),
        "n_train": int(len(train)),
        "n_dev": int(len(dev)),
    }
    return ModelHandle(f"{base_model.source} fine-tuned", model=trainer.model.eval(), tokenizer=tokenizer), metrics


class _EpochSnapshots:
    """The trainable weights at the end of each of the last ``k`` epochs, and their mean (checkpoint averaging).

    Only the parameters that train are copied (the frozen token embeddings, most of the model, are
    the same at every epoch); ``k`` copies of the rest stay in memory (about 90 MB each for
    multilingual-e5-small with frozen embeddings).
    """

    def __init__(self, k: int) -> None:
        from collections import deque

        self.k = k
        self.kept: deque[tuple[float, dict[str, Any]]] = deque(maxlen=k)

    def callback(self) -> Any:
        from transformers import TrainerCallback

        outer = self

        class _Snapshot(TrainerCallback):
            def on_epoch_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
                weights = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
                outer.kept.append((float(state.epoch), weights))

        return _Snapshot()

    def load_mean_into(self, model: Any) -> list[float]:
        """Set the model's trainable weights to the mean of the kept epochs'; returns those epochs."""
        import torch

        if not self.kept:
            raise RuntimeError("average_last_epochs: no epoch ended, so there are no weights to average.")
        epochs = [round(epoch, 4) for epoch, _ in self.kept]
        mean = average_state_dicts([weights for _, weights in self.kept])
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name in mean:
                    parameter.copy_(mean[name])
        logger.info(
            "Checkpoint averaging: the weights are the mean of epochs %s (asked for the last %d)", epochs, self.k
        )
        return epochs


def loss_history(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dict per epoch (key ``epoch``) from the Trainer's logs (training and evaluation are logged separately)."""
    rows: dict[float, dict[str, Any]] = {}
    for entry in log_history:
        epoch = entry.get("epoch")
        if epoch is None:
            continue
        row = rows.setdefault(round(epoch, 4), {"epoch": round(epoch, 4)})
        if "loss" in entry:
            row["train_loss"] = entry["loss"]
        for key in ("eval_loss", "eval_cross_entropy", "eval_accuracy", "eval_macro_f1"):
            if key in entry:
                row[key] = entry[key]
    return [r for r in rows.values() if "eval_loss" in r]


def predict_classifier(
    classifier: ModelHandle, params: dict[str, Any], names: list[str], **splits: pd.DataFrame
) -> pd.DataFrame:
    """Predictions (class, softmax confidence, ``p_<class>``) of a fine-tuned classifier on each named split."""
    import torch

    model, tokenizer = use_pooling(classifier.model).eval(), classifier.tokenizer
    batch_size = params["trainer"]["per_device_eval_batch_size"]
    tables = []
    for split, data in splits.items():
        texts = [params["prefix"] + t for t in data["text"]]
        # Batches of similar length waste little on padding.
        order = np.argsort([len(t) for t in texts], kind="stable")
        p = np.zeros((len(texts), len(names)), np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=params["max_length"],
                return_tensors="pt",
            )
            with torch.inference_mode():
                p[idx] = torch.softmax(model(**enc).logits, dim=-1).numpy()
        tables.append(prediction_table(data, split, np.array(names)[p.argmax(1)], p.max(1), p, names))
        logger.info("Predicted %d %s sentences", len(data), split)
    return pd.concat(tables, ignore_index=True)


def predict_run(
    classifier: ModelHandle,
    train: pd.DataFrame,
    dev: pd.DataFrame,
    test: pd.DataFrame,
    training: dict[str, Any],
    run: dict[str, Any],
    task: dict[str, Any],
) -> pd.DataFrame:
    """Predictions on the run's ``predict_splits`` (Level 2 predicts train too, for Level 3); empty when switched off."""
    if not run["enabled"]:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    data = {"train": train, "dev": dev, "test": test}
    return predict_classifier(classifier, training, class_names(task), **{s: data[s] for s in run["predict_splits"]})


# ---------------------------------------------------------------- level 5: a decision rule tuned on dev
def apply_class_bias(predictions: pd.DataFrame, names: list[str], target: str, bias: float) -> pd.DataFrame:
    """Add ``bias`` to the log-probability of class ``target`` and re-take the argmax (no retraining).

    ``confidence`` becomes the model's own probability of the class now predicted (the ``p_`` columns
    are left as the model gave them).
    """
    probs = predictions[[f"p_{n}" for n in names]].to_numpy(dtype=np.float64)
    logp = np.log(np.clip(probs, 1e-12, None))
    logp[:, names.index(target)] += bias
    chosen = logp.argmax(1)
    out = predictions.copy()
    out["predicted"] = np.array(names)[chosen]
    out["confidence"] = np.round(probs[np.arange(len(probs)), chosen], 4)
    return out


def _best_class_bias(
    dev: pd.DataFrame, names: list[str], target: str, grid: np.ndarray
) -> tuple[float, float, list[float]]:
    """The bias of ``grid`` with the highest macro-F1 on ``dev`` (among equals, the one closest to 0),
    its macro-F1, and the macro-F1 of every grid point (:func:`apply_class_bias`'s rule, from confusion counts)."""
    logp = np.log(np.clip(dev[[f"p_{n}" for n in names]].to_numpy(dtype=np.float64), 1e-12, None))
    true, column, k = class_codes(dev["true"], names), names.index(target), len(names)
    scores = []
    for b in grid:
        shifted = logp.copy()
        shifted[:, column] += b
        scores.append(macro_f1_codes(true, shifted.argmax(1), k))
    best = max(range(len(grid)), key=lambda i: (round(scores[i], 12), -abs(grid[i])))
    return float(grid[best]), scores[best], scores


def tune_class_bias(
    predictions: pd.DataFrame, params: dict[str, Any], task: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Level 5 decision rule: the bias on ``params["class"]``'s logit that maximises dev macro-F1.

    The grid is ``params["grid"]`` (``[start, stop, step]``); among equal dev macro-F1 the
    bias closest to 0 wins, so no change is made without a gain on dev. The test (and any other
    non-dev) predictions use the bias tuned on the whole dev split.

    The dev predictions are cross-fitted, so that the dev split can still judge the rule against the
    other candidates: the dev sentences are dealt into ``params["cross_fit_folds"]`` folds (seeded by
    ``params["cross_fit_seed"]``) and each fold is predicted with the bias tuned on the other folds.
    Tuned and scored on the same sentences, the rule could never score below Level 2 on dev (a bias
    of 0 is Level 2 itself), whatever it does on new sentences. With fewer than two dev sentences a
    fold, the dev predictions are the in-sample ones, and ``dev_predictions`` says so.
    """
    if not params["enabled"]:
        return predictions.iloc[0:0], {"enabled": False}
    names = class_names(task)
    target = params["class"]
    if target not in names:
        raise ValueError(f"level5.decision_rule.class {target!r} is not a class of the task ({names}).")
    is_dev = (predictions["split"] == "dev").to_numpy()
    dev = predictions[is_dev]
    if dev.empty:
        raise ValueError("the decision rule is tuned on dev: the Level 2 predictions hold no dev split.")
    start, stop, step = params["grid"]
    grid = np.round(np.arange(start, stop + step / 2, step), 6)
    bias, best, scores = _best_class_bias(dev, names, target, grid)
    out = apply_class_bias(predictions, names, target, bias)

    folds = int(params["cross_fit_folds"])
    tuned: dict[str, Any] = {"enabled": True, "class": target, "bias": bias, "dev_macro_f1": best}
    if folds >= 2 and len(dev) >= 2 * folds:
        fold_of = np.random.default_rng(params["cross_fit_seed"]).permutation(len(dev)) % folds
        dev_rows = np.flatnonzero(is_dev)
        columns = [out.columns.get_loc(c) for c in ("predicted", "confidence")]
        fold_biases = []
        for k in range(folds):
            fold_bias = _best_class_bias(dev.iloc[fold_of != k], names, target, grid)[0]
            held = dev_rows[fold_of == k]
            out.iloc[held, columns] = apply_class_bias(predictions.iloc[held], names, target, fold_bias)[
                ["predicted", "confidence"]
            ].to_numpy()
            fold_biases.append(fold_bias)
        tuned.update(dev_predictions="cross-fitted", cross_fit_folds=folds, fold_biases=fold_biases)
    else:
        logger.warning(
            "Decision rule: %s; its dev predictions are scored on the sentences the bias was tuned on "
            "(an optimistic dev macro-F1 for choosing among the Level 5 candidates)",
            f"{len(dev)} dev sentences are too few for {folds} cross-fitting folds"
            if folds >= 2
            else "cross-fitting is off (cross_fit_folds < 2)",
        )
        tuned.update(dev_predictions="in-sample", cross_fit_folds=folds)
    logger.info(
        "Decision rule: bias %+.2f on %s (dev macro-F1 %.4f; at 0: %.4f); dev predictions %s%s",
        bias,
        target,
        best,
        scores[int(np.argmin(np.abs(grid)))],
        tuned["dev_predictions"],
        f" (fold biases {', '.join(f'{b:+.2f}' for b in tuned['fold_biases'])})" if "fold_biases" in tuned else "",
    )
    tuned["grid"] = [{"bias": float(b), "dev_macro_f1": float(s)} for b, s in zip(grid, scores, strict=True)]
    return out, tuned


# ---------------------------------------------------------------- level 5: an ensemble of the trained runs
def average_runs(params: dict[str, Any], task: dict[str, Any], **runs: pd.DataFrame) -> pd.DataFrame:
    """Level 5 ensemble: the mean class probabilities of ``params["members"]`` (runs' predictions), argmax.

    No training of its own: the members are runs trained anyway (Level 2 and the Level 5 runs),
    each from its own labels or loss, so their errors differ. Only the splits every member
    predicted are kept (dev and test); the members must hold the same sentences there, in any order
    (matched on split and id; the rows come in the first member's order). A member
    switched off is left out (logged); with fewer than two members left the ensemble is off and
    its predictions are empty.
    """
    empty = pd.DataFrame(columns=PREDICTION_COLUMNS)
    if not params["enabled"]:
        return empty
    unknown = [m for m in params["members"] if m not in runs]
    if unknown:
        raise ValueError(f"level5.ensemble.members {unknown} are not runs of the pipeline; choose from {sorted(runs)}.")
    names = class_names(task)
    cols = [f"p_{n}" for n in names]
    members = {m: runs[m] for m in params["members"] if not runs[m].empty}
    skipped = sorted(set(params["members"]) - set(members))
    if skipped:
        logger.warning("Ensemble: %s switched off, left out of the ensemble", skipped)
    if len(members) < 2:
        logger.warning("Ensemble: fewer than two members trained (%s); no ensemble", sorted(members))
        return empty
    splits = sorted(set.intersection(*(set(p["split"]) for p in members.values())))
    first_name, first = next(iter(members.items()))
    first = first[first["split"].isin(splits)].reset_index(drop=True)
    keys = pd.MultiIndex.from_frame(first[["split", "id"]].astype(str))
    probs = np.zeros((len(first), len(names)))
    for member, preds in members.items():
        # matched on (split, id), not on row order: a run writes its splits in its predict_splits' order
        preds = preds[preds["split"].isin(splits)]
        preds = preds.set_index(pd.MultiIndex.from_frame(preds[["split", "id"]].astype(str)))
        repeated = preds.index[preds.index.duplicated()].unique()
        missing, extra = keys.difference(preds.index), preds.index.difference(keys)
        if len(repeated) or len(missing) or len(extra):
            found = (
                ("repeats {}", repeated),
                ("lacks {}", missing),
                (f"has {{}} that {first_name!r} lacks", extra),
            )
            raise ValueError(
                f"Ensemble: the predictions of {member!r} and {first_name!r} are not of the same sentences on "
                f"{splits}: {member!r} "
                + "; ".join(
                    f"{what.format(f'{len(ids)} sentence' + 's' * (len(ids) != 1))} (e.g. {tuple(ids[0])})"
                    for what, ids in found
                    if len(ids)
                )
                + ". The runs must predict the same splits of one split_pn output: run them again after split_pn."
            )
        probs += preds.loc[keys, cols].to_numpy(dtype=np.float64) / len(members)
    out = first.drop(columns=cols)
    out["predicted"] = np.array(names)[probs.argmax(1)]
    out["confidence"] = np.round(probs.max(1), 4)
    for j, col in enumerate(cols):
        out[col] = probs[:, j]
    logger.info("Ensemble of %s on %s: %d sentences", sorted(members), splits, len(out))
    return out


def train_seed_ensemble(
    train: pd.DataFrame,
    dev: pd.DataFrame,
    test: pd.DataFrame,
    base_model: ModelHandle,
    training: dict[str, Any],
    level2: dict[str, Any],
    params: dict[str, Any],
    level2_predictions: pd.DataFrame,
    task: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Level 5 seed ensemble: Level 2's recipe trained again with each of ``params["seeds"]``, averaged with Level 2.

    Each extra model is Level 2's run with ``trainer.seed`` and ``trainer.data_seed`` set to one seed: a
    different initial head, dropout and batch order, everything else the same. The candidate's predictions
    are the mean class probabilities of Level 2 and those models on dev and test (:func:`average_runs`).
    The extra models are used for their predictions and not kept; their predictions are, so that each
    member can be scored or pooled again without retraining. Switched off (or Level 2 switched off):
    empty predictions.

    Returns:
        The ensemble's predictions; the extra members' own predictions on dev and test, one table with
        a ``member`` column (``seed_<s>``) in front; and, per extra seed, its training summary
        (``members``: ``seed_<s>`` -> best epoch, epochs run, training seconds, the per-epoch ``history``).
    """
    if not params["enabled"] or not level2["enabled"]:
        off = {"enabled": False, "members": {}}
        return pd.DataFrame(columns=PREDICTION_COLUMNS), pd.DataFrame(columns=["member", *PREDICTION_COLUMNS]), off
    own = run_trainer(training, level2)["seed"]
    seeds = list(params["seeds"])
    if not seeds or own in seeds or len(set(seeds)) != len(seeds):
        raise ValueError(
            f"level5.seed_ensemble.seeds {seeds} must be one or more distinct seeds other than Level 2's own ({own}), "
            "which is a member already; change the list in parameters_jrte_sentiment.yml."
        )
    members = {"level2": level2_predictions}
    summaries: dict[str, Any] = {}
    for i, seed in enumerate(seeds, 1):
        logger.info("Seed ensemble: member %d of %d, Level 2's recipe with seed %d", i, len(seeds), seed)
        run = {
            **level2,
            "trainer": {**(level2.get("trainer") or {}), "seed": seed, "data_seed": seed},
            "predict_splits": ["dev", "test"],
        }
        classifier, metrics = fine_tune_classifier(train, dev, base_model, training, run, task)
        members[f"seed_{seed}"] = predict_run(classifier, train, dev, test, training, run, task)
        del classifier
        summaries[f"seed_{seed}"] = {
            k: metrics[k]
            for k in (
                "seed",
                "best_epoch",
                "epochs_run",
                "restored_best",
                "averaged_epochs",
                "train_runtime_s",
                "history",
            )
        }
    ensemble = average_runs({"enabled": True, "members": list(members)}, task, **members)
    extra = pd.concat(
        [preds.assign(member=name) for name, preds in members.items() if name != "level2"], ignore_index=True
    )
    extra = extra[["member", *[c for c in extra.columns if c != "member"]]]
    return ensemble, extra, {"enabled": True, "level2_seed": own, "seeds": seeds, "members": summaries}
