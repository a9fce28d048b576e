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
    examples = make_examples(records, params["prompt"])
    assert len(examples) == 36 and examples["completion"].iloc[0] == "日本の首都は東京です。"
    assert "Don't output the same answer" in examples["prompt"].iloc[0]
    train, validation, held_out = split_examples(examples, params["split"])
    again = split_examples(examples, params["split"])
    assert held_out["NO"].tolist() == again[2]["NO"].tolist() and validation["NO"].tolist() == again[1]["NO"].tolist()
    assert len(held_out) == params["split"]["eval_size"] and len(validation) == params["split"]["validation_size"]
    assert len(train) == 36 - len(held_out) - len(validation)
    # Three disjoint parts: the held-out prompts play no part in training or in the checkpoint choice.
    assert set(train["NO"]).isdisjoint(held_out["NO"]) and set(validation["NO"]).isdisjoint(held_out["NO"])
    assert set(train["NO"]).isdisjoint(validation["NO"])
    assert held_out["language"].value_counts().to_dict() == {"en": 2, "ja": 2, "zh": 2}
    assert validation["language"].value_counts().to_dict() == {"en": 2, "ja": 2, "zh": 2}


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
        (8, {}, r"alpaca_sft.split.validation_size = 6 needs more than the rows left after the held-out prompts \(2\)"),
        (5, {}, r"alpaca_sft.split.eval_size = 6 needs more than the sheet's rows \(5\)"),
        (None, {"eval_size": 2}, r"column 'language'.*eval_size = 2 of 36 rows cannot hold each of the 3 values"),
        ("one zh", {}, r"column 'language'.*one row with language 'zh'"),
    ],
)
def test_a_sheet_too_small_for_the_split_is_refused_in_words(sheet, params, keep, split, words):
    from qeu_kedro.pipelines.alpaca_sft.nodes import apply_reasoning_rules, check_alpaca, to_records

    records = to_records(
        apply_reasoning_rules(
            check_alpaca(sheet, params["schema"], params["category_rules"]), params["reasoning_rules"]
        )
    )
    examples = make_examples(records, params["prompt"])
    if keep == "one zh":
        examples = pd.concat([examples[examples["language"] != "zh"], examples[examples["language"] == "zh"].head(1)])
    elif keep is not None:
        examples = examples.head(keep)
    with pytest.raises(RawDataError, match=r"dataset 'alpaca_raw'.*" + words):
        split_examples(examples, {**params["split"], **split})
