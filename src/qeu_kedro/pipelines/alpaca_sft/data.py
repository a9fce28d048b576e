"""The sheet's data for ``alpaca_sft``: check the raw sheet, complete its categories, apply the reasoning
rules, write the JSON records, and turn them into prompts split into train / validation / held-out."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from qeu_kedro.stats import MIN_UNITS
from qeu_kedro.validation import Column, RawDataError, check_table, fail

logger = logging.getLogger(__name__)

DATASET = "alpaca_raw"
TEXT_COLUMNS = ("category", "field", "input", "instruction", "language", "output", "reasoning", "uniqueness")
#: The record columns every example keeps (:func:`make_examples`; ``split.group_by``'s column too): the table
#: :func:`split_examples` splits, so the only columns ``split.stratify_by`` can name.
EXAMPLE_COLUMNS = ("NO", "language", "category", "uniqueness")


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
      ``simple_categories``, else ``complex``. Never from the reference ``output``: the reasoning
      rules turn uniqueness into prompt text, and the prompt must not carry what the answer is like
      (a rule on the output's length put a sentence into the prompts of the short answers).

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
    simple = out["category"].isin(category_rules["simple_categories"])
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


def make_examples(
    records: list[dict[str, Any]], prompt: Mapping[str, Any], group_by: str | None = None
) -> pd.DataFrame:
    """One supervised example per record: ``prompt`` (formatted), ``completion`` (the reference output),
    with the record's NO, language, category, uniqueness and its ``group_by`` column (what the split keeps
    together: :func:`split_examples`).

    Raises:
        RawDataError: a section of ``prompt.sections`` names a column the records do not have.
    """
    columns = list(records[0]) if records else []
    for i, section in enumerate(prompt["sections"]):
        if section["column"] not in columns:
            fail(
                "parameters alpaca_sft.prompt",
                "sections",
                None,
                f"section {i} ({section.get('header')!r}) reads the column {section['column']!r}, which the records "
                f"do not have (columns: {columns})",
                "Fix the column's name in alpaca_sft.prompt.sections (parameters_alpaca_sft.yml).",
            )
    frame = pd.DataFrame(records)
    frame["prompt"] = [format_prompt(r, prompt) for r in records]
    frame["completion"] = frame["output"].astype(str).str.strip()
    keep = list(EXAMPLE_COLUMNS)
    if group_by and group_by not in keep:
        keep.append(group_by)
    return frame[[*keep, "prompt", "completion"]]


def stratify_columns(group_by: str | None) -> list[str]:
    """The columns ``split.stratify_by`` may name: those the examples keep (:data:`EXAMPLE_COLUMNS` and ``group_by``)."""
    return [*EXAMPLE_COLUMNS, *([group_by] if group_by and group_by not in EXAMPLE_COLUMNS else [])]


def split_size_problems(split: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(key, problem)`` for each ``split`` setting no sheet could split by, whatever its rows: a ``stratify_by``
    that the examples do not keep, an ``eval_size`` below the bootstrap's minimum, a ``validation_size`` below 1.
    The parameter check (:mod:`qeu_kedro.parameters`) and :func:`check_split` both refuse them."""
    problems = []
    stratify_by, group_by = split.get("stratify_by"), split.get("group_by")
    if stratify_by is not None and stratify_by not in stratify_columns(group_by):
        problems.append(
            (
                "stratify_by",
                f"{stratify_by!r} is not a column of the examples that are split (they keep "
                f"{stratify_columns(group_by)}, the record's other columns are dropped); name one of them, or null",
            )
        )
    eval_size, validation_size = split.get("eval_size"), split.get("validation_size")
    if isinstance(eval_size, int) and eval_size < MIN_UNITS:
        problems.append(
            (
                "eval_size",
                f"{eval_size} held-out prompts are too few: the before/after interval needs at least {MIN_UNITS}",
            )
        )
    if isinstance(validation_size, int) and validation_size < 1:
        problems.append(
            (
                "validation_size",
                f"{validation_size} validation prompts: the checkpoint is chosen on their chrF, so at least 1 is needed",
            )
        )
    return problems


def _check_split_parameters(split: Mapping[str, Any]) -> None:
    """Refuse, naming the parameter, what :func:`split_size_problems` finds."""
    for key, problem in split_size_problems(split):
        fail(
            "parameters alpaca_sft.split",
            key,
            None,
            f"alpaca_sft.split.{key}: {problem}",
            "Set it in parameters_alpaca_sft.yml (or with --params); nothing was written.",
        )


def _check_carve(frame: pd.DataFrame, size: int, key: str, stratify_by: str | None) -> None:
    """Refuse, in words, a split the sheet is too small for (scikit-learn's own error names neither)."""
    left = "the sheet's rows" if key == "eval_size" else "the rows left after the held-out prompts"
    hint = f"Lower alpaca_sft.split.{key}, or give the sheet more rows."
    if size >= len(frame):
        fail(DATASET, None, None, f"alpaca_sft.split.{key} = {size} needs more than {left} ({len(frame)})", hint)
    if not stratify_by:
        return
    counts = frame[stratify_by].value_counts()
    if (counts < 2).any():
        value = counts[counts < 2].index[0]
        fail(
            DATASET,
            stratify_by,
            None,
            f"{left} have one row with {stratify_by} {value!r}: a split stratified by it needs at least 2",
            "Give it another row, or set alpaca_sft.split.stratify_by: null.",
        )
    if size < len(counts) or len(frame) - size < len(counts):
        fail(
            DATASET,
            stratify_by,
            None,
            f"alpaca_sft.split.{key} = {size} of {len(frame)} rows cannot hold each of the {len(counts)} values of "
            f"{stratify_by} on both sides of the split",
            f"Set it to at least {len(counts)} (and leave as many), or set alpaca_sft.split.stratify_by: null.",
        )


def _check_duplicates(frame: pd.DataFrame) -> None:
    """Refuse two rows with the same instruction and input: one prompt would be trained on and held out."""
    key = frame["instruction"].astype(str).str.strip() + "\x00" + frame["input"].astype(str).str.strip()
    repeated = key.duplicated()
    if repeated.any():
        row = int(repeated.to_numpy().argmax())
        first = int((key == key.iloc[row]).to_numpy().argmax())
        fail(
            DATASET,
            "instruction",
            row,
            f"NO {frame['NO'].iloc[row]} has the same instruction and input as NO {frame['NO'].iloc[first]} "
            f"(row {first}): the same prompt could be trained on and held out",
            "Remove one of the two rows, or merge their reference outputs into one.",
        )


def _group_order(frame: pd.DataFrame, split: Mapping[str, Any]) -> list[Any]:
    """The groups of ``split.group_by`` in the order they are drawn: shuffled by ``split.seed``; with
    ``stratify_by``, groups of each mix of its values taken in turn (round robin) so that every mix is drawn."""
    group_by, stratify_by = split["group_by"], split["stratify_by"]
    keys = sorted(frame[group_by].unique().tolist())
    order = [keys[i] for i in np.random.default_rng(split["seed"]).permutation(len(keys))]
    if not stratify_by:
        return order
    mix = frame.groupby(group_by)[stratify_by].agg(lambda v: tuple(sorted(set(v))))
    queues: dict[tuple, list[Any]] = {}
    for key in order:
        queues.setdefault(mix[key], []).append(key)
    turns = [q for q in queues.values()]
    return [q[i] for i in range(max(map(len, turns))) for q in turns if i < len(q)]


def _groups_making(order: list[Any], sizes: pd.Series, size: int) -> list[Any] | None:
    """Groups whose rows add up to exactly ``size``, or None when no choice of whole groups does.

    A subset-sum over the groups in ``order`` that keeps, for every total, the first way found: the
    choice is the seeded order's (with groups of one size, the first groups of the order), and groups
    of unequal sizes make the size whenever some choice of them can.
    """
    ways: dict[int, list[Any]] = {0: []}
    for group in order:
        for total, chosen in list(ways.items()):
            new = total + int(sizes[group])
            if new <= size and new not in ways:
                ways[new] = [*chosen, group]
        if size in ways:
            return ways[size]
    return None


def _carve_groups(frame: pd.DataFrame, size: int, key: str, split: Mapping[str, Any]) -> pd.Series:
    """Rows of whole ``split.group_by`` groups making exactly ``size`` rows (a mask), drawn in :func:`_group_order`."""
    group_by, stratify_by = split["group_by"], split["stratify_by"]
    left = "the sheet's rows" if key == "eval_size" else "the rows left after the held-out prompts"
    if size >= len(frame):
        fail(
            DATASET,
            None,
            None,
            f"alpaca_sft.split.{key} = {size} needs more than {left} ({len(frame)})",
            f"Lower alpaca_sft.split.{key}, or give the sheet more rows.",
        )
    sizes = frame[group_by].value_counts()
    taken = _groups_making(_group_order(frame, split), sizes, size)
    if taken is None:
        fail(
            DATASET,
            group_by,
            None,
            f"alpaca_sft.split.{key} = {size} rows cannot be made of whole groups of {group_by} "
            f"(groups of {sorted(set(sizes.tolist()))} rows; the split keeps a group's rows together)",
            f"Set alpaca_sft.split.{key} to a number of rows whole groups make (with groups of one size, a multiple "
            "of it), or set alpaca_sft.split.group_by: null.",
        )
    part = frame[group_by].isin(taken)
    if stratify_by:
        for side, rows in (("held out" if key == "eval_size" else "carved", frame[part]), ("left", frame[~part])):
            missing = sorted(set(frame[stratify_by]) - set(rows[stratify_by]))
            if missing:
                fail(
                    DATASET,
                    stratify_by,
                    None,
                    f"alpaca_sft.split.{key} = {size}: the rows {side} in whole groups of {group_by} have no "
                    f"{stratify_by} {missing}",
                    f"Change alpaca_sft.split.{key}, or set alpaca_sft.split.stratify_by: null.",
                )
    return part


def _split(frame: pd.DataFrame, split: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(train, validation, held_out)`` of ``frame``, each sorted by NO (see :func:`split_examples`)."""
    from sklearn.model_selection import train_test_split

    _check_split_parameters(split)
    group_by = split.get("group_by")
    if group_by is not None:
        if group_by not in frame.columns:
            fail(
                "parameters alpaca_sft.split",
                "group_by",
                None,
                f"{group_by!r} is not a column of the sheet (columns: {list(frame.columns)})",
                "Name the column that says which rows are one task (the sample's seq), or set it to null.",
            )
        blank = frame[group_by].isna()
        if blank.any():
            row = int(blank.to_numpy().argmax())
            fail(
                DATASET,
                group_by,
                row,
                f"the split groups rows by {group_by} and NO {frame['NO'].iloc[row]} has none",
                f"Give every row its {group_by}, or set alpaca_sft.split.group_by: null.",
            )

    def carve(rows: pd.DataFrame, key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        size = split[key]
        if group_by is not None:
            part = _carve_groups(rows, size, key, split)
            rest, carved = rows[~part], rows[part]
        else:
            _check_carve(rows, size, key, split["stratify_by"])
            stratify = rows[split["stratify_by"]] if split["stratify_by"] else None
            rest, carved = train_test_split(rows, test_size=size, random_state=split["seed"], stratify=stratify)
        return rest.sort_values("NO").reset_index(drop=True), carved.sort_values("NO").reset_index(drop=True)

    rest, held_out = carve(frame, "eval_size")
    train, validation = carve(rest, "validation_size")
    return train, validation, held_out


def check_split(table: pd.DataFrame, split: Mapping[str, Any]) -> pd.DataFrame:
    """The table unchanged, once the split :func:`split_examples` will make of it is known to be possible:
    run before the records are written, so that a split the sheet cannot give stops the run before any
    output is saved. Also refuses two rows with the same instruction and input.

    Raises:
        RawDataError: as :func:`split_examples`.
    """
    _check_duplicates(table)
    _split(table, split)
    return table


def split_examples(examples: pd.DataFrame, split: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Hold out ``eval_size`` examples for the before/after evaluation, then carve
    ``validation_size`` examples from the rest to choose the checkpoint on. The held-out prompts never
    influence training or the choice.

    With ``group_by`` (a column, the sample's ``seq``: one task asked in ja, en and zh) a group's rows
    stay together: whole groups are drawn in an order shuffled by ``seed`` until they make exactly the
    size asked (an error when whole groups cannot), so no held-out task has a translation in training
    or validation; with ``stratify_by`` as well, groups of each mix of its values are drawn in turn and
    every value must be on both sides. Without ``group_by`` single rows are split (scikit-learn's
    ``train_test_split``, stratified by ``stratify_by`` when set).

    Returns:
        ``(train, validation, held_out)``, each sorted by NO.

    Raises:
        RawDataError: the sheet is too small for the sizes, whole groups cannot make them, a stratum is
            missing on a side, or ``group_by`` names no column or a row has no group.
    """
    train, validation, held_out = _split(examples, split)
    logger.info(
        "Split: %d training examples, %d validation prompts (checkpoint choice), %d held-out prompts%s",
        len(train),
        len(validation),
        len(held_out),
        f" (whole groups of {split['group_by']})" if split.get("group_by") else "",
    )
    return train, validation, held_out
