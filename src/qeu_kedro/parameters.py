"""Parameters checked before any node runs: unknown keys, types and ranges.

The keys a block may hold are the keys ``conf/base`` gives it: an environment (or
``--params``) changes values of known keys, and a key that ``conf/base`` does not have is a
typo, reported with the closest known key ("did you mean"). A key added to ``conf/base``
is known at once, without code. Blocks passed as they are to a library's config class
(:data:`LIBRARY_BLOCKS`: ``SFTConfig``, ``DPOConfig``, ``LoraConfig``, ``SentenceTransformerTrainingArguments``)
also take any field of that class; a model's config block (:data:`MODEL_CONFIG_BLOCKS`) takes the fields
of the configured model's own config class. Types and ranges are checked for the keys in
:data:`RULES` (pydantic types), and every error names the key and the file it came from.

:class:`~qeu_kedro.hooks.InputChecksHook` runs :func:`check_parameters` in
``before_pipeline_run``, on the merged parameters of the blocks the run uses.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, TypeAdapter, ValidationError

from qeu_kedro.stats import MIN_UNITS

logger = logging.getLogger(__name__)

PositiveInt = Annotated[int, Field(ge=1)]
PositiveFloat = Annotated[float, Field(gt=0)]
Share = Annotated[float, Field(gt=0, lt=1)]  # strictly between 0 and 1
Fraction = Annotated[float, Field(ge=0, le=1)]
#: A fraction as written, for a value a node compares or computes with as it is: a quoted "0.75" (YAML text) or
#: ``true`` would pass :data:`Fraction` as a number and reach the node as text or a bool.
StrictFraction = Annotated[StrictFloat | StrictInt, Field(ge=0, le=1)]
Seed = Annotated[int, Field(ge=0)]
#: The fewest bootstrap resamples a run may ask for. An interval's ends are its 2.5th and 97.5th percentiles: with
#: 1000 resamples 25 resamples lie beyond each end, with 1 or a handful the "interval" is a couple of points and a
#: no-difference comparison is called better or worse far more often than 5 % of the time. conf/base asks for
#: 2000 (jrte) and 10000 (bge, alpaca); unit tests that call the nodes with fewer, for speed, pass no parameter check.
MIN_RESAMPLES = 1000
Resamples = Annotated[StrictInt, Field(ge=MIN_RESAMPLES)]
#: Splits of the jrte corpus, at least one.
JrteSplits = Annotated[list[Literal["train", "dev", "test"]], Field(min_length=1)]

#: Typed rules for the keys whose wrong value would fail late or change results silently.
RULES: dict[str, Any] = {
    "movie_embedding.batch_size": PositiveInt,
    "movie_embedding.normalize_embeddings": StrictBool,
    "movie_embedding.use_cache": StrictBool,
    "movie_embedding.text_columns": Annotated[list[str], Field(min_length=1)],
    "movie_embedding.encoder.batching": Literal["fixed", "length_buckets"],
    "movie_embedding.encoder.max_tokens_per_batch": PositiveInt,
    "movie_embedding.encoder.quantize": Literal["none", "int8"],
    "movie_embedding.encoder.text_partitions": Annotated[int, Field(ge=0)],
    "movie_embedding.show_progress_bar": StrictBool,
    "movie_overviews.match_on": Literal["movie_id", "title_year"],
    "movie_overviews.articles": list[str],
    "ridge_analysis.alpha": PositiveFloat | Literal["auto"],
    "ridge_analysis.fit_intercept": StrictBool,
    "ridge_analysis.group_by": Literal["movie_id"] | None,  # whole movies held out, or (null) single ratings
    "ridge_analysis.test_size": Share,
    "ridge_analysis.seed": Seed,
    "ridge_analysis.top_k": PositiveInt,
    "ridge_analysis.n_plot": PositiveInt,
    "ridge_analysis.plot_features": list[str],
    "ridge_analysis.jitter": Annotated[float, Field(ge=0)],
    "ridge_analysis.max_join_loss": Fraction,
    "ridge_analysis.user_features": list[Literal["age", "gender", "occupation"]],
    "ridge_analysis.rating_step": Literal[0.5, 1],
    "ridge_analysis.schema.genders": Annotated[list[str], Field(min_length=1)],
    "ridge_analysis.alpha_search.grid": Annotated[list[PositiveFloat], Field(min_length=2)],
    "ridge_analysis.alpha_search.folds": Annotated[int, Field(ge=2)],
    "ridge_analysis.alpha_search.seed": Seed,
    "ridge_analysis.cv.folds": Annotated[int, Field(ge=2)],
    "ridge_analysis.cv.repeats": PositiveInt,
    "ridge_analysis.cv.seed": Seed,
    "movie_comparison.confidence": Annotated[float, Field(gt=0, lt=1)],
    "ridge_analysis.schema.occupations": Annotated[list[str], Field(min_length=1)],
    "bge_finetune.source.format": Literal["table", "squad"],
    "bge_finetune.split.by": Literal["pair", "positive"],
    "bge_finetune.split.test_size": Share,
    "bge_finetune.split.seed": Seed,
    "bge_finetune.subset.max_train_pairs": PositiveInt | None,
    "bge_finetune.subset.max_test_queries": Annotated[int, Field(ge=MIN_UNITS)] | None,
    "bge_finetune.subset.max_corpus": PositiveInt | None,
    "bge_finetune.matryoshka_dims": Literal["auto"] | Annotated[list[PositiveInt], Field(min_length=1)],
    "bge_finetune.trainer.num_train_epochs": PositiveFloat,
    "bge_finetune.trainer.max_steps": PositiveInt | Literal[-1],
    "bge_finetune.trainer.per_device_train_batch_size": PositiveInt,
    "bge_finetune.trainer.learning_rate": PositiveFloat,
    "bge_finetune.trainer.warmup_steps": Annotated[float, Field(ge=0)],
    "bge_finetune.trainer.logging_steps": PositiveInt,
    "bge_finetune.trainer.seed": Seed,
    "bge_finetune.trainer.data_seed": Seed,
    "bge_finetune.hard_negatives.batch_size": PositiveInt,
    # read as switches: a string such as "no" (quoted in YAML, or from --params) would count as true
    "bge_finetune.source.drop_incomplete": StrictBool,
    "bge_finetune.hard_negatives.use_negative_column": StrictBool,
    "bge_finetune.hard_negatives.mine": StrictBool,
    "bge_finetune.show_progress_bar": StrictBool,
    "bge_finetune.hard_negatives.sampling_strategy": Literal["top", "random"],  # mine_hard_negatives' own choices
    "bge_finetune.evaluation.batch_size": PositiveInt,
    "bge_finetune.validation.fraction": Annotated[float, Field(ge=0, lt=1)],
    "bge_finetune.validation.eval_steps": PositiveInt | None,
    "bge_finetune.validation.early_stopping_patience": PositiveInt | None,
    "bge_finetune.validation.keep_base_if_better": StrictBool,
    "bge_finetune.loss.name": Literal["mnrl", "cached_mnrl", "gist", "cached_gist"],
    "bge_finetune.loss.mini_batch_size": PositiveInt,
    "bge_finetune.loss.matryoshka_weights": list[PositiveFloat] | None,
    "bge_finetune.soup.seeds": Annotated[list[Seed], Field(min_length=2)] | None,
    "bge_finetune.prompts.query": str,
    "bge_finetune.prompts.document": str,
    "bge_finetune.statistics.n_resamples": Resamples,
    "bge_finetune.statistics.confidence": Annotated[float, Field(gt=0, lt=1)],
    "bge_finetune.minimum.train_pairs": PositiveInt,
    "bge_finetune.minimum.test_queries": Annotated[
        int, Field(ge=MIN_UNITS)
    ],  # the fewest units an interval is given for
    "bge_finetune.minimum.corpus": PositiveInt,
    "jrte_sentiment.training.trainer.per_device_train_batch_size": PositiveInt,
    "jrte_sentiment.training.trainer.per_device_eval_batch_size": PositiveInt,
    "jrte_sentiment.training.max_length": PositiveInt,
    "jrte_sentiment.training.trainer.learning_rate": PositiveFloat,
    "jrte_sentiment.training.trainer.num_train_epochs": PositiveFloat,
    "jrte_sentiment.training.trainer.max_steps": Annotated[int, Field(ge=-1)],
    "jrte_sentiment.task.annotators": Annotated[StrictInt, Field(ge=1)] | None,  # votes per row; null: not checked
    "jrte_sentiment.statistics.n_resamples": Resamples,
    "jrte_sentiment.statistics.confidence": Annotated[float, Field(gt=0, lt=1)],
    "jrte_sentiment.level2.average_last_epochs": PositiveInt | None,
    "jrte_sentiment.baseline.average_last_epochs": PositiveInt | None,
    "jrte_sentiment.soft_labels.average_last_epochs": PositiveInt | None,
    "jrte_sentiment.weighted_soft_labels.average_last_epochs": PositiveInt | None,
    "jrte_sentiment.level2.pooling": Literal["first_token", "mean"],
    "jrte_sentiment.baseline.pooling": Literal["first_token", "mean"],
    "jrte_sentiment.soft_labels.pooling": Literal["first_token", "mean"],
    "jrte_sentiment.weighted_soft_labels.pooling": Literal["first_token", "mean"],
    "jrte_sentiment.level5.seed_ensemble.enabled": StrictBool,
    "jrte_sentiment.level2.enabled": StrictBool,
    "jrte_sentiment.baseline.enabled": StrictBool,
    "jrte_sentiment.soft_labels.enabled": StrictBool,
    "jrte_sentiment.weighted_soft_labels.enabled": StrictBool,
    "jrte_sentiment.level5.seed_ensemble.seeds": Annotated[list[Seed], Field(min_length=1)],
    "jrte_sentiment.level1.method": Literal["embedding_zero_shot", "pipeline"],
    "jrte_sentiment.level1.zero_shot.batch_size": PositiveInt,
    "jrte_sentiment.level1.zero_shot.temperature": PositiveFloat,
    # a probability: 75 (a percentage) turned every Level 1 prediction into the unsure class, without a word
    "jrte_sentiment.level1.mapping.unsure_below": StrictFraction,
    # a cap is a whole number of rows (0 is not "no cap": null is); dev and test are scored with intervals
    "jrte_sentiment.split.max_rows.train": Annotated[StrictInt, Field(ge=1)] | None,
    "jrte_sentiment.split.max_rows.dev": Annotated[StrictInt, Field(ge=MIN_UNITS)] | None,
    "jrte_sentiment.split.max_rows.test": Annotated[StrictInt, Field(ge=MIN_UNITS)] | None,
    "jrte_sentiment.level5.decision_rule.grid": Annotated[
        list[StrictFloat | StrictInt], Field(min_length=3, max_length=3)
    ],
    "jrte_sentiment.level5.ensemble.members": list[str],
    "jrte_sentiment.error_analysis.splits": JrteSplits,
    # Level 3's buckets: their order is _jrte_level5_problems' (pandas refused it only after Level 2 had trained)
    "jrte_sentiment.error_analysis.length_edges": Annotated[list[StrictFloat | StrictInt], Field(min_length=2)],
    "jrte_sentiment.error_analysis.agreement_edges": Annotated[list[StrictFloat | StrictInt], Field(min_length=2)],
    # which splits a run predicts; the splits the levels read from each run are _jrte_predict_splits_problems'
    "jrte_sentiment.level2.predict_splits": JrteSplits,
    "jrte_sentiment.baseline.predict_splits": JrteSplits,
    "jrte_sentiment.soft_labels.predict_splits": JrteSplits,
    "jrte_sentiment.weighted_soft_labels.predict_splits": JrteSplits,
    "alpaca_sft.measures.bootstrap_resamples": Resamples,
    # the n of the repeated and copied n-gram shares: 0 or less scored a verbatim echo of the prompt as copied 0
    "alpaca_sft.measures.ngram": Annotated[StrictInt, Field(ge=1)],
    "alpaca_sft.measures.kana_share_for_ja": StrictFraction,  # the share of kana from which CJK text is Japanese
    "alpaca_sft.split.eval_size": Annotated[int, Field(ge=MIN_UNITS)],  # the fewest prompts an interval is given for
    "alpaca_sft.split.validation_size": PositiveInt,
    "alpaca_sft.split.group_by": str | None,
    "alpaca_sft.train.checkpoint_every": PositiveInt,
    "alpaca_sft.train.objective": Literal["sft", "preference"],
    "alpaca_sft.train.preference.beta": PositiveFloat,
    "alpaca_sft.train.rejected_ends_turn": StrictBool,
    "alpaca_sft.train.trainer.max_steps": PositiveInt,
    "alpaca_sft.train.trainer.per_device_train_batch_size": PositiveInt,
    "alpaca_sft.train.trainer.learning_rate": PositiveFloat,
    "alpaca_sft.train.trainer.max_length": PositiveInt,
    "alpaca_sft.train.lora.r": PositiveInt,
    "alpaca_sft.generation.max_new_tokens": PositiveInt,
    "alpaca_sft.generation.batch_size": PositiveInt,
}

#: Mappings whose keys are data (labels), not settings: any key is allowed below them.
OPEN: frozenset[str] = frozenset(
    {
        "jrte_sentiment.level1.descriptions",
        "jrte_sentiment.level1.mapping.labels",
        # the loss class's own keyword arguments: bge_finetune.build_loss checks them against its signature
        "bge_finetune.loss.kwargs",
        "ridge_analysis.user_codes.age",
        "ridge_analysis.user_codes.occupation",
    }
)

#: Blocks passed as they are to a library's config class (``module:Class``, a dataclass): a key
#: that ``conf/base`` does not give them is accepted when it is a field of that class, so a new
#: knob needs no code. The class is imported only when such a key appears.
LIBRARY_BLOCKS: dict[str, str] = {
    "bge_finetune.trainer": "sentence_transformers:SentenceTransformerTrainingArguments",
    "alpaca_sft.train.trainer": "trl:SFTConfig",
    "alpaca_sft.train.lora": "peft:LoraConfig",
    "alpaca_sft.train.preference": "trl:DPOConfig",
    "jrte_sentiment.training.trainer": "transformers:TrainingArguments",
    # each run's TrainingArguments on top of training.trainer, and its model-config keys. XLMRobertaConfig is the
    # config class of the default Level 2 model (bundled multilingual-e5-small): what a run's config block is
    # checked against when the configured model is not known (MODEL_CONFIG_BLOCKS says how it is)
    **{
        f"jrte_sentiment.{run}.{block}": cls
        for run in ("level2", "baseline", "soft_labels", "weighted_soft_labels")
        for block, cls in (("trainer", "transformers:TrainingArguments"), ("config", "transformers:XLMRobertaConfig"))
    },
}

#: Blocks passed to a model's ``from_pretrained`` as config keys, and the catalog entry of that model: such a
#: block takes the fields of the configured model's own config class (its ``config.json``'s ``model_type``)
#: where :func:`check_parameters` is told it (``model_config_class``), else LIBRARY_BLOCKS' class.
MODEL_CONFIG_BLOCKS: dict[str, str] = {
    f"jrte_sentiment.{run}.config": "jrte_sentiment.level2_base_model"
    for run in ("level2", "baseline", "soft_labels", "weighted_soft_labels")
}

_ADAPTERS: dict[str, TypeAdapter] = {}
_LIBRARY_FIELDS: dict[str, frozenset[str]] = {}


class ParameterError(ValueError):
    """Parameters that the pipelines would misread: unknown keys, wrong types or values out of range."""


def _adapter(key: str) -> TypeAdapter:
    if key not in _ADAPTERS:
        _ADAPTERS[key] = TypeAdapter(RULES[key])
    return _ADAPTERS[key]


def _walk(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """``(dotted.key, value)`` of every key in nested mappings (lists are values)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, item
            if path not in OPEN:
                yield from _walk(item, path)


def _get(tree: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def library_fields(cls: str) -> frozenset[str]:
    """The field names of the config class ``module:Class`` (a dataclass)."""
    if cls not in _LIBRARY_FIELDS:
        import dataclasses
        import importlib

        module, _, name = cls.partition(":")
        found = getattr(importlib.import_module(module), name)
        _LIBRARY_FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(found) if f.init)
    return _LIBRARY_FIELDS[cls]


def known_keys(base: Mapping[str, Any]) -> set[str]:
    """Every dotted key of the ``conf/base`` parameters."""
    return {path for path, _ in _walk(base, "")}


def _suggest(path: str, known: set[str]) -> str:
    parent, _, leaf = path.rpartition(".")
    siblings = sorted(k.rpartition(".")[2] for k in known if k.rpartition(".")[0] == parent)
    close = difflib.get_close_matches(leaf, siblings, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{parent + '.' if parent else ''}{close[0]}'?"
    anywhere = difflib.get_close_matches(path, sorted(known), n=1, cutoff=0.75)
    if anywhere:
        return f"did you mean '{anywhere[0]}'?"
    if siblings:
        return f"known keys here: {siblings}"
    return "it is not a key of conf/base"


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    return first["msg"][0].lower() + first["msg"][1:]


def check_parameters(
    params: Mapping[str, Any],
    base: Mapping[str, Any],
    blocks: set[str] | None = None,
    source_of: Any = None,
    model_config_class: Callable[[str], str | None] | None = None,
    partitioned: Callable[[str], bool] | None = None,
) -> None:
    """Check merged ``params`` against the ``conf/base`` tree ``base`` and :data:`RULES`.

    Args:
        params: the merged parameters (``conf/base`` + environment + ``--params``).
        base: the parameters of ``conf/base`` alone (their keys are the known keys).
        blocks: top-level blocks to check (those the run uses); None checks all.
        source_of: ``key -> str`` naming where a key's value came from (file or ``--params``).
        model_config_class: ``catalog entry -> "module:Class"``, the config class of the model an entry of
            :data:`MODEL_CONFIG_BLOCKS` names, or None where it cannot be known without a download (a key
            that ``conf/base`` does not give the block is then checked against :data:`LIBRARY_BLOCKS`' class,
            the default model's, and the error says so; a key ``conf/base`` gives that the model's own class
            has no field for is warned about: the model ignores it). Without
            it those blocks are checked against :data:`LIBRARY_BLOCKS`' class (the default model's).
        partitioned: ``catalog entry -> bool``, whether the run loads the entry as partitioned (Dask) data
            (:func:`loads_partitioned`); ``ratings`` so loaded refuses what the partitioned ridge lacks.

    Raises:
        ParameterError: listing every unknown key (with a suggestion), missing key,
            wrong type and value out of range, each with its file.
    """
    known = known_keys(base)
    where = source_of or (lambda key: "the parameters")
    problems: list[str] = []
    classes: dict[str, str | None] = {}

    def class_of(block: str) -> str | None:
        if block not in classes:
            entry = MODEL_CONFIG_BLOCKS.get(block)
            if entry is not None and model_config_class is not None:
                classes[block] = model_config_class(entry)
            else:
                classes[block] = LIBRARY_BLOCKS[block]
        return classes[block]

    for path, value in _walk(params, ""):
        block = path.split(".")[0]
        if blocks is not None and block not in blocks:
            continue
        parent = path.rpartition(".")[0]
        if parent and parent not in known:
            continue  # the parent is already reported (or open)
        if path in known and parent in MODEL_CONFIG_BLOCKS and model_config_class is not None:
            # a key conf/base gives every model (the dropouts): a model whose config class has no such field
            # stores it unused, so the value asked for does nothing; said, not refused (conf/base gives it)
            cls = class_of(parent)
            leaf = path.rpartition(".")[2]
            if cls is not None and leaf not in library_fields(cls):
                logger.warning(
                    "%s (%s): not a field of %s, the config class of the model '%s': the model ignores it",
                    path,
                    where(path),
                    cls.replace(":", "."),
                    MODEL_CONFIG_BLOCKS[parent],
                )
        if path not in known and parent in LIBRARY_BLOCKS:
            cls = class_of(parent)
            unknown_model = cls is None
            if unknown_model:
                # the model is not on this machine yet: its class is not known without a download, so the key
                # is checked against the default model's class (a typo would otherwise go to from_pretrained,
                # which keeps it unused without a word)
                cls = LIBRARY_BLOCKS[parent]
            fields = library_fields(cls)
            leaf = path.rpartition(".")[2]
            if leaf in fields:
                continue  # a field of the library's config class: its value is the library's to check
            close = difflib.get_close_matches(leaf, sorted(fields), n=1, cutoff=0.6)
            hint = f"did you mean '{parent}.{close[0]}'?" if close else "see the class's documentation"
            of = ""
            if unknown_model:
                of = (
                    f" (the default model's: the model of '{MODEL_CONFIG_BLOCKS[parent]}' is not on this machine "
                    "yet, so its own config class is not known; run once without the key to download it)"
                )
            elif parent in MODEL_CONFIG_BLOCKS and model_config_class is not None:
                of = f", the config class of the model '{MODEL_CONFIG_BLOCKS[parent]}'"
            problems.append(
                f"- {path} ({where(path)}): unknown key, not a field of {cls.replace(':', '.')}{of}; {hint}"
            )
            continue
        if path not in known:
            problems.append(f"- {path} ({where(path)}): unknown key; {_suggest(path, known)}")
            continue
        _, default = _get(base, path)
        if isinstance(default, Mapping) and not isinstance(value, Mapping):
            problems.append(f"- {path} ({where(path)}): expected a block of keys {sorted(default)}, found {value!r}")
            continue
        if path in RULES:
            try:
                _adapter(path).validate_python(value)
            except ValidationError as err:
                problems.append(f"- {path} ({where(path)}): {_describe(err)}, found {value!r}")
    for path in sorted(known):
        block = path.split(".")[0]
        if (blocks is not None and block not in blocks) or block not in params:
            continue
        parent = path.rpartition(".")[0]
        present_parent, parent_value = _get(params, parent) if parent else (True, params)
        if present_parent and isinstance(parent_value, Mapping) and not _get(params, path)[0]:
            if any(path.startswith(f"{o}.") for o in OPEN):
                continue
            problems.append(f"- {path}: missing (set to null or removed by {where(parent or path)})")
    if blocks is None or "bge_finetune" in blocks:
        problems += _matryoshka_weights_problems(params, where)
        problems += _bge_recipe_problems(params, where)
    if blocks is None or "alpaca_sft" in blocks:
        problems += _alpaca_problems(params, where)
    if (blocks is None or "ridge_analysis" in blocks) and partitioned is not None:
        problems += _ridge_partitioned_problems(params, where, partitioned)
    if blocks is None or "jrte_sentiment" in blocks:
        problems += _label_smoothing_problems(params, where)
        problems += _level2_problems(params, where)
        problems += _jrte_task_problems(params, where)
        problems += _jrte_level5_problems(params, where)
        problems += _jrte_predict_splits_problems(params, where)
        problems += _jrte_level1_problems(params, where)
    if problems:
        raise ParameterError(
            "Parameter error(s): " + str(len(problems)) + " problem(s), nothing was run:\n" + "\n".join(problems)
        )


def loads_partitioned(catalog: Any, name: str) -> bool:
    """Whether the catalog entry ``name`` loads partitioned data: a kedro-datasets Dask dataset (the ``dask``
    environment's ``ratings``), a subclass of one included; False where there is no such entry."""
    try:
        dataset = catalog[name]
    except Exception:  # noqa: BLE001 - not a catalog entry: nothing partitioned
        return False
    return any(cls.__module__.startswith("kedro_datasets.dask.") for cls in type(dataset).__mro__)


def _ridge_partitioned_problems(params: Mapping[str, Any], where: Any, partitioned: Callable[[str], bool]) -> list[str]:
    """ridge_analysis on partitioned ratings (the dask environment): ``alpha: auto`` is not implemented there,
    and its select_alpha node refused it only after the movies had been embedded and saved."""
    key = "ridge_analysis.alpha"
    if _get(params, key) != (True, "auto") or not partitioned("ratings"):
        return []
    return [
        f"- {key} ({where(key)}): auto is not available on partitioned ratings (this environment's catalog loads "
        "'ratings' as a Dask DataFrame): set ridge_analysis.alpha to a number, e.g. the alpha an in-memory run "
        "with alpha: auto chose (its alpha_selection.json), or run alpha: auto without --env dask"
    ]


def _bge_recipe_problems(params: Mapping[str, Any], where: Any) -> list[str]:
    """bge_finetune: a loss its kwargs do not fit, or a trainer key the recipe sets itself (both failed inside
    the training node, after the base model had been scored)."""
    block = params.get("bge_finetune")
    if not isinstance(block, Mapping):
        return []
    from qeu_kedro.pipelines.bge_finetune.nodes import loss_problem, recipe_arguments

    recipe_keys = set(recipe_arguments({"show_progress_bar": True}, "", None, None))

    problems = []
    loss = block.get("loss")
    if isinstance(loss, Mapping) and "name" in loss:
        problem = loss_problem(dict(loss))
        if problem:
            problems.append(f"- bge_finetune.loss ({where('bge_finetune.loss.kwargs')}): {problem}")
    trainer = block.get("trainer")
    for key in sorted(set(trainer) & recipe_keys) if isinstance(trainer, Mapping) else []:
        path = f"bge_finetune.trainer.{key}"
        problems.append(
            f"- {path} ({where(path)}): the recipe sets it itself (validation.eval_steps for evaluation and "
            "checkpoints, show_progress_bar for the bars); remove it"
        )
    return problems


def _alpaca_problems(params: Mapping[str, Any], where: Any) -> list[str]:
    """alpaca_sft: a ``split.stratify_by`` that is not a column of the examples that are split (refused by
    ``check_split``, the node's own rule; the sizes are :data:`RULES`'), and a ``train.trainer`` or
    ``train.preference`` key the recipe sets itself (a raw ``TypeError`` from TRL's config inside train_lora)."""
    block = params.get("alpaca_sft")
    if not isinstance(block, Mapping):
        return []
    from qeu_kedro.pipelines.alpaca_sft.data import split_size_problems
    from qeu_kedro.pipelines.alpaca_sft.training import recipe_problems

    problems = []
    split = block.get("split")
    for key, problem in split_size_problems(split) if isinstance(split, Mapping) else []:
        path = f"alpaca_sft.split.{key}"
        if path not in RULES:  # the sizes' ranges are RULES' to report, once
            problems.append(f"- {path} ({where(path)}): {problem}")
    train = block.get("train")
    for path, problem in recipe_problems(train) if isinstance(train, Mapping) else []:
        problems.append(f"- {path} ({where(path)}): {problem}")
    return problems


def _matryoshka_weights_problems(params: Mapping[str, Any], where: Any) -> list[str]:
    """One Matryoshka weight per dimension. ``auto`` gives the model's dimension and up to
    :data:`~qeu_kedro.pipelines.bge_finetune.nodes.N_DIMS` - 1 smaller ones (fewer for a model of 256 dimensions or
    less, known only with the model): it takes N_DIMS weights, of which such a model uses the first
    (:func:`~qeu_kedro.pipelines.bge_finetune.nodes.matryoshka_weights`), so the count is checked here, before the
    run, for any model."""
    _, dims = _get(params, "bge_finetune.matryoshka_dims")
    key = "bge_finetune.loss.matryoshka_weights"
    _, weights = _get(params, key)
    if dims == "auto" and isinstance(weights, list):
        from qeu_kedro.pipelines.bge_finetune.nodes import N_DIMS

        if len(weights) == N_DIMS:
            return []
        return [
            f"- {key} ({where(key)}): {len(weights)} weights for bge_finetune.matryoshka_dims auto, which gives the "
            f"model's dimension and up to {N_DIMS - 1} smaller ones; give {N_DIMS} weights (largest dimension first: "
            "a model with fewer auto dimensions uses the first ones), null for all 1, or list the dimensions"
        ]
    if not (isinstance(dims, list) and isinstance(weights, list)):
        return []
    n_dims = len({d for d in dims if isinstance(d, int)})
    if len(weights) == n_dims:
        return []
    return [
        f"- {key} ({where(key)}): {len(weights)} weights for the {n_dims} dimensions of "
        f"bge_finetune.matryoshka_dims {dims}; give one weight per dimension (largest first), or null for all 1"
    ]


def _level2_problems(params: Mapping[str, Any], where: Any) -> list[str]:
    """jrte: Level 2 cannot be switched off. It is the model Level 3 analyses, the dev predictions the
    Level 5 decision rule is tuned on and the reference every Level 4 and 5 comparison is paired with;
    without it the run would fail late, after hours of training the other runs."""
    block = params.get("jrte_sentiment")
    level2 = block.get("level2") if isinstance(block, Mapping) else None
    if not isinstance(level2, Mapping) or level2.get("enabled", True) is not False:
        return []
    key = "jrte_sentiment.level2.enabled"
    return [
        f"- {key} ({where(key)}): Level 2 cannot be switched off: Level 3 analyses its errors and Levels 4 and 5 "
        "are compared with it; switch off the other runs instead (baseline, soft_labels, weighted_soft_labels "
        "and level5.decision_rule / ensemble / seed_ensemble each have enabled: false)"
    ]


def _jrte_task_problems(params: Mapping[str, Any], where: Any) -> list[str]:
    """jrte: a class name that is not text (YAML reads ``name: 0`` as a number) or is empty (the predictions' CSV
    reads it back as missing). ``check_task`` refuses them too, but only at the first node that reads the corpus;
    here they are refused before the run."""
    from qeu_kedro.pipelines.jrte_sentiment.data import blank_names_problem

    _, classes = _get(params, "jrte_sentiment.task.classes")
    if not isinstance(classes, list):
        return []
    key = "jrte_sentiment.task.classes"
    names = [c.get("name") for c in classes if isinstance(c, Mapping)]
    not_str = [n for n in names if not isinstance(n, str)]
    if not_str:
        return [
            f"- {key} ({where(key)}): each class name must be text, found {not_str!r}; quote it: "
            f'name: "{not_str[0]}", not name: {not_str[0]}'
        ]
    blank = blank_names_problem([dict(c) for c in classes if isinstance(c, Mapping)])
    return [f"- {key} ({where(key)}): {blank}"] if blank else []


def _jrte_level1_problems(params: Mapping[str, Any], where: Any) -> list[str]:
    """jrte: a Level 1 mapping the predict node would refuse (the same rule,
    :func:`~qeu_kedro.pipelines.jrte_sentiment.model.mapping_problems`): a label mapped to, or an ``unsure_class``
    that is, no class of ``task.classes`` (conf/base's ``unsure_class: normal`` under a 2-class task), and with the
    ``embedding_zero_shot`` method a label of ``level1.descriptions`` (the labels that model answers) that
    ``mapping.labels`` does not map. Level 1 predicts after the first fine-tuning has run."""
    from qeu_kedro.pipelines.jrte_sentiment.model import mapping_problems

    block = params.get("jrte_sentiment")
    _, classes = _get(block, "task.classes") if isinstance(block, Mapping) else (False, None)
    _, level1 = _get(block, "level1") if isinstance(block, Mapping) else (False, None)
    if (
        not isinstance(classes, list)
        or not isinstance(level1, Mapping)
        or not isinstance(level1.get("mapping"), Mapping)
    ):
        return []
    names = [c.get("name") for c in classes if isinstance(c, Mapping)]
    mapping = level1["mapping"]
    problems = []
    for leaf, text in mapping_problems(dict(mapping), names):
        key = f"jrte_sentiment.level1.mapping.{leaf}"
        problems.append(f"- {key} ({where(key)}): {text}")
    labels, descriptions = mapping.get("labels"), level1.get("descriptions")
    if (
        level1.get("method") == "embedding_zero_shot"
        and isinstance(labels, Mapping)
        and isinstance(descriptions, Mapping)
    ):
        unmapped = [label for label in descriptions if label not in labels]
        if unmapped:
            key = "jrte_sentiment.level1.mapping.labels"
            problems.append(
                f"- {key} ({where(key)}): {unmapped} are labels of jrte_sentiment.level1.descriptions (the labels "
                f"the embedding_zero_shot model answers) that it does not map; map each to a class of the task {names}"
            )
    return problems


def _jrte_level5_problems(params: Mapping[str, Any], where: Any) -> list[str]:
    """jrte: Level 3 and Level 5 settings the nodes would refuse only after Level 2 has trained (the same rules
    as :func:`~qeu_kedro.pipelines.jrte_sentiment.model.tune_class_bias`, ``average_runs``,
    ``train_seed_ensemble`` and ``analyse_errors``). Values of a wrong type are reported by :data:`RULES`."""
    from qeu_kedro.pipelines.jrte_sentiment.model import run_trainer
    from qeu_kedro.pipelines.jrte_sentiment.pipeline import ENSEMBLE_RUNS
    from qeu_kedro.pipelines.jrte_sentiment.report import EDGE_KEYS, edges_problem

    block = params.get("jrte_sentiment")
    if not isinstance(block, Mapping):
        return []
    problems = []

    def problem(key: str, text: str) -> None:
        problems.append(f"- {key} ({where(key)}): {text}")

    _, classes = _get(block, "task.classes")
    names = [c.get("name") for c in classes if isinstance(c, Mapping)] if isinstance(classes, list) else []
    _, rule = _get(block, "level5.decision_rule")
    if isinstance(rule, Mapping) and rule.get("enabled") is not False:
        if names and rule.get("class") not in names:
            problem(
                "jrte_sentiment.level5.decision_rule.class",
                f"{rule.get('class')!r} is not a class of jrte_sentiment.task.classes {names}; name the class "
                "whose logit gets the bias",
            )
        grid = rule.get("grid")
        if isinstance(grid, list) and len(grid) == 3 and all(isinstance(g, int | float) for g in grid):
            start, stop, step = grid
            if not step > 0 or start > stop:
                problem(
                    "jrte_sentiment.level5.decision_rule.grid",
                    f"{grid} is not [start, stop, step] with start <= stop and step > 0; e.g. [-2.0, 2.0, 0.1]",
                )
    _, ensemble = _get(block, "level5.ensemble")
    if isinstance(ensemble, Mapping) and ensemble.get("enabled") is not False:
        members = ensemble.get("members")
        unknown = [m for m in members if m not in ENSEMBLE_RUNS] if isinstance(members, list) else []
        if unknown:
            problem(
                "jrte_sentiment.level5.ensemble.members",
                f"{unknown} are not runs the ensemble is given; choose from {list(ENSEMBLE_RUNS)}",
            )
        elif isinstance(members, list) and len(set(members)) != len(members):
            problem("jrte_sentiment.level5.ensemble.members", f"{members} names a run more than once")
    _, seeds = _get(block, "level5.seed_ensemble")
    if isinstance(seeds, Mapping) and seeds.get("enabled") is not False and isinstance(seeds.get("seeds"), list):
        training, level2 = block.get("training"), block.get("level2")
        if (
            isinstance(training, Mapping)
            and isinstance(training.get("trainer"), Mapping)
            and isinstance(level2, Mapping)
        ):
            own_seed = run_trainer(dict(training), dict(level2)).get("seed")  # the node's own rule for Level 2's seed
        else:
            own_seed = None
        listed = seeds["seeds"]
        if own_seed in listed or len(set(listed)) != len(listed):
            problem(
                "jrte_sentiment.level5.seed_ensemble.seeds",
                f"{listed} must be distinct seeds other than Level 2's own ({own_seed}, training.trainer.seed or "
                "level2.trainer.seed), which is a member already",
            )
    _, splits = _get(block, "error_analysis.splits")
    _, predicted = _get(block, "level2.predict_splits")
    if isinstance(splits, list) and isinstance(predicted, list):
        unpredicted = [s for s in splits if s in ("train", "dev", "test") and s not in predicted]
        if unpredicted:
            problem(
                "jrte_sentiment.error_analysis.splits",
                f"{unpredicted} are not predicted by Level 2 (level2.predict_splits {predicted}), so Level 3 would "
                "have no sentence of them; add them to level2.predict_splits or remove them here",
            )
    for leaf in EDGE_KEYS:
        _, edges = _get(block, f"error_analysis.{leaf}")
        if isinstance(edges, list) and len(edges) >= 2 and all(isinstance(e, int | float) for e in edges):
            text = edges_problem(edges)
            if text:
                problem(f"jrte_sentiment.error_analysis.{leaf}", text)
    return problems


def _jrte_predict_splits_problems(params: Mapping[str, Any], where: Any) -> list[str]:
    """jrte: a run that does not predict a split the levels read from it. Every run is scored on test; Level 5 reads
    dev from Level 2 (the decision rule is tuned on it, every candidate is compared with it there) and from each
    trained candidate (dev picks the one kept). Without them the run trained, then failed in its evaluation or in
    Level 5 with scikit-learn's "Found empty input array", which names no parameter. Unknown splits are
    :data:`RULES`'."""
    from qeu_kedro.pipelines.jrte_sentiment.pipeline import CANDIDATES, RUNS

    block = params.get("jrte_sentiment")
    if not isinstance(block, Mapping):
        return []
    readers = {"test": "every run is scored on test (its metrics, and the levels' comparisons)"}
    dev_readers = {
        "level2": "Level 5 tunes the decision rule on Level 2's dev predictions and compares every candidate with "
        "them there",
        **{run: "Level 5 picks the candidate it keeps by its dev macro-F1" for run in RUNS if run in CANDIDATES},
    }
    problems = []
    for run in RUNS:
        settings = block.get(run)
        if not isinstance(settings, Mapping) or settings.get("enabled") is False:
            continue
        splits = settings.get("predict_splits")
        if not isinstance(splits, list):
            continue
        needed = {**readers, **({"dev": dev_readers[run]} if run in dev_readers else {})}
        for split, reason in needed.items():
            if split not in splits:
                key = f"jrte_sentiment.{run}.predict_splits"
                problems.append(f"- {key} ({where(key)}): {splits} leaves out {split}: {reason}; add {split} to {key}")
    return problems


def _label_smoothing_problems(params: Mapping[str, Any], where: Any) -> list[str]:
    """jrte runs: label smoothing cannot be combined with soft labels or class weights.

    Those switches give the Trainer the pipeline's own loss, and the Trainer then skips its label
    smoother: the smoothing would be configured, reported as a countermeasure, and not trained with.
    """
    block = params.get("jrte_sentiment")
    if not isinstance(block, Mapping) or not isinstance(block.get("training"), Mapping):
        return []
    shared = block["training"].get("trainer") or {}
    problems = []
    for name, run in block.items():
        if not (isinstance(run, Mapping) and "trainer" in run and "soft_labels" in run):
            continue
        own = run.get("trainer") or {}
        smoothing = {**shared, **own}.get("label_smoothing_factor") or 0
        switches = [k for k in ("soft_labels", "class_weights") if run.get(k)]
        if smoothing > 0 and switches:
            key = f"jrte_sentiment.{name}.trainer.label_smoothing_factor"
            if "label_smoothing_factor" not in own:
                key = "jrte_sentiment.training.trainer.label_smoothing_factor"
            problems.append(
                f"- {key} ({where(key)}): {smoothing} has no effect in the run {name!r}, whose "
                f"{' and '.join(switches)} give the Trainer its own loss (the Trainer then skips label smoothing); "
                f"set jrte_sentiment.{name}.trainer.label_smoothing_factor to 0.0, or switch {' and '.join(switches)} off"
            )
    return problems


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    return {path: item for path, item in _walk(value, prefix)}


def _load_yaml_tree(files: list[Path]) -> dict[str, Any]:
    """Keys of parameter files merged key by key, without resolving interpolations."""
    from omegaconf import OmegaConf

    merged = OmegaConf.create({})
    for path in files:
        merged = OmegaConf.merge(merged, OmegaConf.load(path))
    return OmegaConf.to_container(merged, resolve=False)  # type: ignore[return-value]


def parameter_files(conf_source: str | Path, env: str) -> list[Path]:
    """The ``parameters*.yml`` files of one environment folder (sorted)."""
    folder = Path(conf_source) / env
    return sorted(folder.glob("parameters*.yml")) + sorted(folder.glob("parameters*/**/*.yml"))


def base_parameters(conf_source: str | Path, base_env: str = "base") -> dict[str, Any]:
    """The ``conf/base`` parameter tree, uninterpolated (only its keys matter)."""
    return _load_yaml_tree(parameter_files(conf_source, base_env))


def sources(conf_source: str | Path, envs: list[str], runtime_params: Mapping[str, Any] | None) -> Any:
    """``key -> where it was last set``: ``--params``, else the last file among ``envs`` that sets it."""
    keys_by_file = []
    for env in envs:
        for path in parameter_files(conf_source, env):
            try:
                keys_by_file.append((path, set(_flatten(_load_yaml_tree([path])))))
            except Exception:  # noqa: BLE001 - a file the loader read already; naming it is best effort
                continue
    runtime = set(_flatten(_nest(runtime_params or {})))

    def where(key: str) -> str:
        if key in runtime:
            return "from --params"
        for path, keys in reversed(keys_by_file):
            if key in keys:
                return f"in {path}"
        return "in the parameters"

    return where


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}`` (Kedro's --params are dotted)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = str(key).split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[leaf] = value
    return out
