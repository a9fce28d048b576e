"""The course report: Levels 1-5 in one markdown document, with an overview and the figures inline.

The levels' own reports stay files of their own; this one puts them in reading order, each with
its figure, after a short overview computed from the levels' numbers (every model's test scores,
the fine-tuning runs, the Level 3 errors, the Level 4 countermeasures, the Level 5 choice).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from .report import fact, percent, render

# Reading order: (section, its markdown, its figure), names inside the namespace ``jrte_sentiment``.
SECTIONS = (
    ("level1", "level1.report", "level1.confusion_matrix"),
    ("level2", "level2.report", "level2.confusion_matrix"),
    ("levels", "comparison_table", "comparison_confusion_matrices"),
    ("level3", "level3_report", "level3_error_rates"),
    ("level4", "level4_report", "level4_loss_curves"),
    ("baseline", "baseline.report", "baseline.confusion_matrix"),
    ("level5", "level5_report", "level5_comparison"),
    ("soft_labels", "soft_labels.report", "soft_labels.confusion_matrix"),
    ("weighted_soft_labels", "weighted_soft_labels.report", "weighted_soft_labels.confusion_matrix"),
)
# The fine-tuning runs whose training the overview sums up.
TRAINED = ("level2", "baseline", "soft_labels", "weighted_soft_labels")


def course_inputs() -> dict[str, str]:
    """The node's inputs: argument name → dataset (inside the namespace) of :func:`course_report`."""
    inputs = {
        "task": "params:task",
        "comparison": "comparison_metrics",
        "errors": "level3_summary",
        "countermeasures": "level4_summary",
        "improvements": "level5_metrics",
    }
    inputs.update({f"{run}_training": f"{run}.training_metrics" for run in TRAINED})
    inputs["seed_ensemble_training"] = "seed_ensemble.training_metrics"
    for section, text, figure in SECTIONS:
        inputs[f"{section}_text"] = text
        inputs[f"{section}_figure"] = figure
    return inputs


def _interval(value: float, ci: list[float]) -> str:
    return f"{value:.4f} ({ci[0]:.4f} to {ci[1]:.4f})"


def score_table(comparison: dict[str, Any], improvements: dict[str, Any]) -> pd.DataFrame:
    """Every model tested: Levels 1, 2, the Level 4 baseline and each Level 5 candidate, on the same test split.

    The intervals' confidence is the run's ``statistics.confidence``, which every level's metrics record.
    """
    pct = percent(next(iter(comparison["levels"].values()))["confidence"])
    rows = [
        {
            "step": m["level"],
            "model": m["model"],
            f"accuracy ({pct} interval)": _interval(m["accuracy"], m["accuracy_ci"]),
            f"macro-F1 ({pct} interval)": _interval(m["macro_f1"], m["macro_f1_ci"]),
            "n": m["n"],
        }
        for m in comparison["levels"].values()
    ]
    for name, candidate in improvements["candidates"].items():
        test = candidate["test"]
        rows.append(
            {
                "step": "Level 5: " + name.replace("_", " "),
                "model": "Level 2 + " + name.replace("_", " "),
                f"accuracy ({pct} interval)": _interval(test["accuracy"], test["accuracy_ci"]),
                f"macro-F1 ({pct} interval)": _interval(test["macro_f1"], test["macro_f1_ci"]),
                "n": test["n"],
            }
        )
    return pd.DataFrame(rows)


def seed_members(seed_ensemble: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The seed ensemble's extra trainings as runs of the training table (one switched-off row when it is off)."""
    if not seed_ensemble.get("enabled"):
        return {"seed_ensemble": {"enabled": False}}
    return {f"seed_ensemble ({name.replace('_', ' ')})": member for name, member in seed_ensemble["members"].items()}


def training_table(trainings: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Each fine-tuning run: epochs run, the epoch with the lowest validation loss and that loss, the weights kept."""
    rows = []
    for run, training in trainings.items():
        history = pd.DataFrame(training.get("history") or [])
        if not training.get("enabled", True) or history.empty:
            off = {"epochs run": "switched off", "lowest validation loss": "", "at epoch": "", "weights kept": ""}
            rows.append({"run": run, **off})
            continue
        best = int(history["eval_cross_entropy"].idxmin())
        if training.get("averaged_epochs"):
            kept = "mean of epochs " + ", ".join(f"{e:g}" for e in training["averaged_epochs"])
        elif training.get("restored_best"):
            kept = f"epoch {history['epoch'][best]:g} (restored)"
        else:
            kept = f"epoch {history['epoch'].iloc[-1]:g} (the last)"
        rows.append(
            {
                "run": run,
                "epochs run": str(training.get("epochs_run", len(history))),
                "lowest validation loss": f"{history['eval_cross_entropy'][best]:.4f}",
                "at epoch": f"{history['epoch'][best]:g}",
                "weights kept": kept,
            }
        )
    return pd.DataFrame(rows)


def overview(
    comparison: dict[str, Any],
    errors: dict[str, Any],
    countermeasures: dict[str, Any],
    improvements: dict[str, Any],
    trainings: dict[str, dict[str, Any]],
) -> list[str]:
    """The overview's lines: both tables, then the Level 3, 4 and 5 findings in one sentence each, each a
    **[fact]** with the number it rests on."""
    lines = ["## Overview", "", "### Test scores of every model", ""]
    lines += [
        score_table(comparison, improvements).to_markdown(index=False, disable_numparse=True),
        "",
        "### Fine-tuning runs",
        "",
    ]
    lines += [training_table(trainings).to_markdown(index=False, disable_numparse=True), ""]
    sentences = []
    test_pairs = [p for p in errors["confusion_pairs"] if p["split"] == "test"]
    if "test" in errors["error_rate"]:
        n_errors = errors["n_errors"].get("test", 0)
        sentence = (
            f"Level 3: Level 2 misclassified {n_errors} test sentences (error rate {errors['error_rate']['test']:.3f})"
        )
        if test_pairs:
            top = max(test_pairs, key=lambda p: p["count"])
            sentence += f"; most often {top['true']} read as {top['predicted']} ({top['count']})"
        sentences.append(fact(f"{sentence}.", n_errors))
    used = countermeasures.get("countermeasures") or []
    sentences.append(
        fact(
            "Level 4: the Level 2 run uses "
            + (", ".join(c.replace("_", " ") for c in used) if used else "none")
            + " against over-fitting.",
            len(used),
        )
    )
    kept, candidates = improvements.get("chosen_by_dev"), improvements["candidates"]
    level2_dev = improvements["level2_dev_macro_f1"]
    if kept:
        pick = improvements.get("pick_on_dev")
        # metrics written before pick_on_dev existed hold only the single comparison
        single = candidates[kept].get("dev_vs_level2", {}).get("macro_f1")
        if pick and pick["k"] > 1:
            sure = f"; on dev against Level 2, read as the best of {pick['k']}: {pick['verdict']}"
        elif pick or single:
            sure = f"; on dev against Level 2: {(pick or single)['verdict']}"
        else:
            sure = ""
        dev = candidates[kept]["dev_macro_f1"]
        sentences.append(
            fact(
                f"Level 5: kept {kept.replace('_', ' ')} (the highest dev macro-F1, {dev:.4f} against Level 2's "
                f"{level2_dev:.4f}, a point estimate{sure}).",
                dev,
            )
        )
    elif candidates:
        best = max(candidates, key=lambda k: candidates[k]["dev_macro_f1"])
        sentences.append(
            fact(
                f"Level 5: no candidate kept (none has a dev macro-F1 above Level 2's {level2_dev:.4f}; the highest, "
                f"{best.replace('_', ' ')}'s, is {candidates[best]['dev_macro_f1']:.4f}).",
                candidates[best]["dev_macro_f1"],
            )
        )
    else:
        sentences.append(fact("Level 5: every candidate is switched off.", 0))
    lines.append(render(sentences).rstrip("\n"))
    return lines + [""]


def demote(markdown: str) -> str:
    """Every heading one level down (``#`` → ``##``) outside code blocks: a report becomes a section."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        out.append("#" + line if not fenced and re.match(r"#{1,5} ", line) else line)
    return "\n".join(out)


def course_report(
    task: dict[str, Any],
    comparison: dict[str, Any],
    errors: dict[str, Any],
    countermeasures: dict[str, Any],
    improvements: dict[str, Any],
    **parts: Any,
) -> str:
    """The course report in markdown (the node's inputs: :func:`course_inputs`).

    ``parts`` holds ``<run>_training`` (the runs' training histories, and the seed ensemble's members'
    as ``seed_ensemble_training``), ``<section>_text`` (the
    levels' reports) and ``<section>_figure`` (the path each figure was saved to, by
    :class:`qeu_kedro.datasets.FigureDataset`). A figure is linked by its file name: the catalog
    saves the figures beside this report.
    """
    expected = set(course_inputs()) - {"task", "comparison", "errors", "countermeasures", "improvements"}
    if set(parts) != expected:
        raise TypeError(
            f"course_report: missing {sorted(expected - set(parts))}, unknown {sorted(set(parts) - expected)}; "
            "wire the node with course_inputs()."
        )
    trainings = {run: parts[f"{run}_training"] for run in TRAINED} | seed_members(parts["seed_ensemble_training"])
    lines = [
        f"# JRTE `pn` sentiment, Levels 1-5 ({task['corpus']})",
        "",
        "Every level's report in reading order, each followed by its figure. The reports are also "
        "written on their own beside this file (`level1_report.md` ...), with the numbers behind them "
        "(`*_metrics.json`, `level3_errors.csv`).",
        "",
    ]
    lines += overview(comparison, errors, countermeasures, improvements, trainings)
    for section, _, figure in SECTIONS:
        name = PurePosixPath(str(parts[f"{section}_figure"])).name
        lines += [demote(parts[f"{section}_text"]).rstrip(), "", f"![{figure}]({name})", ""]
    return "\n".join(lines)
