"""LoRA training for ``alpaca_sft``: TRL datasets and configs, the SFT and preference trainers, the
reference answers' loss, the checkpoint chosen on validation chrF."""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .data import model_prompt
from .generation import generate

logger = logging.getLogger(__name__)


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


#: The config keys the recipe sets itself (:func:`sft_config`, :func:`dpo_config`): a ``train.trainer`` or
#: ``train.preference`` key among them would be given twice.
RECIPE_KEYS: tuple[str, ...] = ("output_dir", "completion_only_loss", "packing", *_RECIPE_ARGS)


def recipe_problems(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(key, problem)`` for each key of ``params["trainer"]`` or ``params["preference"]`` (``alpaca_sft.train``)
    that the recipe sets itself (:data:`RECIPE_KEYS`), and each key given in both blocks (the preference objective
    passes both to ``DPOConfig``). The parameter check (:mod:`qeu_kedro.parameters`) refuses them before the run,
    :func:`sft_config` and :func:`dpo_config` at the node."""
    problems = []
    blocks = {b: params.get(b) for b in ("trainer", "preference")}
    blocks = {b: v for b, v in blocks.items() if isinstance(v, Mapping)}
    for block, keys in blocks.items():
        for key in sorted(set(keys) & set(RECIPE_KEYS)):
            problems.append(
                (
                    f"alpaca_sft.train.{block}.{key}",
                    f"the recipe sets it itself (it fixes {', '.join(RECIPE_KEYS)}: the completion-only loss, no "
                    "packing, no evaluation, saving or reporting by the trainer, the CPU); remove it",
                )
            )
    if len(blocks) == 2:
        for key in sorted((set(blocks["trainer"]) & set(blocks["preference"])) - set(RECIPE_KEYS)):
            problems.append(
                (
                    f"alpaca_sft.train.preference.{key}",
                    "also given in alpaca_sft.train.trainer: the preference objective passes both blocks to "
                    "TRL's DPOConfig, so give it in one of them",
                )
            )
    return problems


def _check_recipe(params: Mapping[str, Any]) -> None:
    problems = recipe_problems(params)
    if problems:
        raise ValueError("; ".join(f"{key}: {problem}" for key, problem in problems) + ".")


def sft_config(params: Mapping[str, Any], output_dir: str) -> Any:
    """TRL's ``SFTConfig`` from ``params["trainer"]`` (its own keys, passed as they are) and what the recipe fixes.

    Raises:
        ValueError: a trainer key the recipe sets itself (:func:`recipe_problems`).
    """
    from trl import SFTConfig

    _check_recipe({"trainer": params["trainer"]})
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
    ``DPOConfig`` does not have (an ``SFTConfig``-only one) is refused, and so are a key the recipe sets itself
    and a key given in both blocks (:func:`recipe_problems`).
    """
    from dataclasses import fields

    from trl import DPOConfig

    unknown = sorted(set(params["trainer"]) - {f.name for f in fields(DPOConfig)})
    if unknown:
        raise ValueError(
            f"alpaca_sft.train.trainer has keys that TRL's DPOConfig does not take ({', '.join(unknown)}): "
            "remove them to train with objective 'preference'."
        )
    _check_recipe(params)
    return DPOConfig(output_dir=output_dir, **_RECIPE_ARGS, **params["trainer"], **params["preference"])


def chrf_checkpoint_callback(
    validation: pd.DataFrame,
    tokenizer: Any,
    prompt: Mapping[str, Any],
    generation: Mapping[str, Any],
    every: int,
) -> Any:
    """A callback that scores greedy answers to the validation prompts by mean chrF before training,
    every ``every`` steps and at the last step the trainer takes (its own ``state.max_steps``, so a run
    bounded by ``num_train_epochs`` with ``max_steps: -1`` is scored at its end too), and keeps a copy of
    the best adapter weights (:func:`restore_best_adapter` puts them back).

    Raises:
        ValueError: ``every`` is less than 1.
    """
    from peft import get_peft_model_state_dict
    from transformers import TrainerCallback

    from .measures import chrf

    if not isinstance(every, int) or every < 1:
        raise ValueError(
            f"alpaca_sft.train.checkpoint_every must be a whole number of steps of at least 1, got {every!r}: "
            "set it to how many training steps apart the adapter is scored on the validation prompts."
        )
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
                answers = generate(model, tokenizer, texts, generation, desc="Validation answers (chrF)")
            finally:
                model.train(was_training)
            return float(np.mean([chrf(a["answer"], r) for a, r in zip(answers, references, strict=True)]))

        def keep(self, model: Any, step: int) -> None:
            value = self.score(model)
            self.curve.append({"step": step, "validation_chrf": round(value, 4)})
            logger.info("step %d: validation chrF %.2f", step, value)
            if value > self.best_chrf:
                self.best_chrf, self.best_step = value, step
                self.best_state = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}

        def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            value = self.score(model)
            self.curve.append({"step": 0, "validation_chrf": round(value, 4)})
            logger.info("step 0 (before training): validation chrF %.2f", value)

        def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            step = int(state.global_step)
            if step % every == 0 or step == int(state.max_steps):
                self.keep(model, step)

        def on_train_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            # the last step trained, when it was not a multiple of every nor the planned max_steps
            step = int(state.global_step)
            if step > 0 and self.curve[-1]["step"] != step:
                self.keep(model, step)

    return ChrfCheckpoint()


def restore_best_adapter(model: Any, checkpoint: Any) -> None:
    """Put the best-scoring adapter weights of ``checkpoint`` (:func:`chrf_checkpoint_callback`) back into ``model``.

    Raises:
        ValueError: no training step was scored (the trainer took no step), so there is no adapter to choose.
    """
    from peft import set_peft_model_state_dict

    if checkpoint.best_state is None:
        raise ValueError(
            "No training step was scored on the validation prompts, so no adapter can be chosen (the trainer took "
            f"no step; scored: {checkpoint.curve}). Give the training more steps (alpaca_sft.train.trainer.max_steps "
            "or num_train_epochs) or more training rows."
        )
    set_peft_model_state_dict(model, checkpoint.best_state)


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
    from transformers import set_seed

    from qeu_kedro.datasets import ModelHandle

    set_seed(params["trainer"]["seed"])
    tokenizer = base_model.tokenizer
    checkpoint = chrf_checkpoint_callback(validation, tokenizer, prompt, generation, params["checkpoint_every"])
    # Checkpoints are kept in memory (LoRA weights only); the trainer still wants an output folder.
    with tempfile.TemporaryDirectory(prefix="alpaca_sft-") as scratch:
        trainer = build_trainer(train, base_model, prompt, params, scratch, callbacks=[checkpoint])
        trained_on = examples_trained_on(trainer, train, params)
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
        model = trainer.model
        restore_best_adapter(model, checkpoint)
    model.eval()
    trainable, total = model.get_nb_trainable_parameters()
    metrics = {
        "base_model": base_model.source,
        "n_train": len(train),
        "n_train_trained_on": trained_on,
        "n_validation": len(validation),
        "max_steps": int(trainer.state.max_steps),  # the trainer's own (max_steps -1: from num_train_epochs)
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
    untrained = checkpoint.curve[0]["validation_chrf"] if checkpoint.curve else None
    if untrained is not None and checkpoint.best_chrf <= untrained:
        # the adapter is kept (a comparison needs a trained model); the report says it was no better
        logger.warning(
            "No checkpoint scored above the untrained model on validation chrF (step 0: %.2f; best: %.2f at step "
            "%d, a point estimate on %d prompts): the adapter kept is no better on validation. Train longer or "
            "at another learning rate (alpaca_sft.train.trainer).",
            untrained,
            checkpoint.best_chrf,
            checkpoint.best_step,
            len(validation),
        )
    return ModelHandle(f"{base_model.source} + LoRA", model=model, tokenizer=tokenizer), metrics
