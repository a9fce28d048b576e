"""Before / after for ``alpaca_sft``: the held-out answers with their measures, the paired comparison
over the prompts, the figure and the report."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from qeu_kedro.figures import suptitle
from qeu_kedro.stats import MIN_UNITS
from qeu_kedro.validation import fail

from .data import model_prompt
from .generation import generate
from .measures import measure_answer
from .training import answer_losses

logger = logging.getLogger(__name__)


def generate_answers(
    held_out: pd.DataFrame,
    lm: Any,
    prompt: Mapping[str, Any],
    generation: Mapping[str, Any],
    measures: Mapping[str, Any],
) -> pd.DataFrame:
    """Greedy answers to the held-out prompts (bounded by ``max_new_tokens``), with their measures,
    and the reference answers' loss under the model (:func:`answer_losses`).

    Returns:
        One row per prompt: NO, language, category, uniqueness, prompt, reference, answer,
        n_new_tokens, ended_by_itself, hit_max_new_tokens, answer_loss, then the measures of
        :func:`measure_answer` (chrF against the reference included).
    """
    from transformers import set_seed

    set_seed(generation["seed"])
    tokenizer, model = lm.tokenizer, lm.model
    model.eval()
    chat = bool(prompt["use_chat_template"])
    records = held_out.to_dict(orient="records")
    start = time.perf_counter()
    texts = [model_prompt(tokenizer, r["prompt"], chat) for r in records]
    answers = generate(
        model, tokenizer, texts, generation, desc=f"Answering {len(texts)} held-out prompts ({lm.source})"
    )
    # after generating: the trainer answer_losses builds cannot change how the model generates
    losses = answer_losses(model, tokenizer, held_out, prompt)
    rows = []
    for record, got, loss in zip(records, answers, losses, strict=True):
        rows.append(
            {
                "NO": record["NO"],
                "language": record["language"],
                "category": record["category"],
                "uniqueness": record["uniqueness"],
                "prompt": record["prompt"],
                "reference": record["completion"],
                **got,
                "hit_max_new_tokens": not got["ended_by_itself"],
                "answer_loss": loss,
                **measure_answer(
                    got["answer"],
                    record["language"],
                    measures["ngram"],
                    measures["kana_share_for_ja"],
                    record["prompt"],
                    record["completion"],
                ),
            }
        )
    logger.info(
        "Generated %d answers with %s and scored the reference answers (mean loss %.3f) in %.0f s",
        len(rows),
        lm.source,
        sum(losses) / max(1, len(losses)),
        time.perf_counter() - start,
    )
    return pd.DataFrame(rows)


_SUMMARY = ("n_chars", "duplicate_sentence_share", "language_match", "ended_by_itself", "n_new_tokens")


def _summary_columns(measures: Mapping[str, Any]) -> list[str]:
    n = measures["ngram"]
    return ["answer_loss", "chrf", f"repeated_{n}gram_share", f"copied_{n}gram_share", *_SUMMARY]


def _paired(measures: Mapping[str, Any]) -> dict[str, bool | None]:
    """Every before/after measure, compared with a paired interval, and whether higher is better for each.

    None: neither direction is better (the answers' length); its verdict says "higher", "lower" or
    "no evidence" instead of better or worse.
    """
    n = measures["ngram"]
    return {
        "answer_loss": False,
        "chrf": True,
        f"copied_{n}gram_share": False,
        "ended_by_itself": True,
        f"repeated_{n}gram_share": False,
        "duplicate_sentence_share": False,
        "language_match": True,
        "n_chars": None,
        "n_new_tokens": None,
    }


def paired_change(
    before: pd.Series, after: pd.Series, higher_is_better: bool | None, measures: Mapping[str, Any]
) -> dict[str, Any]:
    """The paired bootstrap of ``after - before`` over the prompts (:func:`qeu_kedro.stats.paired_bootstrap`)
    as a dict, with ``higher_is_better`` so that a reader of ``metrics.json`` can word it; for a measure
    with no better direction (None) the verdict is "higher", "lower" or "no evidence"."""
    from qeu_kedro.stats import paired_bootstrap

    c = paired_bootstrap(
        before.astype(float),
        after.astype(float),
        n_resamples=measures["bootstrap_resamples"],
        seed=measures["bootstrap_seed"],
        higher_is_better=True if higher_is_better is None else higher_is_better,
    ).to_dict()
    if higher_is_better is None:
        c["verdict"] = {"better": "higher", "worse": "lower"}.get(c["verdict"], c["verdict"])
    c["higher_is_better"] = higher_is_better
    return c


def _paired_within(rows: pd.DataFrame, measures: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`paired_change` of every paired measure over ``rows`` (a subgroup of the before/after table);
    empty for fewer than :data:`~qeu_kedro.stats.MIN_UNITS` prompts, too few for an interval."""
    if len(rows) < MIN_UNITS:
        return {}
    return {
        c: paired_change(rows[f"{c}_before"], rows[f"{c}_after"], higher, measures)
        for c, higher in _paired(measures).items()
    }


def _check_pairs(before: pd.DataFrame, after: pd.DataFrame) -> None:
    """Refuse answers tables that are not of the same held-out prompts: the same NO once each, the same prompt text."""
    hint = (
        "Both tables must answer the same held-out prompts: re-run both generation nodes "
        "(generate_answers_before and generate_answers_after) on the same split."
    )
    for name, frame in (("before", before), ("after", after)):
        repeated = frame["NO"].duplicated()
        if repeated.any():
            row = int(repeated.to_numpy().argmax())
            fail(f"alpaca_sft.answers_{name}", "NO", row, f"NO {frame['NO'].iloc[row]} is answered twice", hint)
    only_before = sorted(set(before["NO"]) - set(after["NO"]))
    only_after = sorted(set(after["NO"]) - set(before["NO"]))
    if only_before or only_after:
        fail(
            "alpaca_sft.answers_after",
            "NO",
            None,
            f"the prompts do not pair with alpaca_sft.answers_before: NO {only_before[:10]} only before, "
            f"NO {only_after[:10]} only after ({len(before)} and {len(after)} rows)",
            hint,
        )
    prompts = after.set_index("NO")["prompt"]
    for row, (no, text) in enumerate(zip(before["NO"], before["prompt"], strict=True)):
        if prompts[no] != text:
            fail(
                "alpaca_sft.answers_after",
                "prompt",
                int(after["NO"].tolist().index(no)),
                f"NO {no} has another prompt text than in alpaca_sft.answers_before (row {row})",
                hint,
            )


#: The outcomes of an issue target, read on the paired interval of its difference (:func:`target_outcome`).
TARGET_OUTCOMES: tuple[str, ...] = ("met", "not met", "not shown either way")


def target_outcome(comparison: Mapping[str, Any], side: str) -> str:
    """Whether a target on a paired difference is met, read on its 95 % interval, never on the point estimate.

    ``side`` is what the target asks of the difference: ``"above"`` 0 (strictly: a gain), ``"at least"`` 0
    or ``"at most"`` 0. "met": the whole interval is on that side (``above``: the low end above 0;
    ``at least``: the low end at or above 0; ``at most``: the high end at or below 0); "not met": the whole
    interval is on the other side (``above``: the high end at or below 0; ``at least``: the high end below 0;
    ``at most``: the low end above 0); otherwise "not shown either way" (the interval holds 0 and reaches
    both sides). A difference inside its interval is never called a target met, nor missed.
    """
    low, high = comparison["ci_low"], comparison["ci_high"]
    if side == "above":
        met, missed = low > 0, high <= 0
    elif side == "at least":
        met, missed = low >= 0, high < 0
    elif side == "at most":
        met, missed = high <= 0, low > 0
    else:
        raise ValueError(f"side must be 'above', 'at least' or 'at most', got {side!r}")
    return "met" if met else "not met" if missed else "not shown either way"


def issue_targets(
    paired: Mapping[str, Mapping[str, Any]], copied_vs_reference: Mapping[str, Any] | None, n: int
) -> dict[str, str]:
    """The issue's three targets, each one of :data:`TARGET_OUTCOMES` (:func:`target_outcome`), from the paired
    comparisons of :func:`compare_before_after` (``copied_vs_reference``: after - (reference + 0.10), paired by
    prompt; None in a ``metrics.json`` written before it was measured: that target then reads "no interval")."""
    return {
        "chrf_better": target_outcome(paired["chrf"], "above"),
        f"copied_{n}gram_share_within_reference_plus_0.10": (
            "no interval" if copied_vs_reference is None else target_outcome(copied_vs_reference, "at most")
        ),
        "ended_by_itself_not_lower": target_outcome(paired["ended_by_itself"], "at least"),
    }


def _outcome_words(outcome: str) -> str:
    """A target's outcome in report.md: the words of :data:`TARGET_OUTCOMES`, the third with its reason."""
    return "not shown either way** (the interval holds 0)" if outcome == TARGET_OUTCOMES[2] else f"{outcome}**"


def compare_before_after(
    before: pd.DataFrame, after: pd.DataFrame, train_metrics: Mapping[str, Any], measures: Mapping[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The before/after table (one row per held-out prompt) and the summary metrics.

    Summary: the mean of each measure (the reference answers' loss among them) overall and per requested
    language (``language_match`` and ``ended_by_itself`` as rates), all from the paired table; for every
    measure the paired difference over the held-out prompts with its 95 % bootstrap interval and a verdict
    (:func:`paired_change`), overall and within each language of at least :data:`~qeu_kedro.stats.MIN_UNITS`
    (6) prompts; the references' own copied n-gram share (the yardstick for copying) and the answers'
    share after against it, paired by prompt; and the issue's targets:

    - ``chrf_better``: chrF after - before is above 0;
    - ``copied_<n>gram_share_within_reference_plus_0.10``: the mean of (answer after - (reference + 0.10)),
      paired by prompt, is at most 0;
    - ``ended_by_itself_not_lower``: the share of answers ending by themselves after - before is at least 0.

    Each target is read on the paired 95 % interval of its difference, never on the point estimate
    (:func:`target_outcome`): "met" when the whole interval is on the target's side of 0, "not met" when
    the whole interval is on the other side, otherwise "not shown either way" (the interval holds 0).

    Raises:
        RawDataError: the two answers tables are not of the same prompts (the same NO set, the same prompt text).
    """
    _check_pairs(before, after)
    cols = _summary_columns(measures)
    n = measures["ngram"]
    keep = ["answer", *cols, "detected_language"]
    table = before[["NO", "language", "category", "uniqueness", "prompt", "reference"]].copy()
    for name, frame in (("before", before), ("after", after)):
        part = frame.set_index("NO")[keep].add_suffix(f"_{name}")
        table = table.join(part, on="NO")
    table[f"reference_copied_{n}gram_share"] = before[f"reference_copied_{n}gram_share"].to_numpy()

    def means(rows: pd.DataFrame, when: str) -> dict[str, float]:
        return {c: round(float(rows[f"{c}_{when}"].astype(float).mean()), 4) for c in cols}

    paired = {
        c: paired_change(table[f"{c}_before"], table[f"{c}_after"], higher, measures)
        for c, higher in _paired(measures).items()
    }
    reference_copied = round(float(table[f"reference_copied_{n}gram_share"].mean()), 4)
    # the answers' copied share after against the references' own + 0.10, paired by prompt: the copying target
    copied_vs_reference = paired_change(
        table[f"reference_copied_{n}gram_share"] + 0.10, table[f"copied_{n}gram_share_after"], False, measures
    )
    # the references' own share in the requested language: the ceiling of language_match (answers tables
    # written before this yardstick existed have no column for it)
    reference_language = (
        round(float(before["reference_language_match"].astype(float).mean()), 4)
        if "reference_language_match" in before
        else None
    )
    overall = {"before": means(table, "before"), "after": means(table, "after")}
    summary: dict[str, Any] = {
        "n_prompts": len(table),
        "train": {
            k: train_metrics[k]
            for k in (
                "base_model",
                "n_train",
                "n_train_trained_on",
                "n_validation",
                "global_step",
                "chosen_step",
                "instruction_language",
                "objective",
                "train_loss",
                "train_seconds",
                "validation_chrf_curve",
            )
        },
        "chrf": paired["chrf"],
        "paired": paired,
        f"reference_copied_{n}gram_share": reference_copied,
        f"copied_{n}gram_share_after_vs_reference_plus_0.10": copied_vs_reference,
        "reference_language_match": reference_language,
        "overall": overall,
        "by_language": {
            lang: {
                "n": int((table["language"] == lang).sum()),
                "before": means(table[table["language"] == lang], "before"),
                "after": means(table[table["language"] == lang], "after"),
                "paired": _paired_within(table[table["language"] == lang], measures),
            }
            for lang in sorted(table["language"].unique())
        },
        "targets": issue_targets(paired, copied_vs_reference, n),
    }
    logger.info("Before/after: %s", summary["overall"])
    return table, summary


_LABELS = {
    "answer_loss": "reference answers' loss (mean per answer)",
    "chrf": "chrF vs reference (0-100)",
    "repeated_{n}gram_share": "repeated {n}-gram share",
    "copied_{n}gram_share": "{n}-grams copied from the prompt",
    "duplicate_sentence_share": "duplicate sentence share",
    "language_match": "answer in requested language",
    "ended_by_itself": "answers that end by themselves",
    "n_chars": "answer length (chars)",
}


def plot_before_after(summary: Mapping[str, Any], measures: Mapping[str, Any], data: str) -> Any:
    """A 2 x 4 grid of before/after bars: the reference answers' loss, chrF, copying (with the
    references' own share as a line), repetition, ending, language, length, each with the paired 95 %
    interval of the difference and its verdict in the panel title; the validation chrF curve of the training."""
    import matplotlib.pyplot as plt

    n = measures["ngram"]
    colors = ["#9aa5b1", "#2f7ed8"]
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.4))
    # the references' own share, drawn as a line where the measure has that yardstick
    yardsticks = {
        f"copied_{n}gram_share": summary[f"reference_copied_{n}gram_share"],
        "language_match": summary.get("reference_language_match"),
    }
    panels = []
    for key in (
        "answer_loss",
        "chrf",
        "copied_{n}gram_share",
        "repeated_{n}gram_share",
        "ended_by_itself",
        "language_match",
        "n_chars",
    ):
        col = key.format(n=n)
        panels.append(
            (
                _LABELS[key].format(n=n),
                summary["overall"]["before"][col],
                summary["overall"]["after"][col],
                summary["paired"].get(col),
                yardsticks.get(col),
            )
        )
    for ax, (label, b, a, cmp, ref) in zip(axes.flat, panels, strict=False):
        bars = ax.bar(["before", "after"], [b, a], color=colors, label=["before", "after"])
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        title = label
        if cmp is not None:
            title += f"\nafter-before {cmp['difference']:+.3g} [{cmp['ci_low']:+.3g}, {cmp['ci_high']:+.3g}]: {cmp['verdict']}"
        ax.set_title(title, fontsize=8.5)
        top, room = max(a, b), 1.45  # room for a legend above the bar labels
        if ref is not None:
            ax.axhline(ref, color="#d9534f", linestyle="--", label="references' own share")
            top, room = max(top, ref), 1.8
            ax.legend(fontsize=7, loc="upper right")
        ax.set_ylim(0, top * room if top > 0 else 1.0)
    curve = summary["train"]["validation_chrf_curve"]
    ax = axes.flat[-1]
    ax.plot([p["step"] for p in curve], [p["validation_chrf"] for p in curve], marker="o", label="validation chrF")
    ax.axvline(summary["train"]["chosen_step"], color="#d9534f", linestyle="--", label="chosen checkpoint")
    ax.set_xlabel("LoRA step", fontsize=8)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    ax.set_title("checkpoint choice", fontsize=8.5)
    ax.legend(fontsize=7)
    axes.flat[0].legend(handles=list(axes.flat[0].patches), labels=["before (base model)", "after (LoRA)"], fontsize=7)
    t = summary["train"]
    suptitle(
        fig,
        f"alpaca_sft on {data}: {t['base_model']}, {t['global_step']} LoRA steps (step {t['chosen_step']} chosen), "
        f"{_trained_on(t)} training examples, n = {summary['n_prompts']} held-out prompts; "
        f"objective: {t['objective']}; instruction language: {t['instruction_language']}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _no_better_than_untrained(train: Mapping[str, Any]) -> list[str]:
    """A sentence when no checkpoint beat the untrained model (step 0) on validation chrF, else nothing."""
    curve = {p["step"]: p["validation_chrf"] for p in train.get("validation_chrf_curve") or []}
    if 0 not in curve or train["chosen_step"] not in curve or curve[train["chosen_step"]] > curve[0]:
        return []
    return [
        "",
        f"**No checkpoint beat the untrained model on validation chrF** (step 0: {curve[0]}; the adapter kept, "
        f"step {train['chosen_step']}: {curve[train['chosen_step']]}; point estimates on {train['n_validation']} "
        "prompts): the comparison below is of an adapter that validation did not prefer to the base model.",
    ]


def _trained_on(train: Mapping[str, Any]) -> str:
    """``n_train``, and how many of them were trained on where TRL dropped some (:func:`examples_trained_on`)."""
    kept = train.get("n_train_trained_on", train["n_train"])
    return str(train["n_train"]) if kept == train["n_train"] else f"{train['n_train']} ({kept} trained on)"


def _cell(text: Any, limit: int) -> str:
    s = str(text).replace("|", "\\|").replace("\n", " ⏎ ")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def describe_comparison(comparison: Mapping[str, Any], what: str, higher_is_better: bool | None) -> str:
    """One sentence for a paired comparison, saying which direction is better (for a measure where
    lower is better, an interval above 0 is "worse"; None: neither is)."""
    c = comparison
    direction = {True: "higher is better", False: "lower is better", None: "neither direction is better"}
    return (
        f"{what} changed by {c['difference']:+.4f} (95 % interval {c['ci_low']:+.4f} to {c['ci_high']:+.4f}, "
        f"n = {c['n']}; {direction[higher_is_better]}): {c['verdict']}"
    )


def _verdicts(summary: Mapping[str, Any], measures: Mapping[str, Any]) -> list[str]:
    """The paired comparisons and the targets, as sentences."""
    n = measures["ngram"]
    names = {
        "answer_loss": "The reference answers' loss (mean cross-entropy per token, one number per answer)",
        "chrf": "chrF against the reference",
        f"copied_{n}gram_share": f"The share of {n}-grams copied from the prompt",
        "ended_by_itself": "The share of answers that end by themselves",
        f"repeated_{n}gram_share": f"The repeated {n}-gram share",
        "duplicate_sentence_share": "The duplicate sentence share",
        "language_match": "The share of answers in the requested language",
        "n_chars": "The answers' length in characters",
        "n_new_tokens": "The answers' length in new tokens",
    }
    higher = _paired(measures)
    lines = [f"- {describe_comparison(summary['paired'][c], what, higher[c])}." for c, what in names.items()]
    ref = summary[f"reference_copied_{n}gram_share"]
    if summary.get("reference_language_match") is not None:
        lines.append(
            f"- The references themselves are in the requested language by the same detector in "
            f"{summary['reference_language_match']:.4f} of the prompts (a reference of kanji only reads as Chinese, "
            "one of digits or code as no language or English): the share of answers in the requested language "
            "is read against that."
        )
    copied = summary.get(f"copied_{n}gram_share_after_vs_reference_plus_0.10")
    ended, chrf = summary["paired"]["ended_by_itself"], summary["paired"]["chrf"]
    # from the intervals themselves (a metrics.json written before the targets were read on them holds booleans)
    t = issue_targets(summary["paired"], copied, n)
    copy_words = (
        f"copied {n}-gram share after ({summary['overall']['after'][f'copied_{n}gram_share']}) at most the references' "
        f"own ({ref}) + 0.10"
    )
    if copied is not None:
        copy_words += (
            f", paired by prompt: after - (reference + 0.10) = {copied['difference']:+.4f} "
            f"[{copied['ci_low']:+.4f}, {copied['ci_high']:+.4f}], {copied['verdict']}; met when at most 0"
            " (its whole interval)"
        )
    lines += [
        "",
        f"Targets: chrF better ({chrf['difference']:+.4f} [{chrf['ci_low']:+.4f}, {chrf['ci_high']:+.4f}], {chrf['verdict']}; met when "
        f"above 0): **{_outcome_words(t['chrf_better'])}; {copy_words}: "
        f"**{_outcome_words(t[f'copied_{n}gram_share_within_reference_plus_0.10'])}; answers ending by "
        f"themselves not fewer after ({ended['difference']:+.4f} [{ended['ci_low']:+.4f}, {ended['ci_high']:+.4f}], "
        f"{ended['verdict']}; met when at least 0): **{_outcome_words(t['ended_by_itself_not_lower'])}. "
        "Each target is read on its paired 95 % interval, never on the point estimate: met when the whole interval "
        "is on the target's side of 0, not met when it is all on the other side, otherwise not shown either way.",
    ]
    return lines


_GENERATION_COLUMNS = {"prompt": "prompt", "reference": "reference", "before": "answer_before", "after": "answer_after"}


def _markdown_table(rows: list[dict[str, Any]]) -> str:
    """``rows`` as a markdown table (``DataFrame.to_markdown``), every value written as it is."""
    return pd.DataFrame(rows).astype(str).to_markdown(index=False, disable_numparse=True)


def _change_cells(cmp: Mapping[str, Any] | None, n: int, change: str) -> dict[str, str]:
    """The difference with its interval and the verdict, or why there is none."""
    if cmp is None:
        few = f"{n} prompt{'' if n == 1 else 's'} (fewer than {MIN_UNITS}): no interval"
        return {change: few if n < MIN_UNITS else "", "verdict": ""}
    return {
        change: f"{cmp['difference']:+.4f} [{cmp['ci_low']:+.4f}, {cmp['ci_high']:+.4f}]",
        "verdict": cmp["verdict"],
    }


def _summary_rows(summary: Mapping[str, Any], cols: Sequence[str], n: int) -> list[dict[str, Any]]:
    """The summary table: each measure before and after, the paired difference with its interval, the verdict."""
    change = "after - before [95 % interval]"
    rows = []
    for c in cols:
        rows.append(
            {
                "measure": c,
                "before": summary["overall"]["before"][c],
                "after": summary["overall"]["after"][c],
                **_change_cells(summary["paired"][c], summary["n_prompts"], change),
            }
        )
    ref = summary[f"reference_copied_{n}gram_share"]
    rows.append(
        {"measure": f"references' own copied_{n}gram_share", "before": ref, "after": "", change: "", "verdict": ""}
    )
    if summary.get("reference_language_match") is not None:
        rows.append(
            {
                "measure": "references' own language_match",
                "before": summary["reference_language_match"],
                "after": "",
                change: "",
                "verdict": "",
            }
        )
    return rows


def report_markdown(
    table: pd.DataFrame,
    summary: Mapping[str, Any],
    measures: Mapping[str, Any],
    report: Mapping[str, Any],
    figure: str | None = None,
) -> str:
    """A readable report: the verdicts in words, the summary before/after, then the generations as a table.

    ``report`` is ``alpaca_sft.report``: ``data`` names the data in the title (as the figure's does),
    ``cell_chars`` is the longest cell of the generations table. ``figure`` is the path the before/after figure was saved to (:class:`qeu_kedro.datasets.FigureDataset`),
    linked by its file name after the summary: the catalog saves it beside the report.
    """
    cols = _summary_columns(measures)
    t = summary["train"]
    lines = [
        f"# alpaca_sft on {report['data']}: before vs after LoRA training",
        "",
        f"Model: {t['base_model']}; {_trained_on(t)} training examples, {t['global_step']} steps "
        f"({t['train_seconds']} s), adapter of step {t['chosen_step']} chosen by chrF on {t['n_validation']} "
        f"validation prompts; objective: {t['objective']}; instruction language: {t['instruction_language']}; "
        f"{summary['n_prompts']} held-out prompts, greedy decoding.",
        *_no_better_than_untrained(t),
        "",
        "## Verdict (paired differences over the held-out prompts, 95 % bootstrap intervals)",
        "",
        *_verdicts(summary, measures),
        "",
        _markdown_table(_summary_rows(summary, cols, measures["ngram"])),
    ]
    if figure:
        lines += ["", f"![before vs after]({PurePosixPath(str(figure)).name})"]
    change = "after - before [95 % interval]"
    by_language = [
        {
            "language": lang,
            "n": block["n"],
            "measure": c,
            "before": block["before"][c],
            "after": block["after"][c],
            **_change_cells(block.get("paired", {}).get(c), block["n"], change),
        }
        for lang, block in summary["by_language"].items()
        for c in cols
    ]
    generations = [
        {
            "NO": r["NO"],
            "lang": r["language"],
            "category": f"{r['category']}/{r['uniqueness']}",
            **{k: _cell(r[col], report["cell_chars"]) for k, col in _GENERATION_COLUMNS.items()},
        }
        for r in table.to_dict(orient="records")
    ]
    lines += ["", "## By requested language", "", _markdown_table(by_language)]
    lines += ["", "## Generations", "", _markdown_table(generations)]
    return "\n".join(lines) + "\n"
