"""Nodes of the ``alpaca_sft`` pipeline: check the sheet, complete its categories, apply the reasoning
rules, write the JSON records, fine-tune a causal LM with LoRA, and measure its answers before and after."""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from qeu_kedro.figures import suptitle
from qeu_kedro.validation import Column, RawDataError, check_table, fail

from .measures import measure_answer

logger = logging.getLogger(__name__)

DATASET = "alpaca_raw"
TEXT_COLUMNS = ("category", "field", "input", "instruction", "language", "output", "reasoning", "uniqueness")


# ---------------------------------------------------------------- data: check, categories, rules, records
def check_alpaca(raw: pd.DataFrame, schema: Mapping[str, Any], category_rules: Mapping[str, Any]) -> pd.DataFrame:
    """Check the raw sheet (columns NO, category, field, input, instruction, language, output,
    reasoning, seq, uniqueness) and return it typed, with missing free text as ``""``.

    ``category`` may be blank or a source's own label (a key of ``category_rules.labels``) and
    ``uniqueness`` blank: :func:`assign_categories` completes them. A cell of only whitespace
    there is blank, as an empty cell is (missing, for the rules to decide).

    Args:
        raw: the sheet as loaded by the catalog.
        schema: allowed ``categories``, ``languages`` and ``uniqueness`` values.
        category_rules: its ``labels`` are the other category values allowed.

    Raises:
        RawDataError: a missing column, a missing instruction/output, an unknown category,
            language or uniqueness value, a duplicate NO; the message names the row.
    """
    hint_cat = (
        "Add the category to alpaca_sft.schema.categories (or a source's label to alpaca_sft.category_rules.labels) "
        "in parameters_alpaca_sft.yml, fix the cell, or leave it blank for the category rules."
    )
    columns = (
        Column("NO", "int", unique=True),
        Column(
            "category", "str", nullable=True, allowed=[*schema["categories"], *category_rules["labels"]], hint=hint_cat
        ),
        Column("field", "str", nullable=True),
        Column("input", "str", nullable=True),
        Column("instruction", "str", hint="Every row needs an instruction."),
        Column(
            "language",
            "str",
            allowed=schema["languages"],
            hint="Use a language code listed in alpaca_sft.schema.languages.",
        ),
        Column("output", "str", hint="Every row needs a reference output to train on."),
        Column("reasoning", "str", nullable=True),
        Column("seq", "int", nullable=True),
        Column(
            "uniqueness",
            "str",
            nullable=True,
            allowed=schema["uniqueness"],
            hint='"simple": one right answer; "complex": several; blank: the category rules decide.',
        ),
    )
    try:
        checked = check_table(_whitespace_as_blank(raw, ("category", "uniqueness")), DATASET, columns)
    except RawDataError as error:
        # a table read from files (the ja_instruct reader) says where each row came from
        sources = getattr(raw, "attrs", {}).get("sources")
        if sources and error.row is not None and sources[error.row]:
            error.args = (f"{error} The row comes from {sources[error.row]}.",)
        raise
    for name in ("field", "input", "reasoning"):
        checked[name] = checked[name].map(lambda v: v.strip() if isinstance(v, str) else "")
    logger.info("alpaca sheet: %d rows, languages %s", len(checked), checked["language"].value_counts().to_dict())
    return checked


def _whitespace_as_blank(raw: Any, names: Sequence[str]) -> Any:
    """``raw`` with the cells of ``names`` that hold only whitespace made missing, as an empty cell is
    (anything else, a missing column included, is left for :func:`check_table` to judge)."""
    if not isinstance(raw, pd.DataFrame):
        return raw
    out = raw.copy()
    for name in names:
        if name in out.columns and isinstance(out[name], pd.Series):
            out[name] = out[name].map(lambda v: None if isinstance(v, str) and not v.strip() else v)
    return out


def _check_category_rules(rules: Mapping[str, Any], categories: Sequence[str]) -> list[tuple[re.Pattern, str]]:
    """The compiled ``field_patterns``; every category the rules name must be one of ``categories``."""
    where = "parameters alpaca_sft.category_rules"
    hint = f"Use one of alpaca_sft.schema.categories: {list(categories)}."
    named = [("labels", label, target) for label, target in rules["labels"].items()]
    named += [("field_patterns", rule["pattern"], rule["category"]) for rule in rules["field_patterns"]]
    named += [("simple_categories", c, c) for c in rules["simple_categories"]]
    for key, source, target in named:
        if target not in categories:
            fail(where, key, None, f"{source!r} leads to the unknown category {target!r}", hint)
    compiled = []
    for i, rule in enumerate(rules["field_patterns"]):
        try:
            compiled.append((re.compile(rule["pattern"]), rule["category"]))
        except re.error as exc:
            fail(where, "field_patterns", None, f"pattern {i} {rule['pattern']!r} is not a regular expression ({exc})")
    return compiled


def assign_categories(
    checked: pd.DataFrame, category_rules: Mapping[str, Any], schema: Mapping[str, Any]
) -> pd.DataFrame:
    """Complete each row's ``category`` and ``uniqueness`` by the rules; the values a row has are kept.

    - ``category``: a source's own label is translated by ``labels`` (Japanese Vicuna's categories);
      a blank one is the category of the first of ``field_patterns`` whose regex is found in
      ``field`` (a seed task's name), else ``closed_qa`` when the row has an input and ``open_qa``
      when not (Dolly's definitions);
    - ``uniqueness``: a blank one is ``simple`` (one right answer) when the category is in
      ``simple_categories`` or the reference output is at most ``simple_max_output_chars``
      characters long (stripped), else ``complex``.

    The sample sheet gives both on every row, so it passes unchanged; the ja_instruct reader leaves
    them to these rules.

    Raises:
        RawDataError: a rule leads to a category not in ``schema.categories``, or a pattern is not a regex.
    """
    patterns = _check_category_rules(category_rules, schema["categories"])

    def by_rules(field: str, inp: str) -> str:
        for pattern, category in patterns:
            if pattern.search(field):
                return category
        return "closed_qa" if inp else "open_qa"

    out = checked.copy()
    blank = out["category"].isna()
    categories = [
        by_rules(f, i) if b else category_rules["labels"].get(c, c)
        for c, f, i, b in zip(out["category"], out["field"], out["input"], blank, strict=True)
    ]
    out["category"] = pd.Series(categories, index=out.index, dtype=checked["category"].dtype)
    simple = out["category"].isin(category_rules["simple_categories"]) | (
        out["output"].str.strip().str.len() <= category_rules["simple_max_output_chars"]
    )
    unset = out["uniqueness"].isna()
    out.loc[unset, "uniqueness"] = np.where(simple[unset], "simple", "complex")
    logger.info(
        "Categories: %d rows by the rules, %d kept or translated; uniqueness set on %d rows; now %s",
        int(blank.sum()),
        int((~blank).sum()),
        int(unset.sum()),
        out["category"].value_counts().to_dict(),
    )
    return out


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
    separator = rules["separator"]
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
        out.loc[todo, "reasoning"] = out.loc[todo, "reasoning"].map(
            lambda r, s=sentence: f"{r}{separator}{s}" if r else s
        )
        logger.info("Rule %d (%s): matches %d rows, appended to %d", i, when, int(hit.sum()), int(todo.sum()))
    return out


def to_records(records: pd.DataFrame) -> list[dict[str, Any]]:
    """The table as JSON-ready records (plain ints and strings), in sheet order."""
    rows = []
    for row in records.to_dict(orient="records"):
        rows.append(
            {k: (int(v) if isinstance(v, int | np.integer) else ("" if v is None else v)) for k, v in row.items()}
        )
    return rows


# ---------------------------------------------------------------- prompts and split
def format_prompt(record: Mapping[str, Any], prompt: Mapping[str, Any]) -> str:
    """The prompt text for one record: a ``### <header>:`` section per non-empty column.

    ``instruction_language`` is the original's hypothesis as a switch: ``native`` keeps the
    sheet's instruction as it is; ``en`` puts the fixed English ``english_instruction`` in the
    instruction's section and moves the record's own instruction (Japanese, say) to the top of
    the ``input`` section (the original, with Phi-2, found an English instruction with the
    Japanese content in the input answered better).

    With ``use_chat_template`` the text becomes the user turn and the chat template marks where
    the answer starts; without it (base models such as Phi-2) a ``### <response_header>:`` line does.
    """
    language = prompt["instruction_language"]
    if language not in ("native", "en"):
        raise ValueError(f"alpaca_sft.prompt.instruction_language must be 'native' or 'en', got {language!r}")
    values = {s["column"]: str(record.get(s["column"]) or "").strip() for s in prompt["sections"]}
    if language == "en":
        own = values.get("instruction", "")
        values["instruction"] = prompt["english_instruction"].strip()
        values["input"] = "\n\n".join(v for v in (own, values.get("input", "")) if v)
    parts = [f"### {s['header']}:\n{values[s['column']]}" for s in prompt["sections"] if values[s["column"]]]
    text = "\n\n".join(parts)
    if not prompt["use_chat_template"]:
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
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
    return text


def make_examples(records: list[dict[str, Any]], prompt: Mapping[str, Any]) -> pd.DataFrame:
    """One supervised example per record: ``prompt`` (formatted), ``completion`` (the reference output)."""
    frame = pd.DataFrame(records)
    frame["prompt"] = [format_prompt(r, prompt) for r in records]
    frame["completion"] = frame["output"].astype(str).str.strip()
    return frame[["NO", "language", "category", "uniqueness", "prompt", "completion"]]


def split_examples(examples: pd.DataFrame, split: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Hold out ``eval_size`` examples for the before/after evaluation, then carve
    ``validation_size`` examples from the rest to choose the checkpoint on (both stratified by
    ``stratify_by`` when set). The held-out prompts never influence training or the choice.

    Returns:
        ``(train, validation, held_out)``, each sorted by NO.
    """
    from sklearn.model_selection import train_test_split

    def carve(frame: pd.DataFrame, size: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        stratify = frame[split["stratify_by"]] if split["stratify_by"] else None
        rest, part = train_test_split(frame, test_size=size, random_state=split["seed"], stratify=stratify)
        return rest.sort_values("NO").reset_index(drop=True), part.sort_values("NO").reset_index(drop=True)

    rest, held_out = carve(examples, split["eval_size"])
    train, validation = carve(rest, split["validation_size"])
    logger.info(
        "Split: %d training examples, %d validation prompts (checkpoint choice), %d held-out prompts",
        len(train),
        len(validation),
        len(held_out),
    )
    return train, validation, held_out


# ---------------------------------------------------------------- training
def sft_dataset(frame: pd.DataFrame, tokenizer: Any, prompt: Mapping[str, Any]) -> Any:
    """Prompt/completion pairs for TRL: the prompt already in the model's chat template (the very
    string :func:`generate_answers` feeds the model), the completion the reference answer.

    TRL appends the tokenizer's eos token to each completion; for a chat model that is its
    end-of-turn token (``<|im_end|>`` for SmolLM2), so the model learns to end its turn.
    """
    from datasets import Dataset

    chat = bool(prompt["use_chat_template"])
    return Dataset.from_dict(
        {
            "prompt": [model_prompt(tokenizer, p, chat) for p in frame["prompt"]],
            "completion": frame["completion"].tolist(),
        }
    )


def build_trainer(
    train: pd.DataFrame,
    base_model: Any,
    prompt: Mapping[str, Any],
    params: Mapping[str, Any],
    output_dir: str,
    callbacks: Sequence[Any] = (),
) -> Any:
    """The trainer of ``params["objective"]``, with a LoRA adapter (``params["lora"]``, peft's
    ``LoraConfig`` keys, passed as they are):

    - ``sft``: TRL's ``SFTTrainer`` on prompt/completion pairs (:func:`sft_dataset`), loss on the
      completion only, no packing (:func:`sft_config`);
    - ``preference``: TRL's ``DPOTrainer`` on the pairs of :func:`preference_dataset` (:func:`dpo_config`);
      the reference model is the base model (the adapter switched off).
    """
    from peft import LoraConfig

    objective = params["objective"]
    tokenizer = base_model.tokenizer
    common = {
        "model": base_model.model,
        "processing_class": tokenizer,
        "peft_config": LoraConfig(**params["lora"]),
        "callbacks": list(callbacks),
    }
    if objective == "sft":
        from trl import SFTTrainer

        return SFTTrainer(
            args=sft_config(params, output_dir),
            train_dataset=sft_dataset(train, tokenizer, prompt),
            **common,
        )
    if objective == "preference":
        trainer_class = dpo_trainer_class(params["rejected_ends_turn"])
        args = dpo_config(params, output_dir)
        return trainer_class(args=args, train_dataset=preference_dataset(train, tokenizer, prompt), **common)
    raise ValueError(f"alpaca_sft.train.objective must be 'sft' or 'preference', got {objective!r}")


def examples_trained_on(trainer: Any, train: pd.DataFrame, params: Mapping[str, Any]) -> int:
    """How many of the ``train`` rows ``trainer`` trains on, with a warning when it is fewer: TRL
    drops an example whose prompt alone fills ``max_length`` (no answer token left to learn)."""
    kept = len(trainer.train_dataset)
    if kept < len(train):
        logger.warning(
            "alpaca_sft: %d of the %d training examples are not trained on: their prompt alone fills "
            "train.trainer.max_length (%s tokens), so TRL drops them; raise max_length to keep them.",
            len(train) - kept,
            len(train),
            params["trainer"].get("max_length"),
        )
    return kept


HEADER_LINE = re.compile(r"^### [^\n:]+:\s*$", re.MULTILINE)


def echo_prompt(text: str) -> str:
    """The prompt's own text without its ``### <header>:`` lines: an "answer" that only repeats the question."""
    return "\n".join(line for line in HEADER_LINE.sub("", text).splitlines() if line.strip())


def dpo_trainer_class(rejected_ends_turn: bool) -> type:
    """TRL's ``DPOTrainer``, or (``rejected_ends_turn`` false) a subclass whose rejected answers do not end their turn.

    For prompt/completion text DPOTrainer appends the end-of-turn token to the chosen and to the
    rejected answer alike, so DPO also lowers the probability of ending the turn after the echo,
    which may teach the model not to end at all. Without it, the rejected sequence is the echo alone
    (the chosen one keeps its end-of-turn token). The subclass extends TRL's private
    ``_prepare_dataset`` (TRL is pinned to 1.16: ``tests/pipelines/alpaca_sft/test_training.py``
    decodes the prepared pairs and fails if an update changes it).
    """
    from trl import DPOTrainer

    if rejected_ends_turn:
        return DPOTrainer

    class RejectedWithoutEndTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
            dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            eos = self._tokenizer.eos_token_id

            def drop_end(example: dict[str, Any]) -> dict[str, Any]:
                ids = example["rejected_ids"]
                return {"rejected_ids": ids[:-1] if ids and ids[-1] == eos else ids}

            return dataset.map(drop_end, desc=f"Dropping the end-of-turn token from {dataset_name}'s rejected answers")

    return RejectedWithoutEndTrainer


def preference_dataset(frame: pd.DataFrame, tokenizer: Any, prompt: Mapping[str, Any]) -> Any:
    """Preference pairs for TRL's DPO: the prompt as :func:`sft_dataset` gives it, ``chosen`` the
    reference answer, ``rejected`` the prompt echoed (:func:`echo_prompt`): the copy that the
    SFT runs drifted towards. DPOTrainer appends the end-of-turn token to both (to the chosen only
    with ``rejected_ends_turn: false``, :func:`dpo_trainer_class`)."""
    from datasets import Dataset

    chat = bool(prompt["use_chat_template"])
    return Dataset.from_dict(
        {
            "prompt": [model_prompt(tokenizer, p, chat) for p in frame["prompt"]],
            "chosen": frame["completion"].tolist(),
            "rejected": [echo_prompt(p) for p in frame["prompt"]],
        }
    )


def answer_losses(model: Any, tokenizer: Any, frame: pd.DataFrame, prompt: Mapping[str, Any]) -> list[float]:
    """Each reference answer's loss under ``model`` (as it is: base or with its adapter): the mean
    cross-entropy over the whole answer's tokens and its end-of-turn token, given its prompt in the
    model's format, one answer at a time (lower: the model finds the reference more likely).

    The examples are made by the ``sft`` objective's own trainer (TRL's ``SFTTrainer`` with
    :func:`sft_config`: the same prompt format and completion-only labels), whatever the objective,
    so the measure is the SFT loss split by answer, except that nothing is truncated: training's
    ``max_length`` bounds memory, and would score a long answer on its beginning only (or, where
    the prompt alone fills it, not at all). A per-answer number pairs before with after over the prompts.
    """
    import torch
    from trl import SFTTrainer

    whole = {"trainer": {"max_length": None, "per_device_eval_batch_size": 1}}
    with tempfile.TemporaryDirectory(prefix="alpaca_sft-loss-") as scratch:
        data = sft_dataset(frame, tokenizer, prompt)
        trainer = SFTTrainer(  # it wants a train_dataset too (one example, tokenized for nothing); nothing is trained
            model=model,
            args=sft_config(whole, scratch),
            train_dataset=data.select(range(min(1, len(data)))),
            eval_dataset=data,
            processing_class=tokenizer,
        )
        if len(trainer.eval_dataset) != len(frame):  # TRL drops examples with no answer token left
            raise RuntimeError(f"alpaca_sft: TRL kept {len(trainer.eval_dataset)} of the {len(frame)} answers to score")
        was_training = model.training
        model.eval()
        losses = []
        try:
            with torch.no_grad():
                for batch in trainer.get_eval_dataloader():
                    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "labels") if k in batch}
                    losses.append(float(model(**inputs).loss))
        finally:
            model.train(was_training)
    return losses


# Fixed by the recipe for both objectives: checkpoints are chosen on validation chrF by a callback, in
# memory; runs are tracked by kedro-mlflow; the CPU.
_RECIPE_ARGS = {
    "eval_strategy": "no",
    "save_strategy": "no",
    "report_to": "none",
    "use_cpu": True,
    "dataloader_num_workers": 0,
}


def sft_config(params: Mapping[str, Any], output_dir: str) -> Any:
    """TRL's ``SFTConfig`` from ``params["trainer"]`` (its own keys, passed as they are) and what the recipe fixes."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=output_dir,
        # The loss covers the answer and its end-of-turn token only (tests/.../test_training.py
        # decodes the unmasked labels of a batch); examples are never packed together.
        completion_only_loss=True,
        packing=False,
        **_RECIPE_ARGS,
        **params["trainer"],
    )


def dpo_config(params: Mapping[str, Any], output_dir: str) -> Any:
    """TRL's ``DPOConfig`` from ``params["trainer"]`` (shared with the ``sft`` objective) and
    ``params["preference"]`` (``DPOConfig``'s own keys: ``beta``, ``loss_type``, ``loss_weights``).

    With ``loss_type: [sigmoid, sft]`` the loss is DPO's plus the SFT loss on the reference answer
    (RPO): the model learns the answer and to prefer it to the echo. A trainer key that
    ``DPOConfig`` does not have (an ``SFTConfig``-only one) is refused.
    """
    from dataclasses import fields

    from trl import DPOConfig

    unknown = sorted(set(params["trainer"]) - {f.name for f in fields(DPOConfig)})
    if unknown:
        raise ValueError(
            f"alpaca_sft.train.trainer has keys that TRL's DPOConfig does not take ({', '.join(unknown)}): "
            "remove them to train with objective 'preference'."
        )
    return DPOConfig(output_dir=output_dir, **_RECIPE_ARGS, **params["trainer"], **params["preference"])


def chrf_checkpoint_callback(
    validation: pd.DataFrame,
    tokenizer: Any,
    prompt: Mapping[str, Any],
    generation: Mapping[str, Any],
    every: int,
    max_steps: int,
) -> Any:
    """A callback that scores greedy answers to the validation prompts by mean chrF every
    ``every`` steps (and at the last) and keeps a copy of the best adapter weights."""
    from peft import get_peft_model_state_dict
    from transformers import TrainerCallback

    from .measures import chrf

    chat = bool(prompt["use_chat_template"])
    texts = [model_prompt(tokenizer, p, chat) for p in validation["prompt"]]
    references = validation["completion"].tolist()

    class ChrfCheckpoint(TrainerCallback):
        def __init__(self) -> None:
            self.curve: list[dict[str, float]] = []
            self.best_state: dict[str, Any] | None = None
            self.best_step = -1
            self.best_chrf = -1.0

        def score(self, model: Any) -> float:
            was_training = model.training
            model.eval()
            try:
                answers = _generate(model, tokenizer, texts, generation)
            finally:
                model.train(was_training)
            return float(np.mean([chrf(a["answer"], r) for a, r in zip(answers, references, strict=True)]))

        def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            value = self.score(model)
            self.curve.append({"step": 0, "validation_chrf": round(value, 4)})
            logger.info("step 0 (before training): validation chrF %.2f", value)

        def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            step = int(state.global_step)
            if step % every and step != max_steps:
                return
            value = self.score(model)
            self.curve.append({"step": step, "validation_chrf": round(value, 4)})
            logger.info("step %d: validation chrF %.2f", step, value)
            if value > self.best_chrf:
                self.best_chrf, self.best_step = value, step
                self.best_state = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}

    return ChrfCheckpoint()


def train_lora(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    base_model: Any,
    prompt: Mapping[str, Any],
    params: Mapping[str, Any],
    generation: Mapping[str, Any],
) -> tuple[Any, dict[str, Any]]:
    """LoRA fine-tuning with the trainer of ``params["objective"]`` (:func:`build_trainer`): TRL's
    ``SFTTrainer`` on prompt/completion pairs (loss on the completion only) for ``sft``, TRL's
    ``DPOTrainer`` on the reference answer preferred to the echoed prompt for ``preference``.

    Every ``checkpoint_every`` steps the adapter answers the validation prompts (carved from the
    training rows, never the held-out ones) and the adapter with the best mean chrF is kept:
    the checkpoint is chosen on what the answers are, not on eval loss. The held-out prompts are not
    an input: their answers, and the reference answers' loss (:func:`answer_losses`), are measured
    by :func:`generate_answers` before and after, one number per prompt, so that they pair.

    Returns:
        The model with its chosen adapter (a ``ModelHandle``, saved as an adapter by the catalog) and
        the training metrics (losses, the validation chrF curve, the chosen step, time).
    """
    from peft import set_peft_model_state_dict
    from transformers import set_seed

    from qeu_kedro.datasets import ModelHandle

    set_seed(params["trainer"]["seed"])
    tokenizer = base_model.tokenizer
    checkpoint = chrf_checkpoint_callback(
        validation, tokenizer, prompt, generation, params["checkpoint_every"], params["trainer"]["max_steps"]
    )
    # Checkpoints are kept in memory (LoRA weights only); the trainer still wants an output folder.
    with tempfile.TemporaryDirectory(prefix="alpaca_sft-") as scratch:
        trainer = build_trainer(train, base_model, prompt, params, scratch, callbacks=[checkpoint])
        trained_on = examples_trained_on(trainer, train, params)
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
        model = trainer.model
        set_peft_model_state_dict(model, checkpoint.best_state)
    model.eval()
    trainable, total = model.get_nb_trainable_parameters()
    metrics = {
        "base_model": base_model.source,
        "n_train": len(train),
        "n_train_trained_on": trained_on,
        "n_validation": len(validation),
        "max_steps": params["trainer"]["max_steps"],
        "global_step": int(result.global_step),
        "chosen_step": checkpoint.best_step,
        "validation_chrf_curve": checkpoint.curve,
        "instruction_language": prompt["instruction_language"],
        "objective": params["objective"],
        "train_loss": round(float(result.training_loss), 4),
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
        "LoRA training (objective %s): %d steps in %.0f s; adapter of step %d chosen on validation chrF",
        metrics["objective"],
        metrics["global_step"],
        seconds,
        metrics["chosen_step"],
    )
    return ModelHandle(f"{base_model.source} + LoRA", model=model, tokenizer=tokenizer), metrics


# ---------------------------------------------------------------- generation and measures
def decode_whole(tokenizer: Any, ids: Sequence[int]) -> str:
    """The text of ``ids`` without a character cut in two at the end.

    A byte-level BPE token can carry part of a multi-byte UTF-8 character (most kanji are 3
    bytes): a generation stopped by ``max_new_tokens`` (or by an end-of-turn token the model put
    inside a character) can end inside one, which decodes to U+FFFD. The trailing tokens of such an
    incomplete character are dropped (at most 3: a UTF-8 character has at most 4 bytes). Trailing
    special tokens (the end-of-turn token) decode to nothing and are dropped first, so they do not
    count among the 3.
    """
    ids = list(ids)
    special = set(getattr(tokenizer, "all_special_ids", None) or ())
    while ids and ids[-1] in special:
        ids.pop()
    text = tokenizer.decode(ids, skip_special_tokens=True)
    cut = 0
    while text.endswith("\ufffd") and cut < min(3, len(ids)):
        cut += 1
        text = tokenizer.decode(ids[:-cut], skip_special_tokens=True)
    return text


def _generate(model: Any, tokenizer: Any, texts: Sequence[str], generation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Greedy answers to ``texts`` (already in the model's prompt format), in batches padded on the left.

    Each answer is decoded whole (:func:`decode_whole`); ``ended_by_itself`` says the model ended
    its turn (eos) before ``max_new_tokens``.
    """
    import torch

    eos = tokenizer.eos_token_id
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    out_rows = []
    try:
        for lo in range(0, len(texts), generation["batch_size"]):
            batch = tokenizer(list(texts[lo : lo + generation["batch_size"]]), return_tensors="pt", padding=True)
            with torch.no_grad():
                out = model.generate(
                    **batch,
                    max_new_tokens=generation["max_new_tokens"],
                    do_sample=False,
                    repetition_penalty=generation["repetition_penalty"],
                    eos_token_id=eos,
                    pad_token_id=tokenizer.pad_token_id,
                )
            for ids in out[:, batch["input_ids"].shape[1] :]:
                ids = ids.tolist()
                # Generation stops at eos; shorter answers of a batch are padded after it.
                stopped = eos in ids
                new = ids[: ids.index(eos) + 1] if stopped else ids
                out_rows.append(
                    {
                        "answer": decode_whole(tokenizer, new).strip(),
                        "n_new_tokens": len(new),
                        "ended_by_itself": stopped,
                    }
                )
    finally:
        tokenizer.padding_side = padding_side
    return out_rows


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
    answers = _generate(model, tokenizer, [model_prompt(tokenizer, r["prompt"], chat) for r in records], generation)
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
    empty for a single prompt, whose bootstrap would be one value (an interval of zero width)."""
    if len(rows) < 2:
        return {}
    return {
        c: paired_change(rows[f"{c}_before"], rows[f"{c}_after"], higher, measures)
        for c, higher in _paired(measures).items()
    }


def compare_before_after(
    before: pd.DataFrame, after: pd.DataFrame, train_metrics: Mapping[str, Any], measures: Mapping[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The before/after table (one row per held-out prompt) and the summary metrics.

    Summary: the mean of each measure (the reference answers' loss among them) overall and per requested
    language (``language_match`` and ``ended_by_itself`` as rates); for every measure the paired
    difference over the held-out prompts with its 95 % bootstrap interval and a verdict
    (:func:`paired_change`), overall and within each language of two or more prompts; the references' own copied n-gram share (the yardstick for copying);
    and the issue's targets, each met or not.
    """
    cols = _summary_columns(measures)
    n = measures["ngram"]
    keep = ["answer", *cols, "detected_language"]
    table = before[["NO", "language", "category", "uniqueness", "prompt", "reference"]].copy()
    for name, frame in (("before", before), ("after", after)):
        part = frame.set_index("NO")[keep].add_suffix(f"_{name}")
        table = table.join(part, on="NO")

    def means(frame: pd.DataFrame) -> dict[str, float]:
        return {c: round(float(frame[c].astype(float).mean()), 4) for c in cols}

    paired = {
        c: paired_change(table[f"{c}_before"], table[f"{c}_after"], higher, measures)
        for c, higher in _paired(measures).items()
    }
    reference_copied = round(float(before[f"reference_copied_{n}gram_share"].mean()), 4)
    # the references' own share in the requested language: the ceiling of language_match (answers tables
    # written before this yardstick existed have no column for it)
    reference_language = (
        round(float(before["reference_language_match"].astype(float).mean()), 4)
        if "reference_language_match" in before
        else None
    )
    overall = {"before": means(before), "after": means(after)}
    copied_after = overall["after"][f"copied_{n}gram_share"]
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
        "reference_language_match": reference_language,
        "overall": overall,
        "by_language": {
            lang: {
                "n": int((before["language"] == lang).sum()),
                "before": means(before[before["language"] == lang]),
                "after": means(after[after["language"] == lang]),
                "paired": _paired_within(table[table["language"] == lang], measures),
            }
            for lang in sorted(before["language"].unique())
        },
        "targets": {
            "chrf_better": paired["chrf"]["verdict"] == "better",
            f"copied_{n}gram_share_within_reference_plus_0.10": copied_after <= reference_copied + 0.10,
            "ended_by_itself_not_lower": overall["after"]["ended_by_itself"] >= overall["before"]["ended_by_itself"],
        },
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
    t = summary["targets"]
    if summary.get("reference_language_match") is not None:
        lines.append(
            f"- The references themselves are in the requested language by the same detector in "
            f"{summary['reference_language_match']:.4f} of the prompts (a reference of kanji only reads as Chinese, "
            "one of digits or code as no language or English): the share of answers in the requested language "
            "is read against that."
        )
    lines += [
        "",
        f"Targets: chrF better: **{'met' if t['chrf_better'] else 'not met'}**; copied {n}-gram share after "
        f"({summary['overall']['after'][f'copied_{n}gram_share']}) at most the references' own ({ref}) + 0.10: "
        f"**{'met' if t[f'copied_{n}gram_share_within_reference_plus_0.10'] else 'not met'}**; answers ending by "
        f"themselves not fewer after: **{'met' if t['ended_by_itself_not_lower'] else 'not met'}**.",
    ]
    return lines


_GENERATION_COLUMNS = {"prompt": "prompt", "reference": "reference", "before": "answer_before", "after": "answer_after"}


def _markdown_table(rows: list[dict[str, Any]]) -> str:
    """``rows`` as a markdown table (``DataFrame.to_markdown``), every value written as it is."""
    return pd.DataFrame(rows).astype(str).to_markdown(index=False, disable_numparse=True)


def _change_cells(cmp: Mapping[str, Any] | None, n: int, change: str) -> dict[str, str]:
    """The difference with its interval and the verdict, or why there is none."""
    if cmp is None:
        return {change: "one prompt: no interval" if n < 2 else "", "verdict": ""}
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
    cell_chars: int,
    figure: str | None = None,
) -> str:
    """A readable report: the verdicts in words, the summary before/after, then the generations as a table.

    ``figure`` is the path the before/after figure was saved to (:class:`qeu_kedro.datasets.FigureDataset`),
    linked by its file name after the summary: the catalog saves it beside the report.
    """
    cols = _summary_columns(measures)
    t = summary["train"]
    lines = [
        "# alpaca_sft: before vs after LoRA training",
        "",
        f"Model: {t['base_model']}; {_trained_on(t)} training examples, {t['global_step']} steps "
        f"({t['train_seconds']} s), adapter of step {t['chosen_step']} chosen by chrF on {t['n_validation']} "
        f"validation prompts; objective: {t['objective']}; instruction language: {t['instruction_language']}; "
        f"{summary['n_prompts']} held-out prompts, greedy decoding.",
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
            **{k: _cell(r[col], cell_chars) for k, col in _GENERATION_COLUMNS.items()},
        }
        for r in table.to_dict(orient="records")
    ]
    lines += ["", "## By requested language", "", _markdown_table(by_language)]
    lines += ["", "## Generations", "", _markdown_table(generations)]
    return "\n".join(lines) + "\n"
