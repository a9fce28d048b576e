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
    train = dict(params["train"], per_device_train_batch_size=3)
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
        prompts.add(tokenizer.decode(ids[: first_label][mask[:first_label] == 1].tolist()))
    generation_prompts = {
        model_prompt(tokenizer, format_prompt({"instruction": q, "reasoning": "Answer in one sentence."}, params["prompt"]), True)
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
