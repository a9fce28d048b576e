"""Nodes of the ``alpaca_sft`` pipeline: check the sheet, apply the reasoning rules, write the
JSON records, fine-tune a causal LM with LoRA, and measure its answers before and after."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from qeu_kedro.validation import Column, check_table, fail

from .measures import measure_answer

logger = logging.getLogger(__name__)

DATASET = "alpaca_raw"
TEXT_COLUMNS = ("category", "field", "input", "instruction", "language", "output", "reasoning", "uniqueness")


# ---------------------------------------------------------------- data: check, rules, records
def check_alpaca(raw: pd.DataFrame, schema: Mapping[str, Any]) -> pd.DataFrame:
    """Check the raw sheet (columns NO, category, field, input, instruction, language, output,
    reasoning, seq, uniqueness) and return it typed, with missing free text as ``""``.

    Args:
        raw: the sheet as loaded by the catalog.
        schema: allowed ``categories``, ``languages`` and ``uniqueness`` values.

    Raises:
        RawDataError: a missing column, a missing instruction/output, an unknown category,
            language or uniqueness value, a duplicate NO; the message names the row.
    """
    hint_cat = "Add the category to alpaca_sft.schema.categories in parameters_alpaca_sft.yml, or fix the cell."
    columns = (
        Column("NO", "int", unique=True),
        Column("category", "str", allowed=schema["categories"], hint=hint_cat),
        Column("field", "str", nullable=True),
        Column("input", "str", nullable=True),
        Column("instruction", "str", hint="Every row needs an instruction."),
        Column("language", "str", allowed=schema["languages"], hint="Use a language code listed in alpaca_sft.schema.languages."),
        Column("output", "str", hint="Every row needs a reference output to train on."),
        Column("reasoning", "str", nullable=True),
        Column("seq", "int", nullable=True),
        Column("uniqueness", "str", allowed=schema["uniqueness"], hint='"simple": one right answer; "complex": several.'),
    )
    checked = check_table(raw, DATASET, columns)
    for name in ("field", "input", "reasoning"):
        checked[name] = checked[name].map(lambda v: v.strip() if isinstance(v, str) else "")
    logger.info("alpaca sheet: %d rows, languages %s", len(checked), checked["language"].value_counts().to_dict())
    return checked


def _matches(frame: pd.DataFrame, when: Mapping[str, Any]) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for column, wanted in when.items():
        values = wanted if isinstance(wanted, list | tuple) else [wanted]
        mask &= frame[column].isin(values)
    return mask


def apply_reasoning_rules(records: pd.DataFrame, rules: Mapping[str, Any]) -> pd.DataFrame:
    """Append each rule's sentence to ``reasoning`` on the rows where all its conditions hold.

    A rule is ``{when: {column: value or [values], ...}, append: text}``. Idempotent: a
    sentence already in a row's reasoning is not appended again, so running the rules on
    their own output (or on a sheet already edited by hand) changes nothing.

    Raises:
        RawDataError: a rule names a column the sheet does not have, or has no condition.
    """
    out = records.copy()
    separator = rules.get("separator", " ")
    for i, rule in enumerate(rules["rules"]):
        when = rule.get("when") or {}
        if not when:
            fail("parameters alpaca_sft.reasoning_rules", None, None, f"rule {i} has no 'when' conditions")
        for column in when:
            if column not in out.columns:
                fail(
                    "parameters alpaca_sft.reasoning_rules",
                    column,
                    None,
                    f"rule {i} tests a column the sheet does not have (columns: {list(out.columns)})",
                )
        sentence = rule["append"].strip()
        hit = _matches(out, when)
        todo = hit & ~out["reasoning"].map(lambda r, s=sentence: s in r)
        out.loc[todo, "reasoning"] = out.loc[todo, "reasoning"].map(lambda r, s=sentence: f"{r}{separator}{s}" if r else s)
        logger.info("Rule %d (%s): matches %d rows, appended to %d", i, when, int(hit.sum()), int(todo.sum()))
    return out


def to_records(records: pd.DataFrame) -> list[dict[str, Any]]:
    """The table as JSON-ready records (plain ints and strings), in sheet order."""
    rows = []
    for row in records.to_dict(orient="records"):
        rows.append({k: (int(v) if isinstance(v, int | np.integer) else ("" if v is None else v)) for k, v in row.items()})
    return rows


# ---------------------------------------------------------------- prompts and split
def format_prompt(record: Mapping[str, Any], prompt: Mapping[str, Any]) -> str:
    """The prompt text for one record: a ``### <header>:`` section per non-empty column.

    With ``use_chat_template`` the text becomes the user turn and the chat template marks where
    the answer starts; without it (base models such as Phi-2) a ``### <response_header>:`` line does.
    """
    parts = []
    for section in prompt["sections"]:
        value = str(record.get(section["column"]) or "").strip()
        if value:
            parts.append(f"### {section['header']}:\n{value}")
    text = "\n\n".join(parts)
    if not prompt.get("use_chat_template", False):
        text += f"\n\n### {prompt['response_header']}:\n"
    return text


def model_prompt(tokenizer: Any, text: str, use_chat_template: bool) -> str:
    """What the model sees: ``text`` as a user turn in the tokenizer's chat template, or as is."""
    if use_chat_template:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "alpaca_sft.prompt.use_chat_template is true but this tokenizer has no chat template "
                "(a base model such as Phi-2): set it to false for that model."
            )
        return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
    return text


def make_examples(records: list[dict[str, Any]], prompt: Mapping[str, Any]) -> pd.DataFrame:
    """One supervised example per record: ``prompt`` (formatted), ``completion`` (the reference output)."""
    frame = pd.DataFrame(records)
    frame["prompt"] = [format_prompt(r, prompt) for r in records]
    frame["completion"] = frame["output"].astype(str).str.strip()
    return frame[["NO", "language", "category", "uniqueness", "prompt", "completion"]]


def split_examples(examples: pd.DataFrame, split: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out ``eval_size`` examples (stratified by ``stratify_by`` when set) for before/after evaluation."""
    from sklearn.model_selection import train_test_split

    stratify = examples[split["stratify_by"]] if split.get("stratify_by") else None
    train, held_out = train_test_split(
        examples, test_size=split["eval_size"], random_state=split["seed"], stratify=stratify
    )
    train, held_out = train.sort_values("NO"), held_out.sort_values("NO")
    logger.info("Split: %d training examples, %d held-out prompts", len(train), len(held_out))
    return train.reset_index(drop=True), held_out.reset_index(drop=True)


# ---------------------------------------------------------------- training
def train_lora(
    train: pd.DataFrame, held_out: pd.DataFrame, base_model: Any, prompt: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """LoRA fine-tuning with TRL's ``SFTTrainer`` on prompt/completion pairs (loss on the completion only).

    Evaluates the held-out loss with the same trainer before and after training.

    Returns:
        The model with its adapter (a ``CausalLM``, saved as an adapter by the catalog) and the
        training metrics (``eval_loss_before``, ``eval_loss_after``, ``train_loss``, steps, time).
    """
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    from qeu_kedro.datasets.hf_causal_lm import CausalLM

    set_seed(params["seed"])
    tokenizer = base_model.tokenizer
    chat = bool(prompt.get("use_chat_template", False))

    def to_dataset(frame: pd.DataFrame) -> Any:
        return Dataset.from_dict(
            {
                "prompt": [model_prompt(tokenizer, p, chat) for p in frame["prompt"]],
                "completion": frame["completion"].tolist(),
            }
        )

    lora = LoraConfig(task_type="CAUSAL_LM", **params["lora"])
    # Checkpoints are not kept (save_strategy "no"); the trainer still wants an output folder.
    with tempfile.TemporaryDirectory(prefix="alpaca_sft-") as scratch:
        config = SFTConfig(
            output_dir=scratch,
            max_steps=params["max_steps"],
            per_device_train_batch_size=params["per_device_train_batch_size"],
            per_device_eval_batch_size=params["per_device_eval_batch_size"],
            gradient_accumulation_steps=params["gradient_accumulation_steps"],
            learning_rate=params["learning_rate"],
            lr_scheduler_type=params["lr_scheduler_type"],
            warmup_steps=params["warmup_steps"],
            weight_decay=params["weight_decay"],
            max_length=params["max_length"],
            completion_only_loss=True,
            # TRL defaults to bf16 autocast and gradient checkpointing: a CPU without bf16 units gains
            # nothing from the first (a step was slower with it here), and a 135M model needs neither.
            bf16=params["bf16"],
            gradient_checkpointing=params["gradient_checkpointing"],
            logging_steps=params["logging_steps"],
            eval_strategy="no",
            save_strategy="no",
            report_to="none",
            seed=params["seed"],
            data_seed=params["seed"],
            use_cpu=True,
            dataloader_num_workers=0,
        )
        trainer = SFTTrainer(
            model=base_model.model,
            args=config,
            train_dataset=to_dataset(train),
            eval_dataset=to_dataset(held_out),
            processing_class=tokenizer,
            peft_config=lora,
        )
        before = trainer.evaluate()
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
        after = trainer.evaluate()
    model = trainer.model
    model.eval()
    trainable, total = model.get_nb_trainable_parameters()
    metrics = {
        "base_model": base_model.source,
        "n_train": len(train),
        "n_eval": len(held_out),
        "max_steps": params["max_steps"],
        "global_step": int(result.global_step),
        "train_loss": round(float(result.training_loss), 4),
        "eval_loss_before": round(float(before["eval_loss"]), 4),
        "eval_loss_after": round(float(after["eval_loss"]), 4),
        "train_seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / max(1, int(result.global_step)), 2),
        "trainable_parameters": int(trainable),
        "trainable_share": round(trainable / total, 5),
        # The training loss curve (one point per logging step).
        "loss_curve": [
            {"step": int(entry["step"]), "loss": round(float(entry["loss"]), 4)}
            for entry in trainer.state.log_history
            if "loss" in entry
        ],
    }
    logger.info(
        "LoRA SFT: %d steps in %.0f s; held-out loss %.3f -> %.3f",
        metrics["global_step"], seconds, metrics["eval_loss_before"], metrics["eval_loss_after"],
    )
    return CausalLM(model=model, tokenizer=tokenizer, source=f"{base_model.source} + LoRA"), metrics


# ---------------------------------------------------------------- generation and measures
def generate_answers(
    held_out: pd.DataFrame, lm: Any, prompt: Mapping[str, Any], generation: Mapping[str, Any], measures: Mapping[str, Any]
) -> pd.DataFrame:
    """Greedy answers to the held-out prompts (bounded by ``max_new_tokens``), with their measures.

    Returns:
        One row per prompt: NO, language, category, uniqueness, prompt, reference, answer,
        n_new_tokens, hit_max_new_tokens, then the measures of :func:`measure_answer`.
    """
    import torch
    from transformers import set_seed

    set_seed(generation["seed"])
    tokenizer, model = lm.tokenizer, lm.model
    model.eval()
    chat = bool(prompt.get("use_chat_template", False))
    records = held_out.to_dict(orient="records")
    texts = [model_prompt(tokenizer, r["prompt"], chat) for r in records]
    # Batches of prompts padded on the left, so every answer starts right after its prompt.
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    rows = []
    start = time.perf_counter()
    try:
        for lo in range(0, len(records), generation["batch_size"]):
            batch = tokenizer(texts[lo : lo + generation["batch_size"]], return_tensors="pt", padding=True)
            with torch.no_grad():
                out = model.generate(
                    **batch,
                    max_new_tokens=generation["max_new_tokens"],
                    do_sample=False,
                    repetition_penalty=generation["repetition_penalty"],
                    eos_token_id=tokenizer.eos_token_id,
                    pad_token_id=tokenizer.pad_token_id,
                )
            for record, ids in zip(records[lo : lo + generation["batch_size"]], out[:, batch["input_ids"].shape[1] :], strict=True):
                ids = ids.tolist()
                # Generation stops at eos; shorter answers of a batch are padded after it.
                stopped = tokenizer.eos_token_id in ids
                new = ids[: ids.index(tokenizer.eos_token_id) + 1] if stopped else ids
                answer = tokenizer.decode(new, skip_special_tokens=True).strip()
                rows.append(
                    {
                        "NO": record["NO"],
                        "language": record["language"],
                        "category": record["category"],
                        "uniqueness": record["uniqueness"],
                        "prompt": record["prompt"],
                        "reference": record["completion"],
                        "answer": answer,
                        "n_new_tokens": len(new),
                        "hit_max_new_tokens": not stopped,
                        **measure_answer(
                            answer, record["language"], measures["ngram"], measures["kana_share_for_ja"], record["prompt"]
                        ),
                    }
                )
    finally:
        tokenizer.padding_side = padding_side
    logger.info("Generated %d answers with %s in %.0f s", len(rows), lm.source, time.perf_counter() - start)
    return pd.DataFrame(rows)


_SUMMARY = ("n_chars", "duplicate_sentence_share", "language_match", "hit_max_new_tokens", "n_new_tokens")


def _summary_columns(measures: Mapping[str, Any]) -> list[str]:
    n = measures["ngram"]
    return [f"repeated_{n}gram_share", f"copied_{n}gram_share", *_SUMMARY]


def compare_before_after(
    before: pd.DataFrame, after: pd.DataFrame, train_metrics: Mapping[str, Any], measures: Mapping[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The before/after table (one row per held-out prompt) and the summary metrics.

    Summary: held-out eval loss before/after, and the mean of each measure overall and per
    requested language (``language_match`` and ``hit_max_new_tokens`` as rates).
    """
    cols = _summary_columns(measures)
    keep = ["answer", *cols, "detected_language"]
    table = before[["NO", "language", "category", "uniqueness", "prompt", "reference"]].copy()
    for name, frame in (("before", before), ("after", after)):
        part = frame.set_index("NO")[keep].add_suffix(f"_{name}")
        table = table.join(part, on="NO")

    def means(frame: pd.DataFrame) -> dict[str, float]:
        return {c: round(float(frame[c].astype(float).mean()), 4) for c in cols}

    summary: dict[str, Any] = {
        "n_prompts": len(table),
        "eval_loss": {"before": train_metrics["eval_loss_before"], "after": train_metrics["eval_loss_after"]},
        "train": {k: train_metrics[k] for k in ("base_model", "n_train", "global_step", "train_loss", "train_seconds")},
        "overall": {"before": means(before), "after": means(after)},
        "by_language": {
            lang: {"n": int((before["language"] == lang).sum()), "before": means(before[before["language"] == lang]),
                   "after": means(after[after["language"] == lang])}
            for lang in sorted(before["language"].unique())
        },
    }
    logger.info("Before/after: %s", summary["overall"])
    return table, summary


def plot_before_after(summary: Mapping[str, Any], measures: Mapping[str, Any]) -> Any:
    """Bars before vs after: held-out loss, repetition, echo of the prompt, language match, length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("held-out loss", summary["eval_loss"]["before"], summary["eval_loss"]["after"]),
    ]
    labels = {
        f"repeated_{measures['ngram']}gram_share": f"repeated {measures['ngram']}-gram share",
        "duplicate_sentence_share": "duplicate sentence share",
        f"copied_{measures['ngram']}gram_share": f"{measures['ngram']}-grams copied from the prompt",
        "language_match": "answer in requested language (rate)",
        "n_chars": "answer length (chars)",
        "hit_max_new_tokens": "ran into max_new_tokens (rate)",
    }
    for key, label in labels.items():
        panels.append((label, summary["overall"]["before"][key], summary["overall"]["after"][key]))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.8 * len(panels), 3.4))
    for ax, (label, b, a) in zip(axes, panels, strict=True):
        bars = ax.bar(["before", "after"], [b, a], color=["#9aa5b1", "#2f7ed8"])
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.set_ylim(0, max(a, b) * 1.2 if max(a, b) > 0 else 1.0)
    fig.suptitle(f"alpaca_sft: {summary['train']['base_model']}, {summary['train']['global_step']} LoRA steps, "
                 f"{summary['n_prompts']} held-out prompts", fontsize=10)
    fig.tight_layout()
    return fig


def _cell(text: Any, limit: int) -> str:
    s = str(text).replace("|", "\\|").replace("\n", " ⏎ ")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def report_markdown(table: pd.DataFrame, summary: Mapping[str, Any], measures: Mapping[str, Any], cell_chars: int) -> str:
    """A readable report: the summary before/after, then the generations as a table."""
    cols = _summary_columns(measures)
    lines = [
        "# alpaca_sft: before vs after LoRA SFT",
        "",
        f"Model: {summary['train']['base_model']}; {summary['train']['n_train']} training examples, "
        f"{summary['train']['global_step']} steps ({summary['train']['train_seconds']} s); "
        f"{summary['n_prompts']} held-out prompts, greedy decoding.",
        "",
        "| measure | before | after |",
        "| --- | --- | --- |",
        f"| held-out eval loss | {summary['eval_loss']['before']} | {summary['eval_loss']['after']} |",
    ]
    lines += [f"| {c} | {summary['overall']['before'][c]} | {summary['overall']['after'][c]} |" for c in cols]
    lines += ["", "## By requested language", "", "| language | n | measure | before | after |", "| --- | --- | --- | --- | --- |"]
    for lang, block in summary["by_language"].items():
        lines += [f"| {lang} | {block['n']} | {c} | {block['before'][c]} | {block['after'][c]} |" for c in cols]
    lines += [
        "",
        "## Generations",
        "",
        "| NO | lang | category | prompt | reference | before | after |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in table.to_dict(orient="records"):
        lines.append(
            f"| {r['NO']} | {r['language']} | {r['category']}/{r['uniqueness']} | {_cell(r['prompt'], cell_chars)} | "
            f"{_cell(r['reference'], cell_chars)} | {_cell(r['answer_before'], cell_chars)} | {_cell(r['answer_after'], cell_chars)} |"
        )
    return "\n".join(lines) + "\n"
