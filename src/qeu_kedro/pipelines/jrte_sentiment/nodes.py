"""Nodes of the ``jrte_sentiment`` pipeline: JRTE ``pn`` 3-class sentiment, levels 1 to 4."""

from __future__ import annotations

import json
import logging
import textwrap
from typing import Any

import numpy as np
import pandas as pd

from qeu_kedro.validation import Column, check_table, fail

logger = logging.getLogger(__name__)

# The corpus's label values and the names the original reports them with.
LABEL_NAMES = {1: "positive", 0: "neutral", -1: "negative"}
# Class index order of the classifiers and of every report and confusion matrix.
CLASSES = ["negative", "neutral", "positive"]

PN_COLUMNS = (
    Column("id", "str", unique=True),
    Column("label", "int", allowed=(1, 0, -1), hint="pn.tsv labels are 1 (positive), 0 (neutral), -1 (negative)."),
    Column("text", "str"),
    Column("judges", "str", hint='judges holds the annotators\' JSON vote counts, e.g. {"1": 2, "0": 1}.'),
    Column("usage", "str", allowed=("train", "dev", "test"), hint="usage names the split: train, dev or test."),
)


# ---------------------------------------------------------------- data
def _parse_judges(judges: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Total votes and the share of the most common vote, failing at the first bad JSON."""
    totals, agreement = np.zeros(len(judges), int), np.zeros(len(judges))
    for i, raw in enumerate(judges):
        try:
            votes = json.loads(raw)
        except json.JSONDecodeError as exc:
            fail("pn", "judges", i, f"not valid JSON ({exc.msg} at character {exc.pos}): {raw!r}", PN_COLUMNS[3].hint)
        if (
            not isinstance(votes, dict)
            or not votes
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in votes.values())
            or sum(votes.values()) == 0
        ):
            fail("pn", "judges", i, f"expected a JSON object of vote counts, found {raw!r}", PN_COLUMNS[3].hint)
        totals[i] = sum(votes.values())
        agreement[i] = max(votes.values()) / totals[i]
    return totals, agreement


def check_pn(pn: pd.DataFrame) -> pd.DataFrame:
    """Check the raw ``pn`` table and add ``label_name``, ``n_judges``, ``agreement``, ``length``.

    Raises:
        RawDataError: a missing column, a label other than 1 / 0 / -1, an unknown usage,
            a duplicate id or judges that are not a JSON object of vote counts; the message
            names the dataset, the column and the first bad row.
    """
    if isinstance(pn, pd.DataFrame) and not pd.api.types.is_integer_dtype(pn.index):
        # pandas puts the extra leading fields of a row longer than the named columns into the index
        fail("pn", None, None, f"rows have more than the {len(PN_COLUMNS)} tab-separated fields "
             f"{[c.name for c in PN_COLUMNS]} (an extra column, or a tab inside a text): the fields are shifted, "
             f"row 0 starts with {pn.index[0]!r}", "Remove the extra field; pn.tsv has exactly five fields per line.")
    checked = check_table(pn, "pn", PN_COLUMNS)
    checked["label_name"] = checked["label"].map(LABEL_NAMES)
    checked["n_judges"], checked["agreement"] = _parse_judges(checked["judges"])
    checked["length"] = checked["text"].str.len()
    logger.info(
        "pn: %d rows, %s; labels %s",
        len(checked),
        checked["usage"].value_counts().to_dict(),
        checked["label_name"].value_counts().to_dict(),
    )
    return checked.drop(columns="judges")


def split_pn(pn: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split by ``usage`` into train, dev and test; ``params["max_rows"]`` caps a split (stratified, seeded).

    A cap makes a bounded run (CI) on the real corpus; ``null`` keeps the whole split.
    """
    out = []
    for split in ("train", "dev", "test"):
        part = pn[pn["usage"] == split]
        if part.empty:
            fail("pn", "usage", None, f"no row has usage '{split}'", "Each split needs rows.")
        cap = (params.get("max_rows") or {}).get(split)
        if cap and len(part) > cap:
            frac = cap / len(part)
            part = part.groupby("label", group_keys=False).sample(frac=frac, random_state=params["seed"])
        out.append(part.reset_index(drop=True))
        logger.info("%s: %d rows", split, len(out[-1]))
    return tuple(out)


# ---------------------------------------------------------------- level 1
def map_two_to_three(two_class: pd.DataFrame, mapping: dict[str, Any]) -> pd.Series:
    """Resolve a 2-class model's ``label``/``score`` against the three classes.

    Args:
        two_class: columns ``label`` (the model's label name) and ``score`` (its probability).
        mapping: ``labels`` (model label -> "positive" / "negative") and ``neutral_below``:
            a prediction whose score is below it is "neutral" (the model is unsure between
            the two poles, which is what a neutral sentence looks like to it).

    Raises:
        ValueError: a model label that ``mapping["labels"]`` does not name.
    """
    labels = mapping["labels"]
    unknown = sorted(set(two_class["label"]) - set(labels))
    if unknown:
        raise ValueError(
            f"The 2-class model answered labels {unknown} that parameters jrte_sentiment.level1.mapping.labels "
            f"do not map (mapped: {sorted(labels)}); add them there."
        )
    bad = sorted(set(labels.values()) - {"positive", "negative"})
    if bad:
        raise ValueError(f"mapping.labels must map to 'positive' or 'negative', not {bad}.")
    three = two_class["label"].map(labels)
    return three.where(two_class["score"] >= mapping["neutral_below"], "neutral").rename("predicted")


class EmbeddingZeroShot:
    """A 2-class sentiment classifier with no training: cosine to label descriptions.

    Each text and each description is embedded with the encoder (mean pooling, e5's
    ``query: `` prefix); the class scores are a softmax of the mean cosine to each class's
    descriptions divided by ``temperature``. It answers like transformers' text-classification
    ``pipeline``: a list of ``{"label", "score"}`` for the top class.
    """

    def __init__(self, folder: Any, descriptions: dict[str, list[str]], params: dict[str, Any]) -> None:
        self.tokenizer = folder.tokenizer()
        self.model = folder.model("AutoModel", add_pooling_layer=False).eval()
        self.prefix = params["prefix"]
        self.batch_size = params["batch_size"]
        self.max_length = params["max_length"]
        self.temperature = params["temperature"]
        self.labels = list(descriptions)
        self.centroids = np.stack([self.embed(descriptions[k]).mean(axis=0) for k in self.labels])

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        order = np.argsort([len(t) for t in texts], kind="stable")  # little padding per batch
        out = np.zeros((len(texts), self.model.config.hidden_size), np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = [self.prefix + texts[i] for i in idx]
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out[idx] = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
        return out

    def __call__(self, texts: list[str]) -> list[dict[str, Any]]:
        from scipy.special import softmax

        # Mean of unit vectors, so cosine = dot / norm of the centroid.
        sims = self.embed(texts) @ (self.centroids / np.linalg.norm(self.centroids, axis=1, keepdims=True)).T
        probs = softmax(sims / self.temperature, axis=1)
        best = probs.argmax(axis=1)
        return [{"label": self.labels[b], "score": float(p[b])} for b, p in zip(best, probs, strict=True)]


def _two_class_model(folder: Any, params: dict[str, Any]) -> Any:
    if params["method"] == "embedding_zero_shot":
        return EmbeddingZeroShot(folder, params["descriptions"], params["zero_shot"])
    if params["method"] == "pipeline":
        from transformers import pipeline

        clf = pipeline("text-classification", model=folder.path, device="cpu")
        return lambda texts: clf(texts, batch_size=params["zero_shot"]["batch_size"], truncation=True)
    raise ValueError(f"level1.method must be 'embedding_zero_shot' or 'pipeline', not {params['method']!r}.")


def predict_level1(test: pd.DataFrame, level1_model: Any, params: dict[str, Any]) -> pd.DataFrame:
    """Level 1: classify ``test`` with a 2-class model (no training on this corpus), mapped to 3 classes."""
    model = _two_class_model(level1_model, params)
    logger.info("Level 1 (%s): classifying %d sentences", params["method"], len(test))
    two_class = pd.DataFrame(model(test["text"].tolist()))
    predicted = map_two_to_three(two_class, params["mapping"])
    return _prediction_table(test, "test", predicted.to_numpy(), two_class["score"].to_numpy(), two_class["label"])


def _prediction_table(
    data: pd.DataFrame, split: str, predicted: np.ndarray, confidence: np.ndarray, raw_label: Any = None
) -> pd.DataFrame:
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
    if raw_label is not None:
        table["model_label"] = np.asarray(raw_label)
    return table


# ---------------------------------------------------------------- level 2 / level 4
def _encode(tokenizer: Any, data: pd.DataFrame, max_length: int, prefix: str) -> Any:
    from datasets import Dataset

    ds = Dataset.from_dict(
        {"text": [prefix + t for t in data["text"]], "labels": [CLASSES.index(n) for n in data["label_name"]]}
    )
    return ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True, remove_columns=["text"])


def _macro_scores(eval_pred: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    from scipy.special import log_softmax

    logits, labels = np.asarray(eval_pred[0]), np.asarray(eval_pred[1])
    pred = logits.argmax(axis=-1)
    # Plain cross-entropy: the Trainer's eval_loss includes label smoothing when it is on,
    # which would make runs with and without it incomparable.
    nll = -log_softmax(logits, axis=-1)[np.arange(len(labels)), labels].mean()
    return {
        "cross_entropy": float(nll),
        "accuracy": accuracy_score(labels, pred),
        "macro_f1": f1_score(labels, pred, average="macro"),
    }


def fine_tune_classifier(
    train: pd.DataFrame, dev: pd.DataFrame, base_model: Any, training: dict[str, Any], countermeasures: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fine-tune ``base_model`` with a 3-class head on ``train``, evaluated on ``dev`` every epoch.

    Args:
        training: ``epochs``, ``max_steps``, ``learning_rate``, ``batch_size``, ``max_length``,
            ``prefix``, ``seed``, ``group_by_length``, ``freeze_embeddings`` (the token embedding
            matrix is most of the weights: freezing it makes a step much cheaper on CPU).
        countermeasures: the Level 4 knobs: ``early_stopping_patience`` (null: off; on: the
            model with the lowest validation loss is restored), ``weight_decay``,
            ``label_smoothing``, ``hidden_dropout`` / ``attention_dropout`` / ``classifier_dropout``
            (null keeps the model's own), ``lr_scheduler`` and ``warmup_ratio``.

    Returns:
        ``{"model", "tokenizer"}`` and the loss history: one row per epoch with
        ``train_loss``, ``eval_loss``, ``eval_cross_entropy`` (without label smoothing: the
        validation loss compared across runs and used for early stopping), ``eval_accuracy``,
        ``eval_macro_f1``.
    """
    import tempfile

    from transformers import (
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    set_seed(training["seed"])
    cm = countermeasures
    tokenizer = base_model.tokenizer()
    dropout = {
        key: cm[name]
        for key, name in (
            ("hidden_dropout_prob", "hidden_dropout"),
            ("attention_probs_dropout_prob", "attention_dropout"),
            ("classifier_dropout", "classifier_dropout"),
        )
        if cm.get(name) is not None
    }
    model = base_model.model(
        "AutoModelForSequenceClassification",
        num_labels=len(CLASSES),
        id2label=dict(enumerate(CLASSES)),
        label2id={c: i for i, c in enumerate(CLASSES)},
        **dropout,
    )
    if training.get("freeze_embeddings"):
        for p in model.base_model.embeddings.word_embeddings.parameters():
            p.requires_grad = False
    early = cm.get("early_stopping_patience")
    train_ds = _encode(tokenizer, train, training["max_length"], training["prefix"])
    dev_ds = _encode(tokenizer, dev, training["max_length"], training["prefix"])
    # Checkpoints are the Trainer's scratch space for restoring the best epoch; the kept
    # model goes through the catalog.
    with tempfile.TemporaryDirectory(prefix="jrte_trainer_") as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            num_train_epochs=training["epochs"],
            max_steps=training.get("max_steps") or -1,
            learning_rate=training["learning_rate"],
            per_device_train_batch_size=training["batch_size"],
            per_device_eval_batch_size=training["eval_batch_size"],
            weight_decay=cm["weight_decay"],
            label_smoothing_factor=cm["label_smoothing"],
            lr_scheduler_type=cm["lr_scheduler"],
            warmup_steps=cm["warmup_ratio"],  # transformers 5: a float below 1 is a ratio of the steps
            eval_strategy="epoch",
            logging_strategy="epoch",
            save_strategy="epoch" if early is not None else "no",
            save_only_model=True,
            save_total_limit=2,
            load_best_model_at_end=early is not None,
            metric_for_best_model="eval_cross_entropy",
            greater_is_better=False,
            seed=training["seed"],
            data_seed=training["seed"],
            # Batches of similar length: short reviews are not padded to the longest one.
            train_sampling_strategy="group_by_length" if training.get("group_by_length", True) else "random",
            use_cpu=True,
            report_to="none",
            dataloader_num_workers=0,
            disable_tqdm=not training.get("progress_bar", True),
        )
        callbacks = [EarlyStoppingCallback(early_stopping_patience=early)] if early is not None else []
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=dev_ds,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=_macro_scores,
            callbacks=callbacks,
        )
        result = trainer.train()
        history = _loss_history(trainer.state.log_history)
        best = trainer.state.best_model_checkpoint
    logger.info(
        "Fine-tuned %d epochs in %.0f s (%s); best checkpoint: %s\n%s",
        len(history),
        result.metrics["train_runtime"],
        "with countermeasures" if early is not None else "no early stopping",
        best,
        history.to_string(index=False),
    )
    return {"model": trainer.model.eval(), "tokenizer": tokenizer}, history


def _loss_history(log_history: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per epoch from the Trainer's logs (training and evaluation are logged separately)."""
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
    table = pd.DataFrame(list(rows.values()))
    return table.dropna(subset=["eval_loss"]).reset_index(drop=True) if "eval_loss" in table else table


def predict_classifier(
    classifier: Any, params: dict[str, Any], **splits: pd.DataFrame
) -> pd.DataFrame:
    """Predictions (class, softmax confidence) of a fine-tuned classifier on each named split."""
    import torch

    clf = classifier if isinstance(classifier, dict) else {"model": classifier.model(), "tokenizer": classifier.tokenizer()}
    model, tokenizer = clf["model"].eval(), clf["tokenizer"]
    tables = []
    for split, data in splits.items():
        texts = [params["prefix"] + t for t in data["text"]]
        # Batches of similar length waste little on padding.
        order = np.argsort([len(t) for t in texts], kind="stable")
        p = np.zeros((len(texts), len(CLASSES)), np.float32)
        for start in range(0, len(texts), params["eval_batch_size"]):
            idx = order[start : start + params["eval_batch_size"]]
            enc = tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=params["max_length"], return_tensors="pt"
            )
            with torch.inference_mode():
                p[idx] = torch.softmax(model(**enc).logits, dim=-1).numpy()
        tables.append(_prediction_table(data, split, np.array(CLASSES)[p.argmax(1)], p.max(1)))
        logger.info("Predicted %d %s sentences", len(data), split)
    return pd.concat(tables, ignore_index=True)


def predict_level2(classifier: Any, train: pd.DataFrame, dev: pd.DataFrame, test: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Level 2 predictions on every split (train and test feed the Level 3 analysis)."""
    return predict_classifier(classifier, params, train=train, dev=dev, test=test)


def predict_test(classifier: Any, test: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Predictions on the test split only (the Level 4 run without countermeasures)."""
    return predict_classifier(classifier, params, test=test)


# ---------------------------------------------------------------- reports
def classification_metrics(predictions: pd.DataFrame, split: str = "test") -> tuple[str, dict[str, Any]]:
    """``classification_report`` (text) and the same numbers plus accuracy, macro-F1 and the confusion matrix."""
    from sklearn.metrics import classification_report, confusion_matrix

    part = predictions[predictions["split"] == split]
    kwargs = {"labels": CLASSES, "target_names": CLASSES, "zero_division": 0}
    text = classification_report(part["true"], part["predicted"], digits=4, **kwargs)
    report = classification_report(part["true"], part["predicted"], output_dict=True, **kwargs)
    metrics = {
        "split": split,
        "n": int(len(part)),
        "accuracy": float((part["true"] == part["predicted"]).mean()),
        "macro_f1": float(report["macro avg"]["f1-score"]),
        "per_class": {c: {k: float(v) for k, v in report[c].items()} for c in CLASSES},
        "labels": CLASSES,
        "confusion_matrix": confusion_matrix(part["true"], part["predicted"], labels=CLASSES).tolist(),
    }
    return text, metrics


def _confusion_axes(ax: Any, predictions: pd.DataFrame, title: str, split: str = "test") -> None:
    from sklearn.metrics import ConfusionMatrixDisplay

    part = predictions[predictions["split"] == split]
    ConfusionMatrixDisplay.from_predictions(
        part["true"], part["predicted"], labels=CLASSES, display_labels=CLASSES, ax=ax, colorbar=False, cmap="Blues"
    )
    acc = (part["true"] == part["predicted"]).mean()
    ax.set_title("\n".join([*textwrap.wrap(title, 40), f"{split}: accuracy {acc:.3f}, n={len(part)}"]), fontsize=10)


def evaluate(predictions: pd.DataFrame, title: str) -> tuple[str, dict[str, Any], Any]:
    """Test-split report (text, JSON) and confusion matrix figure with the label names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text, metrics = classification_metrics(predictions, "test")
    fig, ax = plt.subplots(figsize=(5, 4.5))
    _confusion_axes(ax, predictions, title)
    fig.tight_layout()
    logger.info("%s on test: accuracy %.4f, macro-F1 %.4f\n%s", title, metrics["accuracy"], metrics["macro_f1"], text)
    return f"{title}\n\n{text}", metrics, fig


def evaluate_level1(predictions: pd.DataFrame, params: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """Level 1 report; the metrics say which model and mapping made them."""
    text, metrics, fig = evaluate(predictions, f"Level 1: {params['title']}")
    metrics.update(method=params["method"], mapping=params["mapping"])
    return text, metrics, fig


def evaluate_level2(predictions: pd.DataFrame, params: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """Level 2 report."""
    return evaluate(predictions, f"Level 2: {params['title']}")


def compare_levels(
    level1_predictions: pd.DataFrame,
    level2_predictions: pd.DataFrame,
    level1_metrics: dict[str, Any],
    level2_metrics: dict[str, Any],
    no_countermeasures_metrics: dict[str, Any],
) -> tuple[dict[str, Any], str, Any]:
    """Side by side: Level 1 and Level 2 confusion matrices and their test scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {
        "level1": level1_metrics,
        "level2": level2_metrics,
        "level2_without_countermeasures": no_countermeasures_metrics,
    }
    comparison = {
        name: {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"]} for name, m in rows.items()
    }
    lines = ["| model | test accuracy | test macro-F1 | n |", "| --- | --- | --- | --- |"]
    lines += [f"| {k} | {v['accuracy']:.4f} | {v['macro_f1']:.4f} | {v['n']} |" for k, v in comparison.items()]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    _confusion_axes(axes[0], level1_predictions, "Level 1 (2-class model, mapped)")
    _confusion_axes(axes[1], level2_predictions, "Level 2 (fine-tuned)")
    fig.tight_layout()
    return comparison, "\n".join(lines) + "\n", fig


# ---------------------------------------------------------------- level 3
def _bucket(values: pd.Series, edges: list[float], fmt: str) -> pd.Series:
    """Half-open buckets [lo, hi), kept as an ordered categorical so reports list them in order."""
    labels = [fmt.format(lo=lo, hi=hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return pd.cut(values, bins=edges, labels=labels, right=False, include_lowest=True)


def analyse_errors(predictions: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any], Any, str]:
    """Level 3: every misclassified sample of ``params["splits"]`` and where the errors concentrate.

    Returns:
        The error table (split, id, text, true, predicted, confidence, length, agreement),
        summaries (counts by confusion pair; error rate by length bucket and by agreement,
        per split), a figure of the error rates and a short markdown report.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = predictions[predictions["split"].isin(params["splits"])].copy()
    data["error"] = data["true"] != data["predicted"]
    data["length_bucket"] = _bucket(data["length"], params["length_edges"], "[{lo:g}, {hi:g})")
    data["agreement_bucket"] = _bucket(data["agreement"], params["agreement_edges"], "[{lo:.2f}, {hi:.2f})")
    errors = data[data["error"]].sort_values(["split", "confidence"], ascending=[True, False])
    columns = ["split", "id", "text", "true", "predicted", "confidence", "length", "agreement"]
    errors = errors[columns].reset_index(drop=True)

    def rate(by: str) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        for split, part in data.groupby("split"):
            g = part.groupby(by, sort=True, observed=True)["error"].agg(["mean", "size"])
            out[str(split)] = {str(k): {"error_rate": float(r["mean"]), "n": int(r["size"])} for k, r in g.iterrows()}
        return out

    pairs = errors.groupby(["split", "true", "predicted"]).size().rename("count").reset_index()
    summary = {
        "n_errors": {str(s): int(n) for s, n in errors.groupby("split").size().items()},
        "error_rate": {str(s): float(p["error"].mean()) for s, p in data.groupby("split")},
        "confusion_pairs": [
            {"split": r.split, "true": r.true, "predicted": r.predicted, "count": int(r.count)} for r in pairs.itertuples()
        ],
        "by_length": rate("length_bucket"),
        "by_agreement": rate("agreement_bucket"),
        "mean_confidence": {
            "errors": float(errors["confidence"].mean()) if len(errors) else None,
            "correct": float(data.loc[~data["error"], "confidence"].mean()),
        },
    }

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, key, title in ((axes[0], "by_length", "length (characters)"), (axes[1], "by_agreement", "annotator agreement")):
        table = pd.DataFrame({s: {k: v["error_rate"] for k, v in d.items()} for s, d in summary[key].items()})
        order = data[key.replace("by_", "") + "_bucket"].cat.categories
        table.reindex([b for b in order if b in table.index]).plot.bar(ax=ax, rot=0)
        ax.set_title(f"Error rate by {title}")
        ax.set_ylabel("error rate")
    pair_table = pairs.assign(pair=pairs["true"] + " → " + pairs["predicted"]).pivot_table(
        index="pair", columns="split", values="count", fill_value=0
    )
    if len(pair_table):
        pair_table.plot.barh(ax=axes[2])
    axes[2].set_title("Misclassified samples by (true → predicted)")
    axes[2].set_xlabel("count")
    fig.tight_layout()
    return errors, summary, fig, _error_report(summary, errors, params)


def _error_report(summary: dict[str, Any], errors: pd.DataFrame, params: dict[str, Any]) -> str:
    lines = ["# Level 3: misclassified samples of the Level 2 model", ""]
    for split, n in summary["n_errors"].items():
        lines.append(f"- {split}: {n} errors, error rate {summary['error_rate'][split]:.3f}")
    lines += ["", "## Confusion pairs", "", "| split | true | predicted | count |", "| --- | --- | --- | --- |"]
    lines += [f"| {p['split']} | {p['true']} | {p['predicted']} | {p['count']} |" for p in summary["confusion_pairs"]]
    for key, title in (("by_length", "length (characters)"), ("by_agreement", "annotator agreement")):
        lines += ["", f"## Error rate by {title}", "", "| split | bucket | error rate | n |", "| --- | --- | --- | --- |"]
        for split, buckets in summary[key].items():
            lines += [f"| {split} | {b} | {v['error_rate']:.3f} | {v['n']} |" for b, v in buckets.items()]
    conf = summary["mean_confidence"]
    if conf["errors"] is not None:
        lines += ["", f"Mean confidence: {conf['errors']:.3f} on errors, {conf['correct']:.3f} on correct predictions."]
    lines += ["", f"## Most confident errors (top {params['n_examples']} per split)", ""]
    for split, part in errors.groupby("split"):
        lines += [f"### {split}", "", "| id | text | true | predicted | confidence | agreement |", "| --- | --- | --- | --- | --- | --- |"]
        for r in part.head(params["n_examples"]).itertuples():
            text = r.text.replace("|", "\\|")
            lines.append(f"| {r.id} | {text} | {r.true} | {r.predicted} | {r.confidence:.3f} | {r.agreement:.2f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- level 4
def plot_loss_curves(with_countermeasures: pd.DataFrame, without_countermeasures: pd.DataFrame) -> tuple[Any, dict[str, Any]]:
    """Training and validation loss per epoch with and without the Level 4 countermeasures.

    The validation loss is the plain cross-entropy on dev; the training loss is the
    Trainer's (it includes label smoothing when that countermeasure is on).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    summary = {}
    for ax, (name, hist) in zip(
        axes, (("without countermeasures", without_countermeasures), ("with countermeasures", with_countermeasures)), strict=True
    ):
        ax.plot(hist["epoch"], hist["train_loss"], "o-", label="training loss")
        ax.plot(hist["epoch"], hist["eval_cross_entropy"], "s-", label="validation loss (cross-entropy)")
        best = int(hist["eval_cross_entropy"].idxmin())
        ax.axvline(hist["epoch"][best], color="grey", ls=":", label=f"lowest validation loss (epoch {hist['epoch'][best]:g})")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
        summary[name.replace(" ", "_")] = {
            "epochs_run": int(len(hist)),
            "best_epoch": float(hist["epoch"][best]),
            "best_eval_loss": float(hist["eval_cross_entropy"][best]),
            "last_eval_loss": float(hist["eval_cross_entropy"].iloc[-1]),
            "last_train_loss": float(hist["train_loss"].iloc[-1]),
            "history": hist.to_dict(orient="records"),
        }
    axes[0].set_ylabel("loss")
    fig.tight_layout()
    return fig, summary
