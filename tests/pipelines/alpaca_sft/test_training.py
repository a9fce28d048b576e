"""Why a model learns to copy the prompt, checked on the real training code: what the loss covers,
the chat template in training and generation, packing, LoRA's layers; whole-character decoding."""

from __future__ import annotations

import pandas as pd
import pytest

from qeu_kedro.pipelines.alpaca_sft.nodes import build_trainer, decode_whole, format_prompt, model_prompt

ANSWERS = ["日本の首都は東京です。", "The capital of France is Paris.", "水は100度で沸騰します。"]


@pytest.fixture(scope="module")
def lm():
    from qeu_kedro.datasets.hf_causal_lm import load_causal_lm

    return load_causal_lm("bundled:SmolLM2-135M-Instruct")


QUESTIONS = ["日本の首都はどこですか。", "What is the capital of France?", "水は何度で沸騰しますか。"]


@pytest.fixture(scope="module")
def trainer(lm, params, tmp_path_factory):
    prompt = params["prompt"]
    rows = [{"instruction": q, "input": "", "reasoning": "Answer in one sentence."} for q in QUESTIONS]
    frame = pd.DataFrame({"prompt": [format_prompt(r, prompt) for r in rows], "completion": ANSWERS})
    train = {**params["train"], "trainer": {**params["train"]["trainer"], "per_device_train_batch_size": 3}}
    return build_trainer(frame, frame, lm, prompt, train, str(tmp_path_factory.mktemp("sft")))


@pytest.mark.slow
def test_the_loss_covers_exactly_the_reference_answer_and_the_end_of_turn_token(trainer, lm):
    tokenizer = lm.tokenizer
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["labels"].shape[0] == 3
    learned = sorted(tokenizer.decode(row[row != -100].tolist()) for row in batch["labels"])
    assert learned == sorted(a + tokenizer.eos_token for a in ANSWERS)
    assert tokenizer.eos_token == "<|im_end|>"  # SmolLM2's end-of-turn token: the model learns to end its turn


@pytest.mark.slow
def test_training_sees_the_chat_prompt_that_generation_feeds_the_model(trainer, lm, params):
    tokenizer = lm.tokenizer
    batch = next(iter(trainer.get_train_dataloader()))
    prompts = set()
    for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"], strict=True):
        first_label = int((labels != -100).nonzero()[0])
        prompts.add(tokenizer.decode(ids[:first_label][mask[:first_label] == 1].tolist()))
    generation_prompts = {
        model_prompt(
            tokenizer, format_prompt({"instruction": q, "reasoning": "Answer in one sentence."}, params["prompt"]), True
        )
        for q in QUESTIONS
    }
    # What precedes the first learned token decodes to exactly what generate_answers feeds the model.
    assert prompts == generation_prompts
    assert all(p.startswith("<|im_start|>system\n") and p.endswith("<|im_start|>assistant\n") for p in prompts)


@pytest.mark.slow
def test_no_packing_and_lora_on_every_linear_layer(trainer):
    assert trainer.args.packing is False and trainer.args.completion_only_loss is True
    adapted = {name.rsplit(".", 1)[-1] for name, _ in trainer.model.named_modules() if name.endswith(("_proj",))}
    lora_targets = set(trainer.model.peft_config["default"].target_modules)
    assert lora_targets == adapted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_a_generation_cut_at_any_token_decodes_to_whole_characters(lm):
    tokenizer = lm.tokenizer
    text = "感情は喜びです。富士山の高さは3776メートル、漢字と仮名が混ざる文章。"
    ids = tokenizer(text)["input_ids"]
    # Byte-level BPE: some cut points fall inside a character, where plain decoding shows U+FFFD.
    assert any(tokenizer.decode(ids[:k]).endswith("\ufffd") for k in range(1, len(ids)))
    for k in range(len(ids) + 1):
        whole = decode_whole(tokenizer, ids[:k])
        assert "\ufffd" not in whole and text.startswith(whole)
    assert decode_whole(tokenizer, ids) == text


@pytest.mark.real_data
def test_the_ja_instruct_max_length_keeps_the_end_of_turn_of_more_examples_than_the_old_one(shared_data, lm):
    """One cause of the copying, measured: at the old max_length of 192 tokens most training examples
    were cut before their answer ended (the end-of-turn token was never learned on them)."""
    from qeu_kedro.pipelines.alpaca_sft.nodes import apply_reasoning_rules, make_examples, to_records
    from tests.conftest import REPO, load_config

    from .conftest import categorised, ja_instruct_raw

    params = load_config(REPO, "ja_instruct", "parameters")["alpaca_sft"]
    checked = categorised(ja_instruct_raw(shared_data).load(), params)
    examples = make_examples(to_records(apply_reasoning_rules(checked, params["reasoning_rules"])), params["prompt"])
    tokenizer = lm.tokenizer
    lengths = [
        len(tokenizer(model_prompt(tokenizer, p, True) + c + tokenizer.eos_token)["input_ids"])
        for p, c in zip(examples["prompt"], examples["completion"], strict=True)
    ]

    def kept(max_length: int) -> float:
        return sum(n <= max_length for n in lengths) / len(lengths)

    assert kept(192) < 0.25  # measured 0.217: the old setting
    assert kept(params["train"]["trainer"]["max_length"]) > 0.45  # 0.465 at 384
