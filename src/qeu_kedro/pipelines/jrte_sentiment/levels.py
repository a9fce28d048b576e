"""Level 4 (over-fitting and its countermeasures, with sources) and Level 5 (improvements measured against Level 2)."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
import pandas as pd

from qeu_kedro.figures import suptitle
from qeu_kedro.stats import signed

from .data import NAMESPACE
from .model import run_trainer
from .report import (
    _pyplot,
    classification_metrics,
    comparison_sentences,
    fact,
    paired_comparison,
    percent,
    possibility,
    render,
)


# ---------------------------------------------------------------- level 4
def countermeasures_in_use(run: dict[str, Any], training: dict[str, Any]) -> list[str]:
    """Which countermeasures a run trains with (keys of ``level4.explanations``).

    The ``TrainingArguments`` keys are those the run trains with: its ``trainer`` block on top of the
    shared ``training.trainer`` (:func:`~.model.run_trainer`), so a countermeasure set in the shared
    block counts too.
    """
    trainer, model = run_trainer(training, run), run.get("config") or {}
    used = []
    if run["enabled"] and run.get("early_stopping_patience") is not None:
        used.append("early_stopping")
    if (trainer.get("weight_decay") or 0) > 0:
        used.append("weight_decay")
    if any(model.get(k) for k in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout")):
        used.append("dropout")
    if (trainer.get("label_smoothing_factor") or 0) > 0:
        used.append("label_smoothing")
    return used


def plot_loss_curves(
    level2_training: dict[str, Any], baseline_training: dict[str, Any], model: str, task: dict[str, Any]
) -> Any:
    """Training and validation loss per epoch, without (left) and with (right) the Level 4 countermeasures."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    runs = [("without countermeasures", baseline_training), ("with countermeasures", level2_training)]
    runs = [(name, t) for name, t in runs if t.get("enabled", True) and t["history"]]
    fig, axes = plt.subplots(1, max(len(runs), 1), figsize=(5.5 * max(len(runs), 1), 4.3), sharey=True, squeeze=False)
    for ax, (name, training) in zip(axes[0], runs, strict=False):
        hist = pd.DataFrame(training["history"])
        ax.plot(hist["epoch"], hist["train_loss"], "o-", label="training loss")
        ax.plot(hist["epoch"], hist["eval_cross_entropy"], "s-", label="validation loss (cross-entropy)")
        best = int(hist["eval_cross_entropy"].idxmin())
        ax.axvline(
            hist["epoch"][best], color="grey", ls=":", label=f"lowest validation loss (epoch {hist['epoch'][best]:g})"
        )
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("loss")
    some = runs[0][1] if runs else {"n_train": 0, "n_dev": 0}
    suptitle(
        fig,
        f"{NAMESPACE} · Level 4: loss per epoch, {model} — {task['corpus']}, train n = {some.get('n_train')}, "
        f"dev n = {some.get('n_dev')}",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


def _falls_throughout(values: pd.Series) -> bool:
    """Every step lower than the one before (a single value has nothing to fall from)."""
    return len(values) > 1 and bool((values.diff().dropna() < 0).all())


def _curve_sentences(name: str, training: dict[str, Any]) -> list[dict[str, Any]]:
    """The loss curves in words: each fact checked against the whole curve, not its ends alone."""
    hist = pd.DataFrame(training["history"])
    val, train, epochs = hist["eval_cross_entropy"], hist["train_loss"], hist["epoch"]
    best = int(val.idxmin())
    e_best, v_best = float(epochs[best]), float(val[best])
    e_last, v_last = float(epochs.iloc[-1]), float(val.iloc[-1])
    rises = [i for i in range(1, len(hist)) if val[i] > val[i - 1]]
    out = [
        fact(
            f"{name}: the training loss went from {train.iloc[0]:.4f} (epoch {epochs.iloc[0]:g}) to "
            f"{train.iloc[-1]:.4f} (epoch {e_last:g}).",
            float(train.iloc[-1]),
        ),
        fact(f"{name}: the validation loss was lowest at epoch {e_best:g} ({v_best:.4f}).", v_best),
    ]
    if v_last > v_best:
        after = train.iloc[best:]
        meanwhile = (
            "while the training loss kept falling"
            if _falls_throughout(after)
            else f"while the training loss went from {after.iloc[0]:.4f} to {after.iloc[-1]:.4f}"
        )
        out.append(
            fact(
                f"{name}: after epoch {e_best:g} the validation loss rose to {v_last:.4f} at epoch {e_last:g} "
                f"({signed(v_last - v_best)}) {meanwhile}.",
                round(v_last - v_best, 4),
            )
        )
        out.append(
            possibility(
                f"{name}: the model may be learning particulars of the training sentences that do not carry over to "
                "new ones (over-fitting); the rise is one run with one seed."
            )
        )
    elif rises:
        steps = ", ".join(f"epoch {epochs[i - 1]:g} to {epochs[i]:g} ({signed(val[i] - val[i - 1])})" for i in rises)
        out.append(
            fact(
                f"{name}: the validation loss rose from {steps}, then fell to its lowest at the last epoch run.",
                round(float(max(val[i] - val[i - 1] for i in rises)), 4),
            )
        )
        out.append(
            possibility(
                f"{name}: those rises may be the noise of one run with one seed; more epochs may be needed before a "
                "lasting rise (over-fitting) shows, or it may not show on this data."
            )
        )
    else:
        out.append(fact(f"{name}: the validation loss did not rise within the {len(hist)} epochs run.", len(hist)))
        out.append(
            possibility(
                f"{name}: more epochs may be needed before over-fitting shows, or it may not show on this data."
            )
        )
    return out


def _averaged_sentence(averaged: list[float], run: dict[str, Any]) -> dict[str, Any]:
    """The weights a run with ``average_last_epochs`` keeps: the mean of its last epochs', not the best epoch's."""
    epochs = ", ".join(f"{e:g}" for e in averaged)
    return fact(
        f"In this run the Level 2 weights kept are not the lowest-validation-loss epoch's: "
        f"`average_last_epochs: {run.get('average_last_epochs')}` replaces them with the mean of the trainable "
        f"weights of epochs {epochs} (checkpoint averaging); early stopping, if set, decides only when training stops.",
        len(averaged),
    )


def level4_report(
    level2_training: dict[str, Any],
    baseline_training: dict[str, Any],
    level2_run: dict[str, Any],
    baseline_run: dict[str, Any],
    shared_training: dict[str, Any],
    params: dict[str, Any],
    comparison: dict[str, Any],
    model: str,
) -> tuple[dict[str, Any], str]:
    """Level 4: the countermeasures in use, each with its explanation and source; the loss curves and test scores in words.

    ``shared_training`` is the ``training`` block every run shares: its ``trainer`` keys count as the runs' own.
    A countermeasure the run "without countermeasures" still trains with is named in the report.
    """
    used = countermeasures_in_use(level2_run, shared_training)
    left = countermeasures_in_use(baseline_run, shared_training) if baseline_run["enabled"] else []
    explanations = params["explanations"]
    missing = [k for k in used if k not in explanations]
    if missing:
        raise ValueError(f"countermeasures {missing} are in use but have no entry in level4.explanations")
    lines = [
        f"# Level 4: over-fitting and its countermeasures ({model})",
        "",
        "## The countermeasures of the Level 2 run",
        "",
    ]
    averaged = level2_training.get("averaged_epochs") if level2_training.get("enabled", True) else None
    for key in used:
        e = explanations[key]
        lines += [f"### {e['name']}", "", " ".join(e["explanation"].split()), "", f"Source: {e['source']}", ""]
        if key == "early_stopping" and averaged:
            # the explanation says the best epoch is restored; checkpoint averaging replaces those weights
            lines.append(render([_averaged_sentence(averaged, level2_run)]))
    lines += [
        "Settings (TrainingArguments keys, the shared `training.trainer` with the run's own on top, and "
        f"model-config keys): `trainer: {run_trainer(shared_training, level2_run)}`, "
        f"`config: {level2_run.get('config')}`, "
        f"`early_stopping_patience: {level2_run.get('early_stopping_patience')}`, "
        f"`average_last_epochs: {level2_run.get('average_last_epochs')}`; "
        f"the run without them: `trainer: {run_trainer(shared_training, baseline_run)}`, "
        f"`config: {baseline_run.get('config')}`, "
        f"`average_last_epochs: {baseline_run.get('average_last_epochs')}`.",
        "",
    ]
    if averaged and "early_stopping" not in used:
        lines.append(render([_averaged_sentence(averaged, level2_run)]))
    if left:
        names = ", ".join(explanations.get(k, {}).get("name", k) for k in left)
        lines += [
            f"**Note:** the run without countermeasures still trains with: {names} (set in `training.trainer` or "
            "in its own blocks), so the comparison below understates what they do. Switch them off in "
            "`baseline.trainer` / `baseline.config` for a clean comparison.",
            "",
        ]
    sentences = []
    summary: dict[str, Any] = {"countermeasures": used, "baseline_countermeasures": left}
    for name, training in (("Without countermeasures", baseline_training), ("With countermeasures", level2_training)):
        if training.get("enabled", True) and training["history"]:
            sentences += _curve_sentences(name, training)
            summary[name.lower().replace(" ", "_")] = {
                "epochs_run": training["epochs_run"],
                "best_epoch": training["best_epoch"],
                "history": training["history"],
            }
    lines += ["## Loss curves (`level4_loss_curves.png`)", ""]
    if not baseline_training.get("enabled", True):
        lines += ["The run without countermeasures is switched off (enabled: false).", ""]
    text = "\n".join(lines) + render(sentences)
    if "baseline_vs_level2" in comparison.get("paired", {}):
        pair = comparison["paired"]["baseline_vs_level2"]
        text += "\n## Test scores, without vs with the countermeasures\n\n" + render(
            comparison_sentences(
                pair,
                "the run with countermeasures (Level 2)",
                "the run without them",
                "the countermeasures, the learning-rate schedule and the number of epochs",
            )
        )
        summary["baseline_vs_level2"] = pair
    return summary, text


# ---------------------------------------------------------------- level 5
def _dev_macro_f1(predictions: pd.DataFrame, names: list[str]) -> float:
    from sklearn.metrics import f1_score

    dev = predictions[predictions["split"] == "dev"]
    return float(f1_score(dev["true"], dev["predicted"], labels=names, average="macro", zero_division=0))


def _pick_on_dev(
    level2: pd.DataFrame, picked: pd.DataFrame, k: int, task: dict[str, Any], statistics: dict[str, Any]
) -> dict[str, Any]:
    """The kept candidate's dev macro-F1 minus Level 2's at confidence ``1 - (1 - c) / k`` (Bonferroni): it was
    picked as the best of ``k`` on the same dev sentences, and the best of k no-better candidates clears a
    single comparison's interval more often than 1 time in 20."""
    confidence = 1.0 - (1.0 - statistics["confidence"]) / max(1, k)
    c = paired_comparison(level2, picked, task, {**statistics, "confidence": confidence}, split="dev")["macro_f1"]
    return {**c, "k": k, "method": f"{c['method']}, Bonferroni over {k} candidates"}


def _level3_split(errors: dict[str, Any]) -> str | None:
    """The split Level 5's candidates are designed from: dev whenever Level 3 analysed it (test judges the
    candidates, so reasons read on test would have seen the errors they are then scored on), else test, else
    the first split Level 3 analysed (the report then says that the reasons did not rest on dev)."""
    splits = list(errors.get("error_rate", {}))
    for split in ("dev", "test"):
        if split in splits:
            return split
    return splits[0] if splits else None


def design_split_sentences(errors: dict[str, Any]) -> list[dict[str, Any]]:
    """Which split of Level 3's analysis the candidates' reasons rest on, said once at the top of Level 5."""
    split = _level3_split(errors)
    if split is None:
        return []
    n_errors = int(errors.get("n_errors", {}).get(split, 0))
    out = [
        fact(
            f"The reasons below rest on Level 3's analysis of the {split} split (Level 2's {n_errors} {split} errors, "
            f"error rate {errors['error_rate'][split]:.3f}).",
            n_errors,
        )
    ]
    if split == "dev":
        out.append(
            possibility(
                "The test split that judges every candidate below was not read for these reasons; dev was, and dev "
                "also picks the one kept, so the kept candidate's dev score may overstate it more than its test "
                "comparison does."
            )
        )
    elif split == "test":
        out.append(
            possibility(
                "Level 3 did not analyse dev (error_analysis.splits), so the reasons were read on the test split that "
                "also judges the candidates: a candidate that fits them may look better on test than it would on "
                "new sentences. Add dev to error_analysis.splits."
            )
        )
    else:
        out.append(
            possibility(
                f"Level 3 did not analyse dev (error_analysis.splits), so the reasons are Level 2's errors on the "
                f"{split} split; they may differ from its errors on sentences it did not train on. Add dev to "
                "error_analysis.splits."
            )
        )
    return out


def level3_reasons(key: str, errors: dict[str, Any], target: str, names: list[str]) -> list[dict[str, Any]]:
    """What this run's Level 3 measured that bears on candidate ``key``, each a fact with its number.

    The candidates' descriptions (parameters) say only what a candidate does; whether Level 3 of this run
    points to it is said here from ``level3_summary``, so that a claim in the report cannot contradict the
    run's own numbers. ``target`` is the decision rule's class.
    """
    split = _level3_split(errors)
    if split is None:
        return [possibility("Level 3 analysed no split in this run, so no Level 3 number bears on this candidate.")]
    n_errors = int(errors.get("n_errors", {}).get(split, 0))
    pairs = [p for p in errors.get("confusion_pairs", []) if p["split"] == split]
    if n_errors == 0:
        return [fact(f"Level 3: Level 2 made no error on the {split} split.", 0)]
    out = []
    if key == "decision_rule":
        given_other = sum(p["count"] for p in pairs if p["true"] == target)
        given_target = sum(p["count"] for p in pairs if p["predicted"] == target)
        out.append(
            fact(
                f"Level 3: of Level 2's {n_errors} {split} errors, {given_other} are '{target}' sentences given another "
                f"class and {given_target} are other sentences given '{target}' (a bias on '{target}''s logit trades "
                "these two kinds of error against each other).",
                given_other + given_target,
            )
        )
    if key in ("decision_rule", "weighted_soft_labels"):
        by_true = {n: sum(p["count"] for p in pairs if p["true"] == n) for n in names}
        top = max(pairs, key=lambda p: p["count"])
        out.append(
            fact(
                f"Level 3: Level 2's {split} errors by true class: "
                + ", ".join(f"'{n}' {c}" for n, c in by_true.items())
                + f" (of {n_errors}); the most common is '{top['true']}' given '{top['predicted']}' ({top['count']}).",
                top["count"],
            )
        )
    if key in ("soft_labels", "ensemble", "seed_ensemble"):
        buckets = errors.get("by_agreement", {}).get(split, {})
        if buckets:
            rates = ", ".join(f"{b}: {v['error_rate']:.3f} (n = {v['n']})" for b, v in buckets.items())
            lowest, highest = next(iter(buckets)), max(buckets, key=lambda b: buckets[b]["error_rate"])
            out.append(
                fact(
                    f"Level 3: Level 2's {split} error rate by annotator agreement (share of the most common vote): "
                    f"{rates}.",
                    buckets[highest]["error_rate"],
                )
            )
            out.append(
                possibility(
                    f"The error rate is highest in the lowest-agreement bucket ({lowest}), where the annotators split; "
                    "this candidate may help there, which its comparison below tests."
                    if highest == lowest
                    else f"The error rate is not highest in the lowest-agreement bucket ({lowest}) here, so this run's "
                    "Level 3 does not point to the annotators' splits; the candidate may still help or not."
                )
            )
    if key in ("ensemble", "seed_ensemble"):
        by_split = errors.get("mean_confidence_by_split")
        # summaries written before the per-split numbers existed hold only the analysed splits pooled
        conf = by_split.get(split, {}) if by_split is not None else errors.get("mean_confidence", {})
        where = f"{split} split" if by_split is not None else f"splits {', '.join(errors['error_rate'])} together"
        if conf.get("errors") is not None and conf.get("correct") is not None:
            out.append(
                fact(
                    f"Level 3: Level 2's mean confidence is {conf['errors']:.3f} on its errors and {conf['correct']:.3f} "
                    f"on its correct predictions ({where}).",
                    round(conf["errors"], 4),
                )
            )
    return out


def compare_improvements(
    level2_predictions: pd.DataFrame,
    rule: dict[str, Any],
    params: dict[str, Any],
    model: str,
    task: dict[str, Any],
    statistics: dict[str, Any],
    errors: dict[str, Any],
    **candidate_predictions: pd.DataFrame,
) -> tuple[dict[str, Any], str, Any]:
    """Level 5: each improvement switched on against Level 2 on the same test sentences; dev picks the one kept.

    ``rule`` is the decision rule's tuning (its bias); ``errors`` is Level 3's summary, from which each
    candidate's reason is written (:func:`level3_reasons`). ``candidate_predictions`` holds each
    candidate's predictions under its key of ``params["candidates"]``: the dev-tuned decision
    rule (a bias on one class's logit, no retraining), the runs trained on the annotators' vote
    shares (soft labels, with and without class weights), the ensemble of the trained runs and the seed
    ensemble (Level 2's recipe trained with other seeds, averaged with Level 2).
    A candidate switched off (empty predictions) is absent.
    """
    names = [c["name"] for c in task["classes"]]
    unknown = sorted(set(candidate_predictions) - set(params["candidates"]))
    if unknown:
        raise ValueError(f"Level 5 candidates {unknown} have no description in level5.candidates.")
    candidates = {k: v for k, v in candidate_predictions.items() if not v.empty}
    level2_dev = _dev_macro_f1(level2_predictions, names)
    results: dict[str, Any] = {}
    for key, preds in candidates.items():
        results[key] = {
            "description": params["candidates"][key],
            "dev_macro_f1": _dev_macro_f1(preds, names),
            "test": {
                k: v for k, v in classification_metrics(preds, task, statistics).items() if k != "classification_report"
            },
            "vs_level2": paired_comparison(level2_predictions, preds, task, statistics),
            # each candidate on dev as one comparison; the kept one, picked as the best of several, gets a
            # wider interval below (pick_on_dev)
            "dev_vs_level2": paired_comparison(level2_predictions, preds, task, statistics, split="dev"),
        }
    chosen = max(results, key=lambda k: results[k]["dev_macro_f1"]) if results else None
    keep = chosen if chosen and results[chosen]["dev_macro_f1"] > level2_dev else None
    metrics = {
        "level2_dev_macro_f1": level2_dev,
        "candidates": results,
        "chosen_by_dev": keep,
        "pick_on_dev": _pick_on_dev(level2_predictions, candidates[keep], len(results), task, statistics)
        if keep
        else None,
        "decision_rule": rule,
    }
    lines = [f"# Level 5: improvements from the Level 3 findings ({model})", ""]
    lines += [
        "Each candidate is one parameter switch; the test comparisons are paired (the same test sentences, "
        "bootstrap over sentences).",
        "",
    ]
    opening = [fact(f"Level 2's dev macro-F1 is {level2_dev:.4f}.", level2_dev)]
    lines.append(render(opening + (design_split_sentences(errors) if results else [])))
    target = rule.get("class") or params["decision_rule"]["class"]
    for key, r in results.items():
        lines += [f"## {key}: {' '.join(r['description'].split())}", ""]
        dev = r["dev_vs_level2"]["macro_f1"]
        sentences = level3_reasons(key, errors, target, names) + [
            fact(
                f"Dev macro-F1: {r['dev_macro_f1']:.4f} (Level 2: {level2_dev:.4f}); minus Level 2: "
                f"{signed(dev['difference'])} ({percent(dev['confidence'])} paired interval {signed(dev['ci_low'])} to {signed(dev['ci_high'])}, "
                f"n = {dev['n']} dev sentences): {dev['verdict']}.",
                dev["difference"],
            )
        ]
        if key == "decision_rule":
            sentences.append(
                fact(
                    f"The bias chosen on dev for '{rule['class']}' is {rule['bias']:+.2f} (applied to test).",
                    rule["bias"],
                )
            )
            if rule.get("dev_predictions") == "cross-fitted":
                biases = ", ".join(f"{b:+.2f}" for b in rule["fold_biases"])
                sentences.append(
                    fact(
                        f"Its dev predictions are cross-fitted: each of {rule['cross_fit_folds']} dev folds is "
                        f"predicted with the bias tuned on the other folds ({biases}), so the dev macro-F1 above "
                        f"is not scored on the sentences the bias was tuned on (tuned and scored on all of dev: "
                        f"{rule['dev_macro_f1']:.4f}).",
                        rule["cross_fit_folds"],
                    )
                )
            else:
                why = (
                    "cross-fitting is switched off"
                    if rule.get("cross_fit_folds", 0) < 2
                    else "too few dev sentences to cross-fit"
                )
                sentences.append(
                    possibility(
                        f"Its dev macro-F1 is scored on the sentences the bias was tuned on ({why}), so it may "
                        "overstate the rule against the other candidates."
                    )
                )
        sentences += comparison_sentences(r["vs_level2"], "Level 2", key, f"only the {key} switch")
        lines.append(render(sentences))
    if keep:
        pick = metrics["pick_on_dev"]
        how_sure = (
            f"Picked as the best of {pick['k']} on the same dev sentences, its dev difference is read with a "
            f"Bonferroni interval ({pick['confidence']:.1%}: {signed(pick['ci_low'])} to {signed(pick['ci_high'])}): "
            f"on dev the pick is {pick['verdict']} against Level 2 (its single-comparison interval above is too "
            "narrow for a pick)."
            if pick["k"] > 1
            else f"The only candidate run: on dev it is {pick['verdict']} against Level 2 (its interval above)."
        )
        lines += [
            f"**Kept: {keep}**",
            "",
            render(
                [
                    fact(
                        f"{keep} has the highest dev macro-F1, {results[keep]['dev_macro_f1']:.4f} against Level 2's "
                        f"{level2_dev:.4f} (the dev split's pick, a point estimate).",
                        results[keep]["dev_macro_f1"],
                    ),
                    fact(
                        f"{how_sure} Whether it gains on test is its paired test comparison above.", pick["difference"]
                    ),
                ]
            ),
        ]
    elif results:
        best = max(results, key=lambda k: results[k]["dev_macro_f1"])
        lines += [
            "**Kept: none**",
            "",
            render(
                [
                    fact(
                        f"No candidate's dev macro-F1 is above Level 2's {level2_dev:.4f} (the highest, {best}'s, is "
                        f"{results[best]['dev_macro_f1']:.4f}).",
                        results[best]["dev_macro_f1"],
                    )
                ]
            ),
        ]
    else:
        lines += ["All candidates are switched off.", ""]

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(7, 1.2 * 2 * len(results)), 3.8))
    labels, diffs, lows, highs = [], [], [], []
    for key, r in results.items():
        for measure in ("accuracy", "macro_f1"):
            c = r["vs_level2"][measure]
            labels.append(textwrap.fill(key.replace("_", " "), 14) + "\n" + measure.replace("_", "-"))
            diffs.append(c["difference"])
            lows.append(c["difference"] - c["ci_low"])
            highs.append(c["ci_high"] - c["difference"])
    if labels:
        ax.errorbar(
            np.arange(len(labels)),
            diffs,
            yerr=[lows, highs],
            fmt="o",
            capsize=5,
            label=f"difference, {percent(statistics['confidence'])} paired interval",
        )
        ax.set_xticks(np.arange(len(labels)), labels, fontsize=8)
        ax.legend(fontsize=8)
    ax.axhline(0, color="grey", lw=1)
    ax.set_ylabel("candidate − Level 2 (test)")
    n = len(level2_predictions[level2_predictions["split"] == "test"])
    kept = f"; kept by dev: {keep.replace('_', ' ')}" if keep else ""
    ax.set_title(f"{NAMESPACE} · Level 5 vs Level 2: {model} — {task['corpus']}, test n = {n}{kept}", fontsize=10)
    fig.tight_layout()
    return metrics, "\n".join(lines), fig
