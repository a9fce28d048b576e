"""Metrics with intervals, figures and the levels' reports, each sentence tagged **[fact]** or **[possibility]**.

A fact is a measured number of this run, written with that number; a possibility is a reading
of the numbers that this run does not test, worded as such. Both come from templates driven
by the metrics, never from a language model.
"""

from __future__ import annotations

import logging
import textwrap
from typing import Any

import numpy as np
import pandas as pd

from qeu_kedro.figures import axes_title, suptitle
from qeu_kedro.stats import VERDICT_SENTENCE, bootstrap_statistic_interval, paired_bootstrap_statistic

from .data import NAMESPACE, PREDICTION_COLUMNS, class_names

logger = logging.getLogger(__name__)

Sentence = dict[str, Any]


def fact(text: str, number: float | int) -> Sentence:
    """A measured statement and the number it rests on."""
    return {"tag": "fact", "text": text, "number": number}


def possibility(text: str, number: float | int | None = None) -> Sentence:
    """A reading the run does not test (with the number that prompted it, if any)."""
    return {"tag": "possibility", "text": text, "number": number}


def render(sentences: list[Sentence]) -> str:
    return "\n".join(f"- **[{s['tag']}]** {s['text']}" for s in sentences) + "\n"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # figures are files here, never windows
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------- metrics
def _test(predictions: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    return predictions[predictions["split"] == split].reset_index(drop=True)


def macro_f1_codes(true: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Macro-F1 over the classes ``0 .. k-1`` from confusion counts; ``k`` codes a class outside them.

    The same number as ``f1_score(true, pred, labels=range(k), average="macro", zero_division=0)``
    (a class never true nor predicted scores 0; a sentence of another class counts against the class
    it was confused with), over a hundred times faster, which the bootstrap's resamples need.
    """
    tp = np.bincount(true[true == pred], minlength=k + 1)[:k].astype(np.float64)
    predicted = np.bincount(pred, minlength=k + 1)[:k]
    actual = np.bincount(true, minlength=k + 1)[:k]
    denominator = predicted + actual  # F1 = 2 tp / (predicted + actual)
    return float(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0).mean())


def class_codes(labels: Any, names: list[str]) -> np.ndarray:
    """Class names as codes ``0 .. len(names)-1`` in the order of ``names``; any other label is ``len(names)``."""
    code = {n: i for i, n in enumerate(names)}
    return np.fromiter((code.get(x, len(names)) for x in labels), dtype=np.int64, count=len(labels))


def _scores(true: np.ndarray, pred: np.ndarray, names: list[str]) -> tuple[Any, Any]:
    t, p, k = class_codes(true, names), class_codes(pred, names), len(names)

    def accuracy(i: np.ndarray) -> float:
        return float((true[i] == pred[i]).mean())

    def macro_f1(i: np.ndarray) -> float:
        # averaged over the configured classes only (labels=names): no class outside the task counts
        return macro_f1_codes(t[i], p[i], k)

    return accuracy, macro_f1


def classification_metrics(
    predictions: pd.DataFrame, task: dict[str, Any], statistics: dict[str, Any], split: str = "test"
) -> dict[str, Any]:
    """Accuracy and macro-F1 with bootstrap intervals over sentences (``statistics.confidence``), ``classification_report``, confusion matrix."""
    from sklearn.metrics import classification_report, confusion_matrix

    names = class_names(task)
    part = _test(predictions, split)
    true, pred = part["true"].to_numpy(), part["predicted"].to_numpy()
    kwargs = {"labels": names, "target_names": names, "zero_division": 0}
    text = classification_report(true, pred, digits=4, **kwargs)
    report = classification_report(true, pred, output_dict=True, **kwargs)
    boot = {k: statistics[k] for k in ("n_resamples", "confidence", "seed")}
    out: dict[str, Any] = {"split": split, "n": int(len(part))}
    for key, stat in zip(("accuracy", "macro_f1"), _scores(true, pred, names), strict=True):
        value, low, high = bootstrap_statistic_interval(stat, len(part), **boot)
        out[key], out[f"{key}_ci"] = value, [low, high]
    out.update(
        confidence=statistics["confidence"],
        per_class={c: {k: float(v) for k, v in report[c].items()} for c in names},
        labels=names,
        confusion_matrix=confusion_matrix(true, pred, labels=names).tolist(),
        classification_report=text,
    )
    return out


def paired_comparison(
    before: pd.DataFrame, after: pd.DataFrame, task: dict[str, Any], statistics: dict[str, Any], split: str = "test"
) -> dict[str, dict[str, Any]]:
    """``after - before`` accuracy and macro-F1 on the same sentences, with paired bootstrap intervals at ``statistics.confidence``."""
    names = class_names(task)
    b, a = _test(before, split).set_index("id"), _test(after, split).set_index("id")
    for side, table in (("before", b), ("after", a)):
        if not table.index.is_unique:
            repeated = sorted(table.index[table.index.duplicated()].astype(str).unique())[:5]
            raise ValueError(
                f"paired comparison: the {side} predictions hold {split} sentence ids more than once ({repeated}); "
                "each sentence must be predicted once, or the pairing would shift"
            )
    if set(b.index) != set(a.index):
        raise ValueError(f"paired comparison needs the same {split} sentences on both sides")
    a = a.loc[b.index]
    true = b["true"].to_numpy()
    stats_b, stats_a = _scores(true, b["predicted"].to_numpy(), names), _scores(true, a["predicted"].to_numpy(), names)
    boot = {k: statistics[k] for k in ("n_resamples", "confidence", "seed")}
    return {
        key: paired_bootstrap_statistic(sb, sa, len(b), **boot).to_dict()
        for key, sb, sa in zip(("accuracy", "macro_f1"), stats_b, stats_a, strict=True)
    }


def title_of(params: dict[str, Any], task: dict[str, Any], n: int, split: str = "test") -> str:
    """What every figure's title says: the pipeline's namespace, level, model, data and n."""
    return f"{NAMESPACE} · {params['level']}: {params['model']} — {task['corpus']}, {split} n = {n}"


def confusion_figure(predictions: pd.DataFrame, names: list[str], title: str, ax: Any = None) -> Any:
    """``ConfusionMatrixDisplay`` of the test split with the label names."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 5))
    part = _test(predictions)
    ConfusionMatrixDisplay.from_predictions(
        part["true"], part["predicted"], labels=names, display_labels=names, ax=ax, colorbar=False, cmap="Blues"
    )
    acc = (part["true"] == part["predicted"]).mean()
    ax.set_title("\n".join([*textwrap.wrap(title, 44), f"accuracy {acc:.3f}"]), fontsize=9)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure


def evaluate(
    predictions: pd.DataFrame, params: dict[str, Any], task: dict[str, Any], statistics: dict[str, Any]
) -> tuple[dict[str, Any], Any]:
    """Test-split metrics (with intervals) and the confusion matrix figure of one level; empty for a run switched off."""
    names = class_names(task)
    if predictions.empty:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6, 1.8))
        ax.axis("off")
        axes_title(ax, f"{NAMESPACE} · {params['level']}: {params['model']} — {task['corpus']}", fontsize=10)
        ax.text(0.5, 0.5, f"{params['level']}: switched off (enabled: false), nothing to show", ha="center")
        fig.tight_layout()
        return {"enabled": False, "level": params["level"], "model": params["model"]}, fig
    metrics = {
        "enabled": True,
        "level": params["level"],
        "model": params["model"],
        **classification_metrics(predictions, task, statistics),
    }
    fig = confusion_figure(predictions, names, title_of(params, task, metrics["n"]))
    logger.info("%s on test: accuracy %.4f, macro-F1 %.4f", params["level"], metrics["accuracy"], metrics["macro_f1"])
    return metrics, fig


# ---------------------------------------------------------------- sentences
def percent(confidence: float) -> str:
    """An interval's confidence as its label says it: 0.95 -> ``95 %``, 0.975 -> ``97.5 %``."""
    return f"{round(100 * confidence, 2):g} %"


def _ci(metrics: dict[str, Any], key: str) -> str:
    low, high = metrics[f"{key}_ci"]
    return f"{percent(metrics['confidence'])} interval {low:.4f} to {high:.4f}"


def _listed(names: list[str]) -> str:
    """``'a'``, ``'a' and 'b'``, ``'a', 'b' and 'c'``."""
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def _lowest_class_sentences(metrics: dict[str, Any], worst: str, cm: np.ndarray, off: np.ndarray) -> list[Sentence]:
    """Facts on the class with the lowest F1 (``worst``): never predicted, or its recall against its precision."""
    names, n, per_class = metrics["labels"], metrics["n"], metrics["per_class"]
    said: list[Sentence] = []
    recall, precision = per_class[worst]["recall"], per_class[worst]["precision"]
    w = names.index(worst)
    predicted_as, truly = int(cm[:, w].sum()), int(cm[w].sum())
    if predicted_as == 0:
        other = names[int(off[w].argmax())]
        said.append(
            fact(
                f"'{worst}' is never predicted: 0 of the {n} test sentences are given '{worst}', which {truly} "
                f"of them are labelled; {int(off[w].max())} of those are predicted as '{other}'.",
                predicted_as,
            )
        )
        said.append(
            possibility(
                f"The model may not separate '{worst}' from '{other}', the class its '{worst}' sentences are most "
                "often given; this report does not test that (Level 3 reads the errors)."
            )
        )
    elif recall < precision:
        said.append(
            fact(
                f"'{worst}' has recall {recall:.4f} below its precision {precision:.4f}: the model predicts '{worst}' "
                f"{predicted_as} times for {truly} '{worst}' sentences.",
                recall,
            )
        )
        said.append(
            possibility(
                f"'{worst}' sentences may carry weaker or mixed cues than the others, so that the model falls back on "
                f"another class; this report does not test that (Level 3 reads the errors)."
            )
        )
    else:
        said.append(
            fact(
                f"'{worst}' has precision {precision:.4f} at or below its recall {recall:.4f}: the model predicts "
                f"'{worst}' {predicted_as} times for {truly} '{worst}' sentences.",
                precision,
            )
        )
        said.append(
            possibility(
                f"The model may use '{worst}' as its answer when unsure between the other classes; "
                "this report does not test that (Level 3 reads the errors)."
            )
            if predicted_as > truly
            else possibility(
                f"'{worst}' cues may overlap with another class's, so that the model gives '{worst}' to sentences of "
                f"that class and that class to '{worst}' sentences; this report does not test that (Level 3 reads the "
                "errors)."
            )
        )
    return said


def level_sentences(metrics: dict[str, Any]) -> list[Sentence]:
    """Facts on the classification report and the confusion matrix, and the possibilities they prompt."""
    names, n = metrics["labels"], metrics["n"]
    per_class = metrics["per_class"]
    cm = np.asarray(metrics["confusion_matrix"])
    out = [
        fact(
            f"Accuracy on the test split is {metrics['accuracy']:.4f} ({_ci(metrics, 'accuracy')}, n = {n}).",
            metrics["accuracy"],
        ),
        fact(
            f"Macro-F1, the unweighted mean of the {len(names)} classes' F1, is {metrics['macro_f1']:.4f} "
            f"({_ci(metrics, 'macro_f1')}).",
            metrics["macro_f1"],
        ),
    ]
    f1 = {c: per_class[c]["f1-score"] for c in names}
    shown = {c: round(f1[c], 4) for c in names}  # ties as the report writes the scores
    best, worst = max(names, key=lambda c: f1[c]), min(names, key=lambda c: f1[c])
    all_equal = shown[best] == shown[worst]  # then no class is the highest or the lowest
    if all_equal:
        every = "Both classes" if len(names) == 2 else f"All {len(names)} classes"
        out.append(fact(f"{every} have the same F1, {f1[best]:.4f}.", f1[best]))
    else:
        for end, at in (("highest", best), ("lowest", worst)):
            tied = [c for c in names if shown[c] == shown[at]]
            which = f"class with the {end} F1 is '{at}'"
            if len(tied) > 1:
                which = f"classes with the {end} F1 are {_listed(tied)}"
            out.append(fact(f"The {which} ({f1[at]:.4f}{' each' if len(tied) > 1 else ''}).", f1[at]))
    off = cm.copy()
    np.fill_diagonal(off, 0)
    if off.sum() == 0:
        out.append(
            fact(
                "The confusion matrix has no sentence off its diagonal: every test sentence is classified as labelled.",
                0,
            )
        )
        out.append(
            possibility(
                f"With n = {n} the test split may be too small or too easy to show this model's weaknesses; "
                "a larger or harder test set could."
            )
        )
        return out
    i, j = np.unravel_index(off.argmax(), off.shape)
    share = off[i, j] / cm[i].sum()
    out.append(
        fact(
            f"The most frequent confusion is '{names[i]}' predicted as '{names[j]}': {int(off[i, j])} of the "
            f"{int(cm[i].sum())} '{names[i]}' sentences ({share:.1%}).",
            int(off[i, j]),
        )
    )
    if not all_equal:
        out += _lowest_class_sentences(metrics, worst, cm, off)
    half = (metrics["accuracy_ci"][1] - metrics["accuracy_ci"][0]) / 2
    out.append(
        possibility(
            f"Another test sample of the same size could move accuracy by about ±{half:.3f} (half the interval's width), "
            "so a difference smaller than that from another model may be chance.",
            round(half, 4),
        )
    )
    return out


def comparison_sentences(
    comparison: dict[str, dict[str, Any]], before: str, after: str, differs: str = "the model and its training"
) -> list[Sentence]:
    """Facts on a paired comparison (difference, interval, verdict) and the possibility each verdict prompts.

    ``differs`` names what differs between the two arms (the candidate causes of a gain).
    """
    out = []
    for key, label in (("accuracy", "Accuracy"), ("macro_f1", "Macro-F1")):
        c = comparison[key]
        pct = percent(c["confidence"])
        out.append(
            fact(
                f"{label} of {after} minus {before}: {c['difference']:+.4f} ({pct} paired interval {c['ci_low']:+.4f} to "
                f"{c['ci_high']:+.4f}, n = {c['n']}): {VERDICT_SENTENCE[c['verdict']]}.",
                c["difference"],
            )
        )
    verdicts = {comparison[k]["verdict"] for k in ("accuracy", "macro_f1")}
    better = [
        k.replace("macro_f1", "macro-F1") for k in ("accuracy", "macro_f1") if comparison[k]["verdict"] == "better"
    ]
    if "worse" in verdicts:
        out.append(
            possibility(
                f"{after} may fit this kind of test sentence less well than {before}; the cause is not tested here."
            )
        )
    elif better:
        out.append(
            possibility(
                f"The gain of {after} in {' and '.join(better)} may come from what differs between the two "
                f"({differs}); this comparison alone does not say which part of that causes it, and it is one run with "
                "one seed."
            )
        )
    else:
        out.append(
            possibility(
                f"{after} and {before} may be about equally good here, or differ by less than this test split can resolve."
            )
        )
    return out


def level_report(metrics: dict[str, Any], sentences: list[Sentence], figure: str, heading: str = "") -> str:
    """Markdown: the model, its classification report, the confusion matrix figure and the tagged sentences."""
    if not metrics.get("enabled", True):
        return f"# {metrics['level']}: {metrics['model']}\n\nSwitched off in the parameters (enabled: false).\n"
    lines = [
        f"# {metrics['level']}: {metrics['model']}",
        "",
        f"Model: **{metrics['model']}**. Test split: n = {metrics['n']}.",
        "",
        "## Classification report (test)",
        "",
        "```",
        metrics["classification_report"].rstrip(),
        "```",
        "",
        f"## Confusion matrix (rows: true, columns: predicted): `{figure}`",
        "",
        pd.DataFrame(metrics["confusion_matrix"], index=metrics["labels"], columns=metrics["labels"]).to_markdown(),
        "",
        heading or "## What the numbers say",
        "",
        "Each sentence is tagged **[fact]** (measured in this run; the number it rests on is in it) or "
        "**[possibility]** (a reading this run does not test).",
        "",
    ]
    return "\n".join(lines) + render(sentences)


def report_level1(metrics: dict[str, Any]) -> str:
    """Level 1's report."""
    return level_report(metrics, level_sentences(metrics), "level1_confusion_matrix.png")


def report_run(metrics: dict[str, Any]) -> str:
    """The report of a fine-tuning run with no comparison section (the baseline, the soft-label run)."""
    enabled = metrics.get("enabled", True)
    return level_report(metrics, level_sentences(metrics) if enabled else [], "the run's *_confusion_matrix.png")


def report_level2(
    metrics: dict[str, Any],
    level1_metrics: dict[str, Any],
    level1_predictions: pd.DataFrame,
    level2_predictions: pd.DataFrame,
    task: dict[str, Any],
    statistics: dict[str, Any],
) -> str:
    """Level 2's report, compared with Level 1 on the same test sentences."""
    comparison = paired_comparison(level1_predictions, level2_predictions, task, statistics)
    text = level_report(metrics, level_sentences(metrics), "level2_confusion_matrix.png")
    text += "\n## Compared with Level 1 (same test sentences)\n\n" + render(
        comparison_sentences(
            comparison,
            level1_metrics["level"],
            metrics["level"],
            "training on this corpus's labelled sentences against a zero-shot mapping of two classes",
        )
    )
    return text


# ---------------------------------------------------------------- all levels side by side
def compare_levels(
    level1_predictions: pd.DataFrame,
    level2_predictions: pd.DataFrame,
    baseline_predictions: pd.DataFrame,
    level1_metrics: dict[str, Any],
    level2_metrics: dict[str, Any],
    baseline_metrics: dict[str, Any],
    task: dict[str, Any],
    statistics: dict[str, Any],
) -> tuple[dict[str, Any], str, Any]:
    """Every level's test accuracy and macro-F1 with intervals, paired comparisons, and the confusion matrices."""
    plt = _pyplot()
    names = class_names(task)
    rows = {"level1": level1_metrics, "level2": level2_metrics, "baseline": baseline_metrics}
    levels = {
        k: {
            key: m[key]
            for key in ("level", "model", "n", "accuracy", "accuracy_ci", "macro_f1", "macro_f1_ci", "confidence")
        }
        for k, m in rows.items()
        if m.get("enabled", True)
    }
    pairs = {"level2_vs_level1": paired_comparison(level1_predictions, level2_predictions, task, statistics)}
    if "baseline" in levels:
        pairs["baseline_vs_level2"] = paired_comparison(level2_predictions, baseline_predictions, task, statistics)
    pct = percent(statistics["confidence"])
    table = pd.DataFrame(
        [
            {
                "level": v["level"],
                "model": v["model"],
                "accuracy": f"{v['accuracy']:.4f}",
                f"accuracy {pct} interval": f"{v['accuracy_ci'][0]:.4f} to {v['accuracy_ci'][1]:.4f}",
                "macro-F1": f"{v['macro_f1']:.4f}",
                f"macro-F1 {pct} interval": f"{v['macro_f1_ci'][0]:.4f} to {v['macro_f1_ci'][1]:.4f}",
                "n": v["n"],
            }
            for v in levels.values()
        ]
    )
    paired = pd.DataFrame(
        [
            {
                "comparison": name,
                "measure": key,
                "difference": f"{c['difference']:+.4f}",
                f"{percent(c['confidence'])} paired interval": f"{c['ci_low']:+.4f} to {c['ci_high']:+.4f}",
                "verdict": c["verdict"],
            }
            for name, comp in pairs.items()
            for key, c in comp.items()
        ]
    )
    text = f"# Test split, every level ({task['corpus']})\n\n{table.to_markdown(index=False, disable_numparse=True)}\n\n## Paired comparisons\n\n"
    # disable_numparse: the cells are written as they should read ("+0.1000"); tabulate would re-parse them
    text += paired.to_markdown(index=False, disable_numparse=True) + "\n"
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 5))
    for ax, preds, m in ((axes[0], level1_predictions, level1_metrics), (axes[1], level2_predictions, level2_metrics)):
        confusion_figure(
            preds, names, f"{NAMESPACE} · {m['level']}: {m['model']} — {task['corpus']}, test n = {m['n']}", ax=ax
        )
    fig.tight_layout()
    return {"levels": levels, "paired": pairs}, text, fig


# ---------------------------------------------------------------- level 3
#: Level 3's bucket edges, each a parameter of ``error_analysis``.
EDGE_KEYS = ("length_edges", "agreement_edges")


def edges_problem(edges: list[float]) -> str | None:
    """What is wrong with bucket ``edges`` that do not strictly increase (pandas refuses them, "bins must increase
    monotonically"), or None. :func:`analyse_errors` refuses them, and so does the parameter check, before the run."""
    repeats = [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if not a < b]
    if not repeats:
        return None
    return (
        f"{edges} do not increase from each edge to the next ({repeats[0][0]} then {repeats[0][1]}); list the edges "
        f"in increasing order without repeats, e.g. {sorted(set(edges))}"
    )


def _bucket(values: pd.Series, edges: list[float], fmt: str, key: str) -> pd.Series:
    """Half-open buckets [lo, hi), kept as an ordered categorical so reports list them in order.

    A value outside the edges is in no bucket: it is left out of the tables, and a warning names the
    parameter ``key`` to widen.
    """
    labels = [fmt.format(lo=lo, hi=hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    buckets = pd.cut(values, bins=edges, labels=labels, right=False, include_lowest=True)
    outside = int((values.notna() & buckets.isna()).sum())
    if outside:
        logger.warning(
            "Level 3: %d rows lie outside %s %s (from %g to %g) and are left out of that table; widen the edges",
            outside,
            key,
            edges,
            values.min(),
            values.max(),
        )
    return buckets


def analyse_errors(
    predictions: pd.DataFrame, params: dict[str, Any], task: dict[str, Any], model: str
) -> tuple[pd.DataFrame, dict[str, Any], Any, str]:
    """Level 3: every misclassified sample of ``params["splits"]`` and where the errors concentrate.

    Returns:
        The error table (split, id, text, true, predicted, confidence, length, agreement),
        summaries (counts by confusion pair; error rate by length bucket and by agreement,
        per split), a figure of the error rates and a short markdown report.
    """
    splits, predicted = list(params["splits"]), set(predictions["split"])
    unknown = [s for s in splits if s not in ("train", "dev", "test") or s not in predicted]
    if unknown:
        raise ValueError(
            f"parameters jrte_sentiment.error_analysis.splits: {unknown} are not splits the Level 2 predictions "
            f"hold ({sorted(predicted)}); name splits among train, dev and test that level2.predict_splits predicts."
        )
    for key in EDGE_KEYS:
        problem = edges_problem(list(params[key]))
        if problem:
            raise ValueError(f"parameters jrte_sentiment.error_analysis.{key}: {problem}.")
    plt = _pyplot()
    data = predictions[predictions["split"].isin(splits)].copy()
    data["error"] = data["true"] != data["predicted"]
    data["length_bucket"] = _bucket(
        data["length"], params["length_edges"], "[{lo:g}, {hi:g})", "error_analysis.length_edges"
    )
    data["agreement_bucket"] = _bucket(
        data["agreement"], params["agreement_edges"], "[{lo:.2f}, {hi:.2f})", "error_analysis.agreement_edges"
    )
    errors = data[data["error"]].sort_values(["split", "confidence"], ascending=[True, False])
    errors = errors[PREDICTION_COLUMNS].reset_index(drop=True)

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
            {"split": r.split, "true": r.true, "predicted": r.predicted, "count": int(r.count)}
            for r in pairs.itertuples()
        ],
        "by_length": rate("length_bucket"),
        "by_agreement": rate("agreement_bucket"),
        "mean_confidence": _mean_confidence(data),
        # per split: Level 5's reasons read one split's (dev's), not the analysed splits pooled with test
        "mean_confidence_by_split": {str(s): _mean_confidence(p) for s, p in data.groupby("split")},
    }

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    n_text = ", ".join(f"{s} n = {int((data['split'] == s).sum())}" for s in params["splits"])
    for ax, key, title in (
        (axes[0], "by_length", "length (characters)"),
        (axes[1], "by_agreement", "annotator agreement"),
    ):
        table = pd.DataFrame({s: {k: v["error_rate"] for k, v in d.items()} for s, d in summary[key].items()})
        order = data[key.replace("by_", "") + "_bucket"].cat.categories
        if len(table):
            table.reindex([b for b in order if b in table.index]).plot.bar(ax=ax, rot=0)
        ax.set_title(f"Error rate by {title}", fontsize=10)
        ax.set_ylabel("error rate")
    pair_table = pairs.assign(pair=pairs["true"] + " → " + pairs["predicted"]).pivot_table(
        index="pair", columns="split", values="count", fill_value=0
    )
    if len(pair_table):
        pair_table.plot.barh(ax=axes[2])
    axes[2].set_title("Misclassified samples by (true → predicted)", fontsize=10)
    axes[2].set_xlabel("count")
    suptitle(fig, f"{NAMESPACE} · Level 3: errors of {model} — {task['corpus']}, {n_text}", fontsize=11)
    fig.tight_layout()
    return errors, summary, fig, _error_report(summary, errors, params, model)


def _mean_confidence(data: pd.DataFrame) -> dict[str, float | None]:
    """Mean confidence on the errors and on the correct predictions (None where there is none)."""
    wrong, right = data.loc[data["error"], "confidence"], data.loc[~data["error"], "confidence"]
    return {
        "errors": float(wrong.mean()) if len(wrong) else None,
        "correct": float(right.mean()) if len(right) else None,
    }


def _error_report(summary: dict[str, Any], errors: pd.DataFrame, params: dict[str, Any], model: str) -> str:
    lines = [f"# Level 3: misclassified samples of {model}", ""]
    counts = [
        fact(f"{split}: {n} errors, error rate {rate:.3f}.", n)
        for split, rate in summary["error_rate"].items()
        for n in [summary["n_errors"].get(split, 0)]
    ]
    lines.append(render(counts).rstrip("\n"))
    pairs = pd.DataFrame(summary["confusion_pairs"], columns=["split", "true", "predicted", "count"])
    lines += ["", "## Confusion pairs", "", pairs.to_markdown(index=False)]
    for key, title in (("by_length", "length (characters)"), ("by_agreement", "annotator agreement")):
        rows = [
            {"split": s, "bucket": b, "error rate": f"{v['error_rate']:.3f}", "n": v["n"]}
            for s, d in summary[key].items()
            for b, v in d.items()
        ]
        lines += [
            "",
            f"## Error rate by {title}",
            "",
            pd.DataFrame(rows, columns=["split", "bucket", "error rate", "n"]).to_markdown(
                index=False, disable_numparse=True
            ),
        ]
    confidences = [
        fact(
            f"{split}: mean confidence {conf['errors']:.3f} on the errors, {conf['correct']:.3f} on the correct "
            "predictions.",
            round(conf["errors"], 4),
        )
        for split, conf in summary["mean_confidence_by_split"].items()
        if conf["errors"] is not None and conf["correct"] is not None
    ]
    if confidences:
        lines += ["", "## Mean confidence", "", render(confidences).rstrip("\n")]
    lines += ["", f"## Most confident errors (top {params['n_examples']} per split)", ""]
    for split, part in errors.groupby("split"):
        shown = part.head(params["n_examples"])[["id", "text", "true", "predicted", "confidence", "agreement"]]
        lines += [f"### {split}", "", shown.to_markdown(index=False, floatfmt=".3f"), ""]
    return "\n".join(lines) + "\n"
