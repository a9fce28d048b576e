"""The before/after summary: every measure with its paired interval and verdict, and the report's tables."""

from __future__ import annotations

import pandas as pd
import pytest

from qeu_kedro.pipelines.alpaca_sft.evaluation import _paired, compare_before_after, plot_before_after, report_markdown

MEASURES = {"ngram": 4, "bootstrap_resamples": 2000, "bootstrap_seed": 0}
REPORT = {"data": "hand-made answers", "cell_chars": 40}
TRAIN = {
    "base_model": "tiny",
    "n_train": 8,
    "n_train_trained_on": 7,  # TRL dropped one (its prompt alone filled max_length)
    "n_validation": 2,
    "global_step": 4,
    "chosen_step": 4,
    "instruction_language": "native",
    "objective": "sft",
    "train_loss": 1.7,
    "train_seconds": 1.0,
    "validation_chrf_curve": [{"step": 0, "validation_chrf": 1.0}, {"step": 4, "validation_chrf": 2.0}],
}


def answers(n: int, after: bool) -> pd.DataFrame:
    """``n`` prompts; after training each answer is 10 characters longer, in the right language, the
    reference answer's loss 0.5 lower, with the same chrF, copying and repetition as before."""
    return pd.DataFrame(
        {
            "NO": range(n),
            "language": "ja",
            "category": "open_qa",
            "uniqueness": "simple",
            "prompt": [f"問{i}|改行\nあり" for i in range(n)],
            "reference": "答え",
            "answer": [("長い答え" if after else "答え") + str(i) for i in range(n)],
            "answer_loss": [2.0 + 0.1 * (i % 4) - (0.5 if after else 0.0) for i in range(n)],
            "chrf": [float(i % 5) for i in range(n)],
            "repeated_4gram_share": 0.1,
            "copied_4gram_share": [0.2 + 0.01 * (i % 3) for i in range(n)],
            "n_chars": [20 + i % 4 + (10 if after else 0) for i in range(n)],
            "duplicate_sentence_share": 0.0,
            "language_match": [1.0 if after or i % 2 else 0.0 for i in range(n)],
            "ended_by_itself": True,
            "n_new_tokens": [12 + i % 3 for i in range(n)],
            "detected_language": "ja",
            "reference_copied_4gram_share": 0.1,
            "reference_language_match": [i % 4 != 0 for i in range(n)],  # 3 of 4 references read as Japanese
        }
    )


@pytest.fixture(scope="module")
def compared():
    return compare_before_after(answers(24, False), answers(24, True), TRAIN, MEASURES)


def test_every_measure_gets_a_paired_interval_and_a_verdict_in_its_own_direction(compared):
    _, summary = compared
    assert (
        set(summary["paired"])
        == set(_paired(MEASURES))
        == {
            "answer_loss",
            "chrf",
            "copied_4gram_share",
            "repeated_4gram_share",
            "ended_by_itself",
            "duplicate_sentence_share",
            "language_match",
            "n_chars",
            "n_new_tokens",
        }
    )
    paired = summary["paired"]
    # unchanged measures: a zero difference and no evidence
    assert paired["chrf"]["difference"] == 0.0 and paired["chrf"]["verdict"] == "no evidence"
    # half the answers move into the requested language: better, with the interval above 0
    assert paired["language_match"]["difference"] == pytest.approx(0.5) and paired["language_match"]["ci_low"] > 0
    assert paired["language_match"]["verdict"] == "better"
    # length has no better direction: 10 characters longer is "higher", never "better"
    assert paired["n_chars"]["difference"] == pytest.approx(10.0) and paired["n_chars"]["verdict"] == "higher"
    assert paired["n_new_tokens"]["verdict"] == "no evidence"
    # the reference answers' loss: lower is better, so 0.5 lower is "better", with the interval below 0
    loss = paired["answer_loss"]
    assert loss["difference"] == pytest.approx(-0.5) and loss["ci_high"] < 0 and loss["verdict"] == "better"


def test_the_report_names_its_pipeline_and_data_in_its_title(compared):
    """report.data was passed to the figure only: report.md named the model and n but not the data."""
    table, summary = compared
    report = report_markdown(table, summary, MEASURES, {**REPORT, "data": "ja-instruct (Japanese seed tasks)"})
    assert report.splitlines()[0] == "# alpaca_sft on ja-instruct (Japanese seed tasks): before vs after LoRA training"


def test_the_report_tables_carry_the_intervals_and_escape_the_cells(compared):
    table, summary = compared
    report = report_markdown(table, summary, MEASURES, REPORT)
    assert "objective: sft; instruction language: native" in report  # how the adapter was trained
    assert "Model: tiny; 8 (7 trained on) training examples" in report
    header = next(line for line in report.splitlines() if line.startswith("| measure"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "measure",
        "before",
        "after",
        "after - before [95 % interval]",
        "verdict",
    ]
    row = next(line for line in report.splitlines() if line.startswith("| n_chars"))
    n = summary["paired"]["n_chars"]
    assert f"{n['difference']:+.4f} [{n['ci_low']:+.4f}, {n['ci_high']:+.4f}]" in row and "higher" in row
    assert "The answers' length in characters changed by +10.0000" in report and "neither direction is better" in report
    loss = next(line for line in report.splitlines() if line.startswith("| answer_loss"))
    assert "-0.5000 [-0.5000, -0.5000]" in loss and "better" in loss and "pooled" not in report
    # the references' own shares: the yardsticks of copying and of the language
    assert summary["reference_language_match"] == 0.75
    row = next(line for line in report.splitlines() if line.startswith("| references' own language_match"))
    assert [c.strip() for c in row.strip("|").split("|")][:2] == ["references' own language_match", "0.75"]
    assert "The references themselves are in the requested language by the same detector in 0.7500" in report
    # the generations table: one row per prompt; a '|' or a line break in a cell cannot break the table
    generations = report.split("## Generations")[1].strip().splitlines()
    assert len(generations) == 2 + 24 and all(line.count(" | ") == 6 for line in generations[2:])
    assert "問0\\|改行 ⏎ あり" in generations[2]


def written_and_read_back(tmp_path, said: list[str], references: list[str]) -> tuple[pd.DataFrame, ...]:
    """Six prompts' answers before and after (the answers after are ``said``, the references
    ``references``) saved and loaded through the catalog's own answers_before/after entries."""
    import yaml
    from kedro.io import DataCatalog

    from .conftest import REPO

    config = yaml.safe_load((REPO / "conf" / "base" / "catalog_alpaca_sft.yml").read_text(encoding="utf-8"))
    names = ("alpaca_sft.answers_before", "alpaca_sft.answers_after")
    catalog = DataCatalog.from_config(
        {name: dict(config[name], filepath=str(tmp_path / f"{name}.csv")) for name in names}
    )
    before, after = answers(6, False), answers(6, True)
    after["answer"] = said
    before["reference"] = references
    catalog.save(names[0], before)
    catalog.save(names[1], after)
    return before, after, catalog.load(names[0]), catalog.load(names[1])


def test_answers_read_back_from_their_csv_keep_an_empty_answer_and_the_text_none(tmp_path):
    """The catalog's answers_before/after entries: what the model said is read back as written (pandas'
    default NA strings made an empty answer or the answer "None" NaN, printed as ``nan`` in report.md)."""
    said = ["", "None", "NA", "nan", "null", "N/A"]  # ended its turn at once, then answers that are these words
    before, after, loaded_before, loaded_after = written_and_read_back(
        tmp_path, said, ["None", "NA", "", "答え", "答え", "答え"]
    )
    assert loaded_after["answer"].tolist() == said
    assert loaded_before["reference"].tolist() == before["reference"].tolist()
    pd.testing.assert_frame_equal(loaded_after, after, check_dtype=False)
    pd.testing.assert_frame_equal(loaded_before, before, check_dtype=False)

    table, summary = compare_before_after(loaded_before, loaded_after, TRAIN, MEASURES)
    assert table["answer_after"].tolist() == said
    report = report_markdown(table, summary, MEASURES, REPORT)
    rows = report.split("## Generations")[1].strip().splitlines()[2:]
    assert [[c.strip() for c in row.strip("|").split(" | ")][-1] for row in rows] == said
    assert "| None " in rows[0] and "nan" not in rows[0] + rows[1]


def test_answers_that_are_all_numbers_are_read_back_as_text(tmp_path):
    """Held-out math prompts answered "42", "3.0", "007": read back as numbers they would lose their form
    ("007" -> 7) and stop being strings the report and the measures can read."""
    said, references = ["42", "3.0", "007", "1e3", "-5", "12"], ["42", "3", "7", "1000", "-5", "12"]
    _, _, loaded_before, loaded_after = written_and_read_back(tmp_path, said, references)
    assert loaded_after["answer"].tolist() == said and loaded_before["reference"].tolist() == references
    table, _ = compare_before_after(loaded_before, loaded_after, TRAIN, MEASURES)
    assert table["answer_after"].tolist() == said and table["reference"].tolist() == references


def test_each_language_gets_its_own_paired_interval_except_one_of_too_few_prompts():
    before, after = answers(24, False), answers(24, True)
    for frame in (before, after):
        frame.loc[12:22, "language"] = "en"  # 12 ja, 6 en, 5 zh, 1 ko
        frame.loc[18:22, "language"] = "zh"
        frame.loc[23, "language"] = "ko"
    table, summary = compare_before_after(before, after, TRAIN, MEASURES)
    by = summary["by_language"]
    assert {lang: block["n"] for lang, block in by.items()} == {"en": 6, "ja": 12, "ko": 1, "zh": 5}
    # within a language: the same paired bootstrap as overall, on that language's prompts only
    en = table[table["language"] == "en"]
    mean_gain = (en["language_match_after"] - en["language_match_before"]).mean()
    assert by["en"]["paired"]["language_match"]["difference"] == pytest.approx(mean_gain)
    assert by["en"]["paired"]["n_chars"]["verdict"] == "higher" and by["en"]["paired"]["n_chars"]["n"] == 6
    assert by["zh"]["paired"] == {} and by["ko"]["paired"] == {}  # fewer than 6 prompts: no interval, no verdict
    report = report_markdown(table, summary, MEASURES, REPORT)
    section = report.split("## By requested language")[1].split("## Generations")[0]
    header = next(line for line in section.splitlines() if line.startswith("| language"))
    assert "after - before [95 % interval]" in header and "verdict" in header
    for lang, few in (("zh", "5 prompts (fewer than 6): no interval"), ("ko", "1 prompt (fewer than 6): no interval")):
        rows = [line for line in section.splitlines() if line.startswith(f"| {lang}")]
        assert len(rows) == len(summary["overall"]["before"]) and all(few in line for line in rows)
    en_chars = next(line for line in section.splitlines() if line.startswith("| en") and "| n_chars " in line)
    c = by["en"]["paired"]["n_chars"]
    assert f"{c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]" in en_chars and "higher" in en_chars


def test_the_figure_draws_the_references_own_shares_on_the_copying_and_language_panels(compared):
    import matplotlib

    matplotlib.use("Agg")
    _, summary = compared
    fig = plot_before_after(summary, MEASURES, "hand-made answers")
    lines = {ax.get_title().split("\n")[0]: [line.get_ydata()[0] for line in ax.get_lines()] for ax in fig.axes}
    assert lines["4-grams copied from the prompt"] == [0.1] and lines["answer in requested language"] == [0.75]
    assert lines["chrF vs reference (0-100)"] == []
    # an answers table written before the language yardstick existed: no line, no row, no sentence
    old = {**summary, "reference_language_match": None}
    fig = plot_before_after(old, MEASURES, "hand-made answers")
    assert not next(ax for ax in fig.axes if ax.get_title().startswith("answer in requested")).get_lines()


def test_the_report_says_when_no_checkpoint_beat_the_untrained_model():
    table, summary = compare_before_after(answers(8, False), answers(8, True), TRAIN, MEASURES)
    assert "No checkpoint beat the untrained model" not in report_markdown(table, summary, MEASURES, REPORT)
    worse = {
        **TRAIN,
        "validation_chrf_curve": [{"step": 0, "validation_chrf": 3.0}, {"step": 4, "validation_chrf": 2.0}],
    }
    table, summary = compare_before_after(answers(8, False), answers(8, True), worse, MEASURES)
    report = report_markdown(table, summary, MEASURES, REPORT)
    assert (
        "**No checkpoint beat the untrained model on validation chrF** (step 0: 3.0; the adapter kept, step 4: 2.0"
        in report
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda after: after.iloc[:8], r"answers_after', column 'NO'.*NO \[8, 9\] only before"),
        (
            lambda after: after.assign(prompt=after["prompt"].where(after["NO"] != 3, "another prompt")),
            r"answers_after', column 'prompt', row 3.*NO 3 has another prompt text",
        ),
        (lambda after: pd.concat([after, after.iloc[[2]]]), r"answers_after', column 'NO', row 10.*answered twice"),
    ],
)
def test_answers_tables_that_do_not_pair_are_refused(edit, message):
    """answers(10) against answers(8) gave means 1.625 vs 19.3 with a paired difference of +0.0000: the
    means came from the unjoined tables. Both tables must answer the same prompts."""
    from qeu_kedro.validation import RawDataError

    with pytest.raises(RawDataError, match=message) as info:
        compare_before_after(answers(10, False), edit(answers(10, True)), TRAIN, MEASURES)
    assert "re-run both generation nodes" in str(info.value)


def _targets_line(report: str) -> str:
    return next(line for line in report.splitlines() if line.startswith("Targets"))


def test_a_target_whose_interval_holds_0_is_neither_met_nor_missed_whatever_its_point_estimate():
    """The copying and ending targets are read on their paired intervals, not on the mean: a mean on the target's
    side with an interval that still holds 0 is "not shown either way" (it was "met" on the mean), and so is a
    mean on the wrong side inside its interval (it was "not met")."""
    n = 24
    before, after = answers(n, False), answers(n, True)
    after["ended_by_itself"] = [i != 5 for i in range(n)]  # one answer of 24 stops ending by itself
    # the references copy 0.1, the target 0.2: after copies 0 or 0.45 alternately (mean 0.225, interval holds 0.2)
    after["copied_4gram_share"] = [0.0 if i % 2 else 0.45 for i in range(n)]
    _, summary = compare_before_after(before, after, TRAIN, MEASURES)
    assert summary["overall"]["after"]["ended_by_itself"] < summary["overall"]["before"]["ended_by_itself"]
    assert summary["paired"]["ended_by_itself"]["verdict"] == "no evidence"
    copied = summary["copied_4gram_share_after_vs_reference_plus_0.10"]
    assert copied["difference"] == pytest.approx(0.025) and copied["ci_low"] < 0 < copied["ci_high"]
    assert summary["targets"] == {
        "chrf_better": "not met",  # chrF unchanged on every prompt: the interval is [0, 0], shown not better
        "copied_4gram_share_within_reference_plus_0.10": "not shown either way",
        "ended_by_itself_not_lower": "not shown either way",
    }
    targets = _targets_line(report_markdown(*compare_before_after(before, after, TRAIN, MEASURES), MEASURES, REPORT))
    assert (
        f"[{copied['ci_low']:+.4f}, {copied['ci_high']:+.4f}], no evidence; met when at most 0 (its whole interval): "
        "**not shown either way** (the interval holds 0)" in targets
    )
    assert "no evidence; met when at least 0): **not shown either way** (the interval holds 0)" in targets
    assert "met when above 0): **not met**" in targets

    # copying a little below the yardstick on average (0.0 or 0.39: mean 0.195 <= 0.2), its interval holding 0:
    # not met by the mean alone; no answer changes how it ends (interval [0, 0]): not fewer, met
    after["copied_4gram_share"] = [0.0 if i % 2 else 0.39 for i in range(n)]
    after["ended_by_itself"] = before["ended_by_itself"]
    _, summary = compare_before_after(before, after, TRAIN, MEASURES)
    copied = summary["copied_4gram_share_after_vs_reference_plus_0.10"]
    assert copied["difference"] == pytest.approx(-0.005) and copied["verdict"] == "no evidence"
    assert summary["targets"]["copied_4gram_share_within_reference_plus_0.10"] == "not shown either way"
    assert summary["targets"]["ended_by_itself_not_lower"] == "met"
    targets = _targets_line(report_markdown(*compare_before_after(before, after, TRAIN, MEASURES), MEASURES, REPORT))
    assert "met when at most 0 (its whole interval): **not shown either way** (the interval holds 0)" in targets


@pytest.mark.parametrize(
    ("edit", "target", "outcome"),
    [
        # chrF: +5 on every prompt (interval above 0), -5 on every prompt (below), +5 and -4 alternately (holds 0)
        (lambda a: a.assign(chrf=a["chrf"] + 5), "chrf_better", "met"),
        (lambda a: a.assign(chrf=a["chrf"] - 5), "chrf_better", "not met"),
        (
            lambda a: a.assign(chrf=a["chrf"] + [5 if i % 2 else -4 for i in range(24)]),
            "chrf_better",
            "not shown either way",
        ),
        # copying against the references' 0.1 + 0.10: 0.0 everywhere (all below), 0.6 everywhere (all above)
        (lambda a: a.assign(copied_4gram_share=0.0), "copied_4gram_share_within_reference_plus_0.10", "met"),
        (lambda a: a.assign(copied_4gram_share=0.6), "copied_4gram_share_within_reference_plus_0.10", "not met"),
        (
            lambda a: a.assign(copied_4gram_share=[0.0 if i % 2 else 0.45 for i in range(24)]),
            "copied_4gram_share_within_reference_plus_0.10",
            "not shown either way",
        ),
        # ending: before, every answer ends by itself; after, none, or 4 of 24 stop (both intervals below 0)
        (lambda a: a.assign(ended_by_itself=False), "ended_by_itself_not_lower", "not met"),
        (lambda a: a.assign(ended_by_itself=[i % 6 != 0 for i in range(24)]), "ended_by_itself_not_lower", "not met"),
    ],
)
def test_each_target_outcome_from_hand_made_answers(edit, target, outcome):
    _, summary = compare_before_after(answers(24, False), edit(answers(24, True)), TRAIN, MEASURES)
    assert summary["targets"][target] == outcome
    assert isinstance(summary["targets"][target], str)
    words = {"met": "**met**", "not met": "**not met**", "not shown either way": "**not shown either way** (the"}
    report = report_markdown(
        *compare_before_after(answers(24, False), edit(answers(24, True)), TRAIN, MEASURES), MEASURES, REPORT
    )
    assert words[outcome] in _targets_line(report)


def test_ended_by_itself_target_is_met_on_an_interval_at_or_above_0_and_unshown_when_it_holds_0():
    """Before, half the answers end by themselves: after, all of them (met), or alternately one more and one
    fewer (not shown either way)."""
    before = answers(24, False).assign(ended_by_itself=[i % 2 == 0 for i in range(24)])
    all_end = answers(24, True)
    assert compare_before_after(before, all_end, TRAIN, MEASURES)[1]["targets"]["ended_by_itself_not_lower"] == "met"
    swapped = answers(24, True).assign(ended_by_itself=[i % 2 == 1 for i in range(24)])
    _, summary = compare_before_after(before, swapped, TRAIN, MEASURES)
    assert summary["paired"]["ended_by_itself"]["ci_low"] < 0 < summary["paired"]["ended_by_itself"]["ci_high"]
    assert summary["targets"]["ended_by_itself_not_lower"] == "not shown either way"


@pytest.mark.parametrize(
    ("low", "high", "side", "outcome"),
    [
        (0.1, 0.3, "above", "met"),
        (0.0, 0.3, "above", "not shown either way"),
        (-0.3, 0.0, "above", "not met"),
        (0.0, 0.3, "at least", "met"),
        (-0.1, 0.3, "at least", "not shown either way"),
        (-0.3, -0.1, "at least", "not met"),
        (-0.3, 0.0, "at most", "met"),
        (-0.3, 0.1, "at most", "not shown either way"),
        (0.1, 0.3, "at most", "not met"),
    ],
)
def test_target_outcome_reads_the_interval_ends(low, high, side, outcome):
    from qeu_kedro.pipelines.alpaca_sft.evaluation import TARGET_OUTCOMES, target_outcome

    assert target_outcome({"difference": (low + high) / 2, "ci_low": low, "ci_high": high}, side) == outcome
    assert outcome in TARGET_OUTCOMES
