"""The prompt format: instruction, input and reasoning in their sections; the split."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from qeu_kedro.pipelines.alpaca_sft.nodes import format_prompt, make_examples, model_prompt, split_examples
from qeu_kedro.validation import RawDataError

RECORD = {
    "NO": 1,
    "instruction": "Translate.",
    "input": "猫",
    "reasoning": "One word.",
    "output": "cat",
    "language": "en",
}


def test_sections_in_order_with_the_chat_template(params):
    text = format_prompt(RECORD, params["prompt"])
    assert text == "### Instruction:\nTranslate.\n\n### Input:\n猫\n\n### Reasoning:\nOne word."


def test_empty_sections_are_left_out_and_a_response_header_closes_a_plain_prompt(params):
    plain = dict(params["prompt"], use_chat_template=False)
    text = format_prompt(dict(RECORD, input="", reasoning=None), plain)
    assert text == "### Instruction:\nTranslate.\n\n### Response:\n"


def test_model_prompt_wraps_the_text_as_a_user_turn():
    calls = []

    def apply_chat_template(messages, tokenize, add_generation_prompt):
        calls.append((messages, tokenize, add_generation_prompt))
        return "<user>" + messages[0]["content"] + "<assistant>"

    tokenizer = SimpleNamespace(chat_template="{{ x }}", apply_chat_template=apply_chat_template)
    assert model_prompt(tokenizer, "hi", True) == "<user>hi<assistant>"
    assert calls == [([{"role": "user", "content": "hi"}], False, True)]
    assert model_prompt(tokenizer, "hi", False) == "hi"


def test_chat_template_on_a_base_model_says_what_to_do():
    with pytest.raises(ValueError, match="set it to false"):
        model_prompt(SimpleNamespace(chat_template=None), "hi", True)


def test_examples_and_a_stratified_reproducible_split(sheet, params):
    from qeu_kedro.pipelines.alpaca_sft.nodes import apply_reasoning_rules, check_alpaca, to_records

    records = to_records(
        apply_reasoning_rules(
            check_alpaca(sheet, params["schema"], params["category_rules"]), params["reasoning_rules"]
        )
    )
    examples = make_examples(records, params["prompt"], params["split"]["group_by"])
    assert len(examples) == len(sheet) == 90 and examples["completion"].iloc[0] == "日本の首都は東京です。"
    assert "Don't output the same answer" in examples["prompt"].iloc[0]
    train, validation, held_out = split_examples(examples, params["split"])
    again = split_examples(examples, params["split"])
    assert held_out["NO"].tolist() == again[2]["NO"].tolist() and validation["NO"].tolist() == again[1]["NO"].tolist()
    assert len(held_out) == params["split"]["eval_size"] and len(validation) == params["split"]["validation_size"]
    assert len(train) == 90 - len(held_out) - len(validation)
    # Three disjoint parts: the held-out prompts play no part in training or in the checkpoint choice.
    assert set(train["NO"]).isdisjoint(held_out["NO"]) and set(validation["NO"]).isdisjoint(held_out["NO"])
    assert set(train["NO"]).isdisjoint(validation["NO"])
    assert held_out["language"].value_counts().to_dict() == {"en": 8, "ja": 8, "zh": 8}
    assert validation["language"].value_counts().to_dict() == {"en": 3, "ja": 3, "zh": 3}


def test_english_instruction_switch_moves_the_own_instruction_into_the_input(params):
    english = dict(params["prompt"], instruction_language="en")
    text = format_prompt(dict(RECORD, instruction="猫を英訳せよ。", reasoning=""), english)
    assert text == f"### Instruction:\n{params['prompt']['english_instruction']}\n\n### Input:\n猫を英訳せよ。\n\n猫"
    # Without an input of its own, the instruction alone becomes the input.
    text = format_prompt(dict(RECORD, instruction="猫とは？", input="", reasoning=""), english)
    assert text.endswith("### Input:\n猫とは？")
    with pytest.raises(ValueError, match="'native' or 'en'"):
        format_prompt(RECORD, dict(params["prompt"], instruction_language="ja"))


@pytest.mark.parametrize(
    ("keep", "split", "words"),
    [
        (
            8,
            {"eval_size": 6, "validation_size": 6},
            r"alpaca_sft.split.validation_size = 6 needs more than the rows left after the held-out prompts \(2\)",
        ),
        (5, {"eval_size": 6}, r"alpaca_sft.split.eval_size = 6 needs more than the sheet's rows \(5\)"),
        (
            None,
            {"validation_size": 2, "group_by": None},
            r"column 'language'.*validation_size = 2 of 66 rows cannot hold each of the 3 values",
        ),
        ("one zh", {"group_by": None}, r"column 'language'.*one row with language 'zh'"),
        (None, {"eval_size": 7}, r"column 'seq'.*eval_size = 7 rows cannot be made of whole groups of seq"),
    ],
)
def test_a_sheet_too_small_for_the_split_is_refused_in_words(sheet, params, keep, split, words):
    from qeu_kedro.pipelines.alpaca_sft.nodes import apply_reasoning_rules, check_alpaca, to_records

    records = to_records(
        apply_reasoning_rules(
            check_alpaca(sheet, params["schema"], params["category_rules"]), params["reasoning_rules"]
        )
    )
    examples = make_examples(records, params["prompt"], "seq")
    if keep == "one zh":
        examples = pd.concat([examples[examples["language"] != "zh"], examples[examples["language"] == "zh"].head(1)])
    elif keep is not None:
        examples = examples.head(keep)
    with pytest.raises(RawDataError, match=r"dataset 'alpaca_raw'.*" + words):
        split_examples(examples, {**params["split"], **split})


def _examples(sheet, params):
    from qeu_kedro.pipelines.alpaca_sft.nodes import apply_reasoning_rules, check_alpaca, to_records

    checked = check_alpaca(sheet, params["schema"], params["category_rules"])
    return make_examples(to_records(apply_reasoning_rules(checked, params["reasoning_rules"])), params["prompt"], "seq")


@pytest.mark.parametrize("validation_size", [9, 3])
def test_a_task_and_its_translations_stay_in_one_part(sheet, params, validation_size):
    """The sample asks each of its tasks (seq) in ja, en and zh: split by row, the 12-task sheet's held-out
    tasks [8, 12, 4, 7, 10, 12] all had a translation in training. Split by seq, no task is in two parts."""
    split = {**params["split"], "validation_size": validation_size}
    parts = split_examples(_examples(sheet, params), split)
    task = dict(zip(sheet["NO"], sheet["seq"], strict=True))
    tasks = [{task[no] for no in part["NO"]} for part in parts]
    assert not (tasks[0] & tasks[1] or tasks[0] & tasks[2] or tasks[1] & tasks[2])
    assert [len(p) for p in parts] == [90 - 24 - validation_size, validation_size, 24]
    # each task whole: its three languages together
    assert all(len(part) == 3 * len(t) for part, t in zip(parts, tasks, strict=True))
    again = split_examples(_examples(sheet, params), split)
    assert all(a["NO"].tolist() == b["NO"].tolist() for a, b in zip(parts, again, strict=True))
    other = split_examples(_examples(sheet, params), {**split, "seed": 7})
    assert other[2]["NO"].tolist() != parts[2]["NO"].tolist()  # the seed decides which tasks


def test_groups_of_unequal_sizes_make_the_size_another_way_when_the_seeded_order_cannot():
    """Groups of 3 and 2 rows, 6 held out: taken in the seeded order, each that fits, seeds 2 to 5 were left
    with rows over and refused although 3 + 3 or 2 + 2 + 2 make 6."""
    from qeu_kedro.pipelines.alpaca_sft.data import _groups_making

    sizes = pd.Series({g: n for g, n in enumerate([3, 2, 2, 3, 3, 3, 2, 2, 3, 3])})
    assert _groups_making([0, 1, 3], sizes, 6) is not None  # 3 + 2 is 5, and no later group adds 1: 3 + 3
    assert sorted(_groups_making([0, 1, 3], sizes, 6)) == [0, 3]
    # 2 + 2 is 4 and no group adds 2 more: the first way the order gives is 3 + 3
    assert _groups_making([1, 2, 5, 0], sizes, 6) == [5, 0]
    assert _groups_making([0, 3], sizes, 5) is None  # 3 + 3 cannot make 5
    equal = pd.Series({g: 3 for g in range(6)})
    assert _groups_making([4, 1, 0, 5], equal, 6) == [4, 1]  # one size: the first groups of the order, as before


def test_two_rows_with_the_same_instruction_and_input_are_refused(sheet, params):
    from qeu_kedro.pipelines.alpaca_sft.nodes import check_alpaca, check_split

    sheet.loc[20, ["instruction", "input"]] = sheet.loc[3, ["instruction", "input"]].to_numpy()
    sheet.loc[20, "instruction"] = "  " + sheet.loc[20, "instruction"]  # the same once stripped
    checked = check_alpaca(sheet, params["schema"], params["category_rules"])
    with pytest.raises(
        RawDataError, match=r"column 'instruction', row 20.*NO 21 has the same instruction and input as NO 4"
    ):
        check_split(checked, params["split"])
    from qeu_kedro.sample_data.alpaca import make_alpaca

    fine = check_alpaca(make_alpaca(), params["schema"], params["category_rules"])
    pd.testing.assert_frame_equal(check_split(fine, params["split"]), fine)  # a possible split: the table unchanged


@pytest.mark.parametrize(
    ("split", "words"),
    [
        ({"group_by": "task"}, r"parameters alpaca_sft.split', column 'group_by'.*'task' is not a column"),
        ({"eval_size": 100}, r"eval_size = 100 needs more than the sheet's rows \(90\)"),
    ],
)
def test_check_split_refuses_what_split_examples_would(sheet, params, split, words):
    from qeu_kedro.pipelines.alpaca_sft.nodes import check_alpaca, check_split

    checked = check_alpaca(sheet, params["schema"], params["category_rules"])
    with pytest.raises(RawDataError, match=words):
        check_split(checked, {**params["split"], **split})


@pytest.mark.parametrize(
    ("split", "words"),
    [
        # a column of the sheet that the examples drop (check_split passed, then split_sft_examples: KeyError)
        (
            {"stratify_by": "field", "group_by": None},
            r"column 'stratify_by'.*alpaca_sft\.split\.stratify_by: 'field' is not a column of the examples.*"
            r"\['NO', 'language', 'category', 'uniqueness'\]",
        ),
        # a typo (KeyError('Column not found') from the grouped split)
        (
            {"stratify_by": "langauge"},
            r"alpaca_sft\.split\.stratify_by: 'langauge' is not a column.*\['NO', 'language', 'category', 'uniqueness', "
            r"'seq'\]",
        ),
        # too few held-out prompts for the bootstrap (refused only at compare_before_after, after training)
        ({"eval_size": 3, "group_by": None}, r"column 'eval_size'.*3 held-out prompts are too few.*at least 6"),
        ({"eval_size": 3}, r"alpaca_sft\.split\.eval_size: 3 held-out prompts are too few"),
        # no validation prompt: an empty validation (grouped), or scikit-learn's InvalidParameterError (by row)
        ({"validation_size": 0}, r"column 'validation_size'.*alpaca_sft\.split\.validation_size: 0 validation prompts"),
        (
            {"validation_size": 0, "stratify_by": None},
            r"alpaca_sft\.split\.validation_size: 0 validation prompts.*at least 1",
        ),
        ({"validation_size": 0, "group_by": None}, r"alpaca_sft\.split\.validation_size: 0 validation prompts"),
    ],
)
def test_a_split_no_sheet_could_give_is_refused_by_check_split_naming_the_parameter(sheet, params, split, words):
    """check_split checked the whole sheet, split_examples splits make_examples' columns: a stratify_by the examples
    do not keep passed check_split, the records were written and the split failed with a bare KeyError; too few
    held-out or validation prompts passed both and failed after training (or gave an empty validation)."""
    from qeu_kedro.pipelines.alpaca_sft.nodes import apply_reasoning_rules, check_alpaca, check_split

    checked = apply_reasoning_rules(
        check_alpaca(sheet, params["schema"], params["category_rules"]), params["reasoning_rules"]
    )
    split = {**params["split"], **split}
    with pytest.raises(RawDataError, match=r"dataset 'parameters alpaca_sft\.split'.*" + words):
        check_split(checked, split)
    with pytest.raises(RawDataError, match=words):  # and split_examples, on the examples, the same way
        split_examples(_examples(sheet, params), split)


def test_stratify_by_may_name_any_column_the_examples_keep(sheet, params):
    from qeu_kedro.pipelines.alpaca_sft.nodes import check_alpaca, check_split

    checked = check_alpaca(sheet, params["schema"], params["category_rules"])
    split = {**params["split"], "group_by": None, "stratify_by": "uniqueness"}
    check_split(checked, split)
    train, validation, held_out = split_examples(_examples(sheet, params), split)
    assert set(held_out["uniqueness"]) == set(train["uniqueness"])


def test_a_misspelt_section_column_is_refused_naming_the_parameter(sheet, params):
    """A section whose column the records lack was dropped from every prompt without a word."""
    sections = [*params["prompt"]["sections"][:1], {"header": "Input", "column": "inptu"}]
    with pytest.raises(
        RawDataError, match=r"parameters alpaca_sft.prompt', column 'sections'.*section 1 \('Input'\).*'inptu'"
    ):
        make_examples(sheet.to_dict(orient="records"), {**params["prompt"], "sections": sections})
