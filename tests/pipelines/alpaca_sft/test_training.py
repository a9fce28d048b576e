"""Why a model learns to copy the prompt, checked on the real training code: what the loss covers,
the chat template in training and generation, packing, LoRA's layers; whole-character decoding."""

from __future__ import annotations

import pandas as pd
import pytest

from qeu_kedro.pipelines.alpaca_sft.data import format_prompt, model_prompt
from qeu_kedro.pipelines.alpaca_sft.generation import decode_whole
from qeu_kedro.pipelines.alpaca_sft.training import (
    answer_losses,
    build_trainer,
    dpo_config,
    echo_prompt,
    examples_trained_on,
    train_lora,
)

ANSWERS = ["日本の首都は東京です。", "The capital of France is Paris.", "水は100度で沸騰します。"]


@pytest.fixture(scope="module")
def lm():
    from qeu_kedro.datasets.hf_causal_lm import load_causal_lm

    return load_causal_lm("bundled:SmolLM2-135M-Instruct")


QUESTIONS = ["日本の首都はどこですか。", "What is the capital of France?", "水は何度で沸騰しますか。"]


def _frame(params) -> pd.DataFrame:
    rows = [{"instruction": q, "input": "", "reasoning": "Answer in one sentence."} for q in QUESTIONS]
    return pd.DataFrame({"prompt": [format_prompt(r, params["prompt"]) for r in rows], "completion": ANSWERS})


def _train_params(params, trainer=None, **changes) -> dict:
    """conf/base's train block for three examples in one batch, with ``changes`` (``trainer``: SFTConfig/DPOConfig keys)."""
    keys = {**params["train"]["trainer"], "per_device_train_batch_size": 3, **(trainer or {})}
    return {**params["train"], **changes, "trainer": keys}


@pytest.fixture(scope="module")
def trainer(lm, params, tmp_path_factory):
    frame = _frame(params)
    return build_trainer(frame, lm, params["prompt"], _train_params(params), str(tmp_path_factory.mktemp("sft")))


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


def test_an_end_of_turn_token_inside_a_four_byte_character_leaves_no_replacement_character(lm):
    """The end-of-turn token ended the answer after 3 of a 4-byte character's 4 byte tokens: it was counted
    among the 3 trailing tokens dropped, so the character's first byte stayed and decoded to U+FFFD."""
    tokenizer = lm.tokenizer
    eos = tokenizer.eos_token_id
    text = "𠮷野家"  # 𠮷 (U+20BB7) is 4 UTF-8 bytes, one byte token each in SmolLM2's vocabulary
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids[:4]) == "𠮷" and all(tokenizer.decode(ids[:k]).endswith("\ufffd") for k in (1, 2, 3))
    assert decode_whole(tokenizer, [*ids[:3], eos]) == ""
    for k in range(len(ids) + 1):
        for tail in ([], [eos], [eos, eos]):
            whole = decode_whole(tokenizer, ids[:k] + tail)
            assert "\ufffd" not in whole and text.startswith(whole), (k, tail, whole)
    assert decode_whole(tokenizer, [*ids, eos]) == text


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


# ---------------------------------------------------------------- objective: preference (DPO against the echo)
def test_the_echo_is_the_prompt_text_without_its_headers(params):
    text = format_prompt(
        {"instruction": "日本の首都は?", "input": "東京, 大阪", "reasoning": "短く。"}, params["prompt"]
    )
    assert text.startswith("### Instruction:\n")
    assert echo_prompt(text) == "日本の首都は?\n東京, 大阪\n短く。"


def test_a_trainer_key_that_dpo_does_not_take_is_refused_before_any_work(params):
    train = _train_params(params, objective="preference", trainer={"completion_only_loss": True})
    with pytest.raises(ValueError, match=r"DPOConfig does not take \(completion_only_loss\)"):
        dpo_config(train, "unused")
    assert dpo_config(_train_params(params), "unused").loss_type == ["sigmoid", "sft"]


@pytest.mark.slow
def test_the_preference_batch_pairs_the_reference_against_the_echo_after_the_generation_prompt(params, tmp_path):
    from qeu_kedro.datasets.hf_causal_lm import load_causal_lm

    lm = load_causal_lm("bundled:SmolLM2-135M-Instruct")  # the trainer wraps the model in its adapter
    frame = _frame(params)
    trainer = build_trainer(frame, lm, params["prompt"], _train_params(params, objective="preference"), str(tmp_path))
    tokenizer = lm.tokenizer
    batch = next(iter(trainer.get_train_dataloader()))
    # DPOTrainer stacks the chosen sequences, then the rejected ones, each prompt + completion.
    assert batch["input_ids"].shape[0] == 6
    decoded = []
    for ids, learned, mask in zip(batch["input_ids"], batch["completion_mask"], batch["attention_mask"], strict=True):
        first = int(learned.nonzero()[0])
        decoded.append(
            (tokenizer.decode(ids[:first].tolist()), tokenizer.decode(ids[(learned == 1) & (mask == 1)].tolist()))
        )
    generation_prompts = {model_prompt(tokenizer, p, True) for p in frame["prompt"]}
    assert {prompt for prompt, _ in decoded} == generation_prompts
    eos = tokenizer.eos_token
    assert sorted(c for _, c in decoded[:3]) == sorted(a + eos for a in ANSWERS)
    assert sorted(c for _, c in decoded[3:]) == sorted(echo_prompt(p) + eos for p in frame["prompt"])


def _sequence_logp(model, tokenizer, prompt: str, completion: str) -> float:
    import torch

    prompt_ids = tokenizer(prompt)["input_ids"]
    ids = torch.tensor([tokenizer(prompt + completion + tokenizer.eos_token)["input_ids"]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1]
    logp = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[:, 0]
    return float(logp[len(prompt_ids) - 1 :].sum())


@pytest.mark.slow
def test_each_answer_s_loss_is_its_mean_token_cross_entropy_given_its_prompt(lm, params):
    """answer_losses, checked by hand: minus the log-probability of the whole answer and its end-of-turn
    token given the chat prompt, per token; one number per answer, in the frame's order."""
    frame = _frame(params)
    tokenizer = lm.tokenizer
    losses = answer_losses(lm.model, tokenizer, frame, params["prompt"])
    expected = []
    for p, answer in zip(frame["prompt"], ANSWERS, strict=True):
        text = model_prompt(tokenizer, p, True)
        n = len(tokenizer(text + answer + tokenizer.eos_token)["input_ids"]) - len(tokenizer(text)["input_ids"])
        expected.append(-_sequence_logp(lm.model, tokenizer, text, answer) / n)
    assert losses == pytest.approx(expected, abs=1e-4)
    assert len(set(losses)) == 3  # three answers, three numbers (not one pooled number repeated)
    # training's max_length does not cut the scored answer: a prompt alone longer than it is scored whole
    # (TRL would drop that example, and truncate one whose answer crosses max_length)
    text = model_prompt(tokenizer, frame["prompt"][0] * 40, True)
    assert len(tokenizer(text)["input_ids"]) > params["train"]["trainer"]["max_length"]
    n = len(tokenizer(text + ANSWERS[0] + tokenizer.eos_token)["input_ids"]) - len(tokenizer(text)["input_ids"])
    long = frame.head(1).assign(prompt=frame["prompt"][0] * 40)
    assert answer_losses(lm.model, tokenizer, long, params["prompt"]) == pytest.approx(
        [-_sequence_logp(lm.model, tokenizer, text, ANSWERS[0]) / n], abs=1e-4
    )


@pytest.mark.slow
def test_a_training_example_trl_drops_is_counted_and_named_in_a_warning(params, tmp_path, caplog):
    from qeu_kedro.datasets.hf_causal_lm import load_causal_lm

    frame = _frame(params)
    frame.loc[0, "prompt"] = frame["prompt"][0] * 40  # this prompt alone is longer than max_length
    train = _train_params(params)
    fresh = load_causal_lm("bundled:SmolLM2-135M-Instruct")  # the trainer wraps this model in its adapter
    trainer = build_trainer(frame, fresh, params["prompt"], train, str(tmp_path))
    with caplog.at_level("WARNING"):
        assert examples_trained_on(trainer, frame, train) == 2
    assert "1 of the 3 training examples are not trained on" in caplog.text
    assert f"max_length ({train['trainer']['max_length']} tokens)" in caplog.text


@pytest.mark.slow
def test_preference_training_moves_the_model_from_the_echo_to_the_reference(params):
    """What the switch says it does, on tiny data: after a few steps the adapter gives the reference
    answer more log-probability relative to the echo than the base model does, and the reference answers'
    loss (:func:`answer_losses`, the measure both objectives report) is lower."""
    from qeu_kedro.datasets.hf_causal_lm import load_causal_lm

    fresh = load_causal_lm("bundled:SmolLM2-135M-Instruct")  # the run wraps this model in its adapter
    frame = _frame(params)
    train = _train_params(params, objective="preference", checkpoint_every=3, trainer={"max_steps": 3})
    generation = {**params["generation"], "max_new_tokens": 8}
    handle, metrics = train_lora(frame, frame, fresh, params["prompt"], train, generation)
    model, tokenizer = handle.model, handle.tokenizer
    assert metrics["objective"] == "preference" and metrics["global_step"] == 3

    def margins() -> list[float]:
        out = []
        for p, answer in zip(frame["prompt"], ANSWERS, strict=True):
            text = model_prompt(tokenizer, p, True)
            out.append(
                _sequence_logp(model, tokenizer, text, answer) - _sequence_logp(model, tokenizer, text, echo_prompt(p))
            )
        return out

    after = margins()
    loss_after = answer_losses(model, tokenizer, frame, params["prompt"])
    with model.disable_adapter():
        before = margins()
        loss_before = answer_losses(model, tokenizer, frame, params["prompt"])
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)
    assert sum(loss_after) < sum(loss_before)  # the SFT term teaches the answer too


@pytest.mark.slow
@pytest.mark.parametrize("rejected_ends_turn", [True, False])
def test_the_rejected_echo_ends_its_turn_only_when_asked(params, tmp_path, rejected_ends_turn):
    """``rejected_ends_turn``: TRL's DPOTrainer appends the end-of-turn token to both answers; switched
    off, the rejected sequence is the echo alone while the chosen one (the reference) keeps its end."""
    from qeu_kedro.datasets.hf_causal_lm import load_causal_lm

    fresh = load_causal_lm("bundled:SmolLM2-135M-Instruct")  # the trainer wraps this model in its adapter
    frame = _frame(params)
    train = _train_params(params, objective="preference", rejected_ends_turn=rejected_ends_turn)
    trainer = build_trainer(frame, fresh, params["prompt"], train, str(tmp_path))
    tokenizer, eos = fresh.tokenizer, fresh.tokenizer.eos_token_id
    pairs = trainer.train_dataset
    assert [tokenizer.decode(ids) for ids in pairs["chosen_ids"]] == [a + tokenizer.eos_token for a in ANSWERS]
    rejected = [tokenizer.decode(ids) for ids in pairs["rejected_ids"]]
    echoes = [echo_prompt(p) + (tokenizer.eos_token if rejected_ends_turn else "") for p in frame["prompt"]]
    assert rejected == echoes
    assert all((ids[-1] == eos) == rejected_ends_turn for ids in pairs["rejected_ids"])


@pytest.mark.slow
def test_the_two_stage_probe_trains_the_sft_adapter_against_a_frozen_copy_of_it(params):
    """benchmarks/alpaca_sft_then_preference.py: the preference stage starts from the SFT adapter, keeps
    a frozen copy of it as the reference ("ref"), and moves the trained adapter from the echo to the reference."""
    import torch

    from qeu_kedro.datasets.hf_causal_lm import load_causal_lm
    from tests.conftest import load_benchmark

    probe = load_benchmark("alpaca_sft_then_preference")
    frame = _frame(params)
    train = _train_params(params, checkpoint_every=2, trainer={"max_steps": 2})
    generation = {**params["generation"], "max_new_tokens": 8}
    lm, sft_metrics, stage2 = probe.sft_then_preference(
        frame, frame, load_causal_lm("bundled:SmolLM2-135M-Instruct"), params["prompt"], train, generation, 1.0
    )
    model, tokenizer = lm.model, lm.tokenizer
    assert sft_metrics["objective"] == "sft" and stage2["global_step"] == 2 and stage2["chosen_step"] == 2
    assert model.active_adapter == "default" and set(model.peft_config) == {"default", "ref"}
    weights = dict(model.named_parameters())
    ref_b = [w for name, w in weights.items() if ".lora_B.ref." in name]
    assert ref_b and all(torch.count_nonzero(w) > 0 for w in ref_b)  # the reference is the trained SFT adapter
    moved = [
        not torch.equal(w, weights[name.replace(".default.", ".ref.")])
        for name, w in weights.items()
        if ".lora_B.default." in name
    ]
    assert any(moved)  # the preference stage trained the default adapter, not the reference

    def margins() -> list[float]:
        out = []
        for p, answer in zip(frame["prompt"], ANSWERS, strict=True):
            text = model_prompt(tokenizer, p, True)
            reference = _sequence_logp(model, tokenizer, text, answer)
            out.append(reference - _sequence_logp(model, tokenizer, text, echo_prompt(p)))
        return out

    after = margins()
    model.set_adapter("ref")
    sft_only = margins()
    model.set_adapter("default")
    assert all(a > b for a, b in zip(after, sft_only, strict=True)), (sft_only, after)


def test_the_two_stage_probe_reads_the_pipelines_own_split_and_writes_nothing(project, shared_data):
    """benchmarks/alpaca_sft_then_preference.py takes its data from the pipeline's nodes (run in memory):
    the ja_instruct split has the sizes conf/ja_instruct asks for, its parts share no prompt, and no file
    is written under data/."""
    from tests.conftest import load_benchmark

    before = sorted(p for p in (project / "data").rglob("*") if p.is_file())
    params, (train, validation, held_out), trained, base = load_benchmark("alpaca_sft_then_preference").load(
        "ja_instruct"
    )
    assert (len(validation), len(held_out)) == (params["split"]["validation_size"], params["split"]["eval_size"])
    assert len(train) > 100 and trained is not base
    prompts = [set(part["prompt"]) for part in (train, validation, held_out)]
    assert not (prompts[0] & prompts[1] or prompts[0] & prompts[2] or prompts[1] & prompts[2])
    assert sorted(p for p in (project / "data").rglob("*") if p.is_file()) == before


@pytest.mark.parametrize("every", [0, -2])
def test_a_checkpoint_interval_below_one_is_refused_before_training(lm, params, every):
    """checkpoint_every: 0 was a ZeroDivisionError at the first training step (-2: never a chosen step)."""
    frame = _frame(params)
    generation = {**params["generation"], "max_new_tokens": 2}
    with pytest.raises(ValueError, match=rf"alpaca_sft.train.checkpoint_every .* at least 1, got {every}"):
        train_lora(frame, frame, lm, params["prompt"], _train_params(params, checkpoint_every=every), generation)


def test_no_scored_step_is_a_clear_error_not_a_peft_crash():
    """With no step scored, set_peft_model_state_dict(model, None) raised AttributeError."""
    from types import SimpleNamespace

    from qeu_kedro.pipelines.alpaca_sft.training import restore_best_adapter

    checkpoint = SimpleNamespace(best_state=None, curve=[{"step": 0, "validation_chrf": 1.0}])
    with pytest.raises(ValueError, match=r"No training step was scored.*alpaca_sft.train.trainer.max_steps"):
        restore_best_adapter(object(), checkpoint)


@pytest.mark.slow
def test_a_run_bounded_by_epochs_is_scored_at_its_last_step(params):
    """max_steps: -1 with num_train_epochs: the trainer's own last step (2: 3 examples in batches of 2) is
    scored though it is no multiple of checkpoint_every (5); it was never scored and the adapter choice
    crashed on a missing state."""
    from qeu_kedro.datasets.hf_causal_lm import load_causal_lm

    fresh = load_causal_lm("bundled:SmolLM2-135M-Instruct")
    frame = _frame(params)
    train = _train_params(
        params,
        checkpoint_every=5,
        trainer={"max_steps": -1, "num_train_epochs": 1, "per_device_train_batch_size": 2},
    )
    generation = {**params["generation"], "max_new_tokens": 4}
    _, metrics = train_lora(frame, frame.iloc[:1], fresh, params["prompt"], train, generation)
    assert metrics["global_step"] == metrics["max_steps"] == 2
    assert [p["step"] for p in metrics["validation_chrf_curve"]] == [0, 2] and metrics["chosen_step"] == 2
