"""Japanese instruction sets mapped into the alpaca sheet's columns.

Two sources (see ../shared/data/ja-instruct/SOURCE.txt):

- Self-Instruct seed tasks in Japanese (``seed_tasks_japanese.jsonl``: id, name, instruction,
  instances[{input, output}], is_classification). One row per instance.
- Japanese Vicuna QA questions (``question.jsonl``: question_id, category, turns) joined on
  ``question_id`` with one model's answers (``choices[0].turns[0]``). One row per question.

How the columns are filled (all knobs are arguments, set in ``conf/ja_instruct``):

- ``language``: ``"ja"`` for every row (both sets are Japanese);
- ``field``: the seed task's ``name`` slug, or the Vicuna category;
- ``category``: seed tasks: ``classification`` when ``is_classification``, else the first
  regex of ``seed_category_patterns`` that matches the task name, else ``closed_qa`` when the
  task has an input and ``open_qa`` when not (Dolly's definitions); Vicuna: ``vicuna_categories``;
- ``uniqueness``: ``simple`` (one right answer) when the category is in ``simple_categories``
  or the reference output is at most ``simple_max_output_chars`` characters long, else ``complex``;
- ``reasoning``: empty (the rules add to it); ``seq``: the instance's index within its task
  (Vicuna: the turn, always 1); ``NO``: running number from 1.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

ALPACA_COLUMNS = [
    "NO",
    "category",
    "field",
    "input",
    "instruction",
    "language",
    "output",
    "reasoning",
    "seq",
    "uniqueness",
]


class MalformedLineError(ValueError):
    """A line of a JSON-lines file is not valid JSON (and the reader was told to stop)."""


def read_jsonl(path: Path, on_malformed: str = "skip") -> list[dict[str, Any]]:
    """Read a JSON-lines file; a malformed line is skipped with a warning or raises.

    Args:
        path: the file.
        on_malformed: ``"skip"`` (log a warning naming the line and go on) or ``"error"``.

    Raises:
        MalformedLineError: on a malformed line when ``on_malformed="error"``.
    """
    if on_malformed not in {"skip", "error"}:
        raise ValueError(f"on_malformed must be 'skip' or 'error', not {on_malformed!r}")
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                message = f"{path}, line {number}: malformed JSON ({exc.msg} at column {exc.colno}): {line[:80]!r}..."
                if on_malformed == "error":
                    raise MalformedLineError(
                        message + " Fix the line, or set on_malformed: skip in the catalog to leave it out."
                    ) from exc
                logger.warning("Skipped %s", message)
    return records


def _category(name: str, has_input: bool, is_classification: bool, patterns: Sequence[Mapping[str, str]]) -> str:
    if is_classification:
        return "classification"
    for rule in patterns:
        if re.search(rule["pattern"], name):
            return rule["category"]
    return "closed_qa" if has_input else "open_qa"


def _uniqueness(category: str, output: str, simple_categories: Sequence[str], simple_max_output_chars: int) -> str:
    return "simple" if category in simple_categories or len(output.strip()) <= simple_max_output_chars else "complex"


def seed_tasks_to_rows(
    tasks: Sequence[Mapping[str, Any]],
    seed_category_patterns: Sequence[Mapping[str, str]],
    simple_categories: Sequence[str],
    simple_max_output_chars: int,
) -> list[dict[str, Any]]:
    """One alpaca row (without ``NO``) per instance of each seed task."""
    rows = []
    for task in tasks:
        for seq, instance in enumerate(task["instances"], start=1):
            inp = (instance.get("input") or "").strip()
            output = instance["output"]
            category = _category(task["name"], bool(inp), bool(task.get("is_classification")), seed_category_patterns)
            rows.append(
                {
                    "category": category,
                    "field": task["name"],
                    "input": inp,
                    "instruction": task["instruction"],
                    "language": "ja",
                    "output": output,
                    "reasoning": "",
                    "seq": seq,
                    "uniqueness": _uniqueness(category, output, simple_categories, simple_max_output_chars),
                }
            )
    return rows


def vicuna_to_rows(
    questions: Sequence[Mapping[str, Any]],
    answers: Sequence[Mapping[str, Any]],
    vicuna_categories: Mapping[str, str],
    simple_categories: Sequence[str],
    simple_max_output_chars: int,
) -> list[dict[str, Any]]:
    """One alpaca row (without ``NO``) per Vicuna question that has an answer."""
    by_id = {a["question_id"]: a["choices"][0]["turns"][0].strip() for a in answers}
    rows = []
    for q in questions:
        if q["question_id"] not in by_id:
            logger.warning("Vicuna question %s has no answer: left out", q["question_id"])
            continue
        if q["category"] not in vicuna_categories:
            raise ValueError(
                f"Vicuna category {q['category']!r} (question {q['question_id']}) has no entry in vicuna_categories "
                f"{sorted(vicuna_categories)}: add one in conf/ja_instruct/catalog_alpaca_sft.yml."
            )
        category = vicuna_categories[q["category"]]
        output = by_id[q["question_id"]]
        rows.append(
            {
                "category": category,
                "field": q["category"],
                "input": "",
                "instruction": q["turns"][0].strip(),
                "language": "ja",
                "output": output,
                "reasoning": "",
                "seq": 1,
                "uniqueness": _uniqueness(category, output, simple_categories, simple_max_output_chars),
            }
        )
    return rows


def to_alpaca_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The rows as a table with the sheet's columns, numbered ``NO`` = 1, 2, ..."""
    frame = pd.DataFrame(list(rows), columns=[c for c in ALPACA_COLUMNS if c != "NO"])
    frame.insert(0, "NO", range(1, len(frame) + 1))
    return frame[ALPACA_COLUMNS]
