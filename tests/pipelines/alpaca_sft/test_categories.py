"""The category node: a row's category and uniqueness completed by the rules, on hand-made rows."""

from __future__ import annotations

import pandas as pd
import pytest

from qeu_kedro.pipelines.alpaca_sft.nodes import assign_categories, check_alpaca
from qeu_kedro.validation import RawDataError

from .conftest import categorised

LONG = "とても長い説明の文章です。" * 3  # 39 characters


def _sheet(*rows):
    """Rows of (category, field, input, output, uniqueness) as a raw sheet, the other columns filled in."""
    frame = pd.DataFrame(rows, columns=["category", "field", "input", "output", "uniqueness"])
    n = len(frame)
    return frame.assign(NO=range(1, n + 1), instruction="指示", language="ja", reasoning="", seq=1)


def _category(params, field, inp="", output=LONG):
    return categorised(_sheet((None, field, inp, output, None)), params)["category"].iloc[0]


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("sql_query", "coding"),
        ("leetcode_problem", "coding"),
        ("solve_equation", "math"),
        ("unit_conversion", "math"),
        ("summarize_news", "summarization"),
        ("paraphrasing", "summarization"),
        ("extract_dates", "information_extraction"),
        ("ner_tagging", "information_extraction"),
        ("write_haiku", "creative"),
        ("short_stories", "creative"),
        ("trip_plan", "brainstorming"),
        ("gift_ideas", "brainstorming"),
    ],
)
def test_each_field_pattern(params, field, expected):
    assert _category(params, field) == expected


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("code_summary", "coding"),  # coding (1st) before summarization (3rd)
        ("number_list", "math"),  # math (2nd) before brainstorming (6th)
        ("story_paraphrase", "summarization"),  # summarization (3rd) before creative (5th)
        ("story_summary", "summarization"),  # "_sum(?!mar)" (math, 2nd) is a sum, not a summary
        ("paper_summarization", "summarization"),  # a seed task of the real data (was math/simple)
        ("program_for_summation", "coding"),  # coding (1st) before math's "_sum" (2nd)
        ("target_sum", "math"),  # "_sum" itself is still math
        ("series_summation", "math"),  # a summation is a sum
        ("email_plan", "creative"),  # creative (5th) before brainstorming (6th)
        # a pattern inside another word (seed tasks of the real data): no match, the default decides
        ("exercise_explanation", "open_qa"),  # "plan" in "explanation" is not a plan (was brainstorming)
        ("stereotype_explanation", "open_qa"),
        ("datatuner_example", "open_qa"),  # "ner_" in "datatuner_" is not named entities (was information_extraction)
        ("ner_tagging", "information_extraction"),
        ("weekly_meal_plan", "brainstorming"),
    ],
)
def test_the_first_matching_pattern_wins(params, field, expected):
    assert _category(params, field) == expected


def test_a_summarization_task_is_not_math_nor_simple(params):
    """Math's "_sum" once matched "_summarization": the real data's paper_summarization became math, hence simple."""
    out = categorised(_sheet((None, "paper_summarization", "論文の本文", LONG, None)), params)
    assert out[["category", "uniqueness"]].iloc[0].tolist() == ["summarization", "complex"]


def test_reordering_the_patterns_changes_the_category(params):
    rules = params["category_rules"]
    swapped = {**params, "category_rules": {**rules, "field_patterns": rules["field_patterns"][::-1]}}
    assert _category(params, "code_summary") == "coding" and _category(swapped, "code_summary") == "summarization"


def test_no_pattern_closed_qa_with_an_input_else_open_qa(params):
    assert _category(params, "explain_rain", inp="雨はなぜ降るのか") == "closed_qa"
    assert _category(params, "explain_rain") == "open_qa"
    assert _category(params, "") == "open_qa"  # no field at all


def test_source_labels_are_translated_and_our_categories_kept(params):
    sheet = _sheet(
        ("writing", "writing", "", LONG, None),
        ("fermi", "fermi", "", LONG, None),
        ("roleplay", "roleplay", "", LONG, None),
        ("coding", "coding", "", LONG, None),
        ("classification", "write_poem", "", LONG, None),  # given: the poem pattern is not asked
        ("summarization", "sql_query", "", LONG, None),
        ("open_qa", "math_problem", "", LONG, "complex"),  # given uniqueness kept too
    )
    out = categorised(sheet, params)
    assert out["category"].tolist() == [
        "creative",
        "open_qa",
        "creative",
        "coding",
        "classification",
        "summarization",
        "open_qa",
    ]
    assert out["uniqueness"].tolist() == ["complex"] * 4 + ["simple", "complex", "complex"]


def test_simple_rule(params):
    """A blank uniqueness comes from the category alone: a short reference output made it "simple", and
    the reasoning rules then put a sentence into that prompt (the answer's length leaked into the prompt)."""
    sheet = _sheet(
        ("math", "m", "", LONG, None),  # a simple category, however long the output
        ("classification", "c", "", LONG, None),
        ("open_qa", "a", "", "二十文字ちょうどの答えです。あいうえおか", None),  # 20 characters: short, still complex
        ("open_qa", "b", "", "二十一文字の答えになります。あいうえおかき", None),  # 21
        ("creative", "d", "", "  短い答え。 \n", None),
        ("creative", "e", "", "短い", "simple"),  # a given uniqueness is kept
    )
    out = categorised(sheet, params)
    assert out["uniqueness"].tolist() == ["simple", "simple", "complex", "complex", "complex", "simple"]
    # so the reasoning rules add their sentence to the given "simple" row only, whatever the answers' length
    from qeu_kedro.pipelines.alpaca_sft.nodes import apply_reasoning_rules

    reasoned = apply_reasoning_rules(out, params["reasoning_rules"])
    assert [bool(r) for r in reasoned["reasoning"]] == [False] * 5 + [True]
    rules = {**params["category_rules"], "simple_categories": []}
    out = categorised(sheet, {**params, "category_rules": rules})
    assert out["uniqueness"].tolist() == ["complex"] * 5 + ["simple"]


def test_the_sample_sheet_passes_unchanged(sheet, params):
    checked = check_alpaca(sheet, params["schema"], params["category_rules"])
    out = assign_categories(checked, params["category_rules"], params["schema"])
    pd.testing.assert_frame_equal(out, checked)
    assert out["category"].tolist() == sheet["category"].tolist()


@pytest.mark.parametrize("space", [" ", "  \t", "\u3000", "\n"])
def test_a_category_or_uniqueness_of_only_whitespace_is_blank(params, space):
    """As an empty cell: the rules decide (it was refused as an unknown value with the hint to leave it blank)."""
    rows = [("classification", "write_poem", "", LONG, None), (None, "write_poem", "", LONG, None)]
    blank = categorised(_sheet(*rows), params)
    spaced = categorised(_sheet(*[(space if c is None else c, f, i, o, space) for c, f, i, o, _ in rows]), params)
    pd.testing.assert_frame_equal(spaced, blank)
    assert spaced["category"].tolist() == ["classification", "creative"]
    assert spaced["uniqueness"].tolist() == ["simple", "complex"]
    checked = check_alpaca(_sheet((space, "f", "", LONG, space)), params["schema"], params["category_rules"])
    assert checked[["category", "uniqueness"]].isna().all(axis=None)


def test_an_unknown_label_in_the_raw_table_names_dataset_column_and_row(params):
    sheet = _sheet(("writing", "w", "", LONG, None), ("poetry", "p", "", LONG, None))
    with pytest.raises(RawDataError, match=r"dataset 'alpaca_raw', column 'category', row 1 .*unknown value 'poetry'"):
        categorised(sheet, params)


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        ({"labels": {"writing": "poetry"}}, "labels", "'writing' leads to the unknown category 'poetry'"),
        ({"field_patterns": [{"pattern": "poem", "category": "verse"}]}, "field_patterns", "unknown category 'verse'"),
        ({"simple_categories": ["maths"]}, "simple_categories", "unknown category 'maths'"),
        ({"field_patterns": [{"pattern": "stor(y", "category": "creative"}]}, "field_patterns", "not a regular"),
    ],
)
def test_bad_rules_name_the_parameter(params, change, key, problem):
    rules = {**params["category_rules"], **change}
    with pytest.raises(RawDataError) as info:
        categorised(_sheet(("open_qa", "f", "", LONG, None)), {**params, "category_rules": rules})
    assert f"dataset 'parameters alpaca_sft.category_rules', column '{key}'" in str(info.value)
    assert problem in str(info.value)
