"""Japanese instruction sets read into the alpaca sheet's columns, checked on the way in.

Two sources (see ../shared/data/ja-instruct/SOURCE.txt):

- Self-Instruct seed tasks in Japanese (``seed_tasks_japanese.jsonl``: id, name, instruction,
  instances[{input, output}], is_classification). One row per instance.
- Japanese Vicuna QA questions (``question.jsonl``: question_id, category, turns) joined on
  ``question_id`` with one model's answers (``choices[0].turns[0]``). One row per question.

The reader only reshapes: each column holds what the source says, and deciding a row's
category and uniqueness is left to the ``alpaca_sft`` node ``assign_categories`` (its rules
are parameters). So:

- ``category``: the source's own word for the kind of task: the Vicuna category (``writing``,
  ``fermi``, ...), ``classification`` for a seed task flagged ``is_classification``, else blank
  (the seed tasks have no category);
- ``uniqueness``: blank;
- ``field``: the seed task's ``name`` slug, or the Vicuna category;
- ``language``: ``"ja"`` for every row (both sets are Japanese);
- ``reasoning``: empty (the rules add to it); ``seq``: the instance's index within its task
  (Vicuna: the turn, always 1); ``NO``: running number from 1.

A record without the fields the rows need raises :class:`~qeu_kedro.validation.RawDataError`
naming the file, the field and the line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from qeu_kedro.validation import fail

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
HINT = "Fix the record (or remove its line); the files are read as their sources publish them (SOURCE.txt)."

Lines = Sequence[tuple[int, Any]]  # (1-based line number, parsed JSON value)


class MalformedLineError(ValueError):
    """A line of a JSON-lines file is not valid JSON (and the reader was told to stop)."""


#: more than this share of a file's (non-blank) lines malformed is refused even with ``on_malformed: skip``: skip
#: is for a source's stray bad line (ja-instruct's seed tasks have one of 175), not a file in another format
MAX_MALFORMED_SHARE = 0.5


def read_jsonl(path: Path, on_malformed: str = "skip") -> list[tuple[int, Any]]:
    """Read a JSON-lines file as ``(line number, value)`` pairs; a malformed line is skipped with a warning or raises.

    A line that is not UTF-8 text is malformed too (named by its line, as a line that is no JSON). Lines are
    those an editor shows (``\\n``, ``\\r\\n`` or ``\\r``), numbered from 1.

    Args:
        path: the file.
        on_malformed: ``"skip"`` (log a warning naming the line and go on) or ``"error"``.

    Raises:
        MalformedLineError: on a malformed line when ``on_malformed="error"``.
        RawDataError: a file with no record (empty, or not one line of JSON: a pretty-printed JSON file), or
            with more than half of its lines malformed (:data:`MAX_MALFORMED_SHARE`), even with ``skip``.
    """
    if on_malformed not in {"skip", "error"}:
        raise ValueError(f"on_malformed must be 'skip' or 'error', not {on_malformed!r}")
    records = []
    malformed: list[int] = []
    # read as bytes and decoded line by line, so a byte that is no UTF-8 is one malformed line, named
    for number, raw in enumerate(Path(path).read_bytes().splitlines(), start=1):
        shown = raw[:80].decode("utf-8", errors="replace")
        try:
            # utf-8-sig: a byte-order mark (some editors write one) would make line 1 malformed JSON
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            if not line.strip():
                continue
            records.append((number, json.loads(line)))
        except UnicodeDecodeError as exc:
            problem = f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line)"
        except json.JSONDecodeError as exc:
            problem = f"malformed JSON ({exc.msg} at column {exc.colno})"
        else:
            continue
        message = f"{path}, line {number}: {problem}: {shown!r}..."
        if on_malformed == "error":
            raise MalformedLineError(
                message + " Fix the line, or set on_malformed: skip in the catalog to leave it out."
            ) from None
        logger.warning("Skipped %s", message)
        malformed.append(number)
    if not records:
        fail(
            str(path),
            None,
            None,
            "the file holds no JSON record"
            + (
                f" (all {len(malformed)} of its non-blank lines are malformed, from line {malformed[0]})"
                if malformed
                else ""
            ),
            "Point the catalog at a JSON-lines file: one JSON object per line (a JSON file printed over several "
            "lines, or an empty file, is not one).",
        )
    if malformed and len(malformed) > MAX_MALFORMED_SHARE * (len(malformed) + len(records)):
        fail(
            str(path),
            None,
            None,
            f"{len(malformed)} of its {len(malformed) + len(records)} lines are malformed (lines "
            f"{', '.join(map(str, malformed[:5]))}{' ...' if len(malformed) > 5 else ''}): on_malformed: skip "
            f"leaves out a stray bad line, not more than {MAX_MALFORMED_SHARE:.0%} of a file",
            "Check that the file is JSON lines in UTF-8 (one JSON object per line), and fix or remove the bad lines.",
        )
    return records


# ---------------------------------------------------------------- checks of one record's fields
def _shown(value: Any) -> str:
    return "nothing (missing or null)" if value is None else repr(value)[:60]


def _fail(where: tuple[Path, int], column: str | None, problem: str) -> None:
    fail(str(where[0]), column, None, problem, HINT, line=where[1])


def _object(value: Any, where: tuple[Path, int], column: str | None = None) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        _fail(where, column, f"expected a JSON object, found {_shown(value)}")
    return value


def _items(value: Any, where: tuple[Path, int], column: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        _fail(where, column, f"expected a non-empty list, found {_shown(value)}")
    return value


def _text(value: Any, where: tuple[Path, int], column: str, blank_ok: bool = False) -> str:
    if blank_ok and value is None:
        return ""
    if not isinstance(value, str) or not (blank_ok or value.strip()):
        _fail(where, column, f"expected {'text' if blank_ok else 'non-blank text'}, found {_shown(value)}")
    return value


def _question_id(value: Any, where: tuple[Path, int], first_line: Mapping[int, int]) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(where, "question_id", f"expected a whole number, found {_shown(value)}")
    if value in first_line:
        _fail(where, "question_id", f"duplicate id {value} (first seen on line {first_line[value]})")
    return value


# ---------------------------------------------------------------- the two sources as rows
def _row(
    category: str | None, field: str, inp: str, instruction: str, output: str, seq: int, where: tuple[Path, int]
) -> dict[str, Any]:
    return {
        "source": f"{where[0].name}, line {where[1]}",
        "category": category,
        "field": field,
        "input": inp,
        "instruction": instruction,
        "language": "ja",
        "output": output,
        "reasoning": "",
        "seq": seq,
        "uniqueness": None,
    }


def seed_tasks_to_rows(tasks: Lines, path: Path) -> list[dict[str, Any]]:
    """One alpaca row (without ``NO``) per instance of each seed task; ``path`` names the file in errors."""
    rows = []
    for line, value in tasks:
        where = (path, line)
        task = _object(value, where)
        name = _text(task.get("name"), where, "name")
        instruction = _text(task.get("instruction"), where, "instruction")
        flagged = task.get("is_classification", False)
        if not isinstance(flagged, bool):
            _fail(where, "is_classification", f"expected true or false, found {_shown(flagged)}")
        for seq, item in enumerate(_items(task.get("instances"), where, "instances"), start=1):
            column = f"instances[{seq - 1}]"
            instance = _object(item, where, column)
            inp = _text(instance.get("input"), where, f"{column}.input", blank_ok=True).strip()
            output = _text(instance.get("output"), where, f"{column}.output")
            rows.append(_row("classification" if flagged else None, name, inp, instruction, output, seq, where))
    return rows


def vicuna_to_rows(questions: Lines, answers: Lines, questions_path: Path, answers_path: Path) -> list[dict[str, Any]]:
    """One alpaca row (without ``NO``) per Vicuna question that has an answer (joined on ``question_id``).

    A question without an answer is left out with a warning, and so is an answer to no question; when
    questions there are but not one has an answer (the answers file is of another question set), that is
    an error: a few missing answers are a source's gaps, none at all is the wrong file.

    Raises:
        RawDataError: a bad record (naming file, field and line), or no question has an answer (naming both files).
    """
    answer_line: dict[int, int] = {}
    by_id = {}
    for line, value in answers:
        where = (answers_path, line)
        answer = _object(value, where)
        qid = _question_id(answer.get("question_id"), where, answer_line)
        choice = _object(_items(answer.get("choices"), where, "choices")[0], where, "choices[0]")
        turns = _items(choice.get("turns"), where, "choices[0].turns")
        by_id[qid] = _text(turns[0], where, "choices[0].turns[0]").strip()
        answer_line[qid] = line
    question_line: dict[int, int] = {}
    rows = []
    for line, value in questions:
        where = (questions_path, line)
        question = _object(value, where)
        qid = _question_id(question.get("question_id"), where, question_line)
        question_line[qid] = line
        category = _text(question.get("category"), where, "category")
        instruction = _text(_items(question.get("turns"), where, "turns")[0], where, "turns[0]").strip()
        if qid not in by_id:
            logger.warning("Vicuna question %s (%s, line %d) has no answer: left out", qid, questions_path, line)
            continue
        rows.append(_row(category, category, "", instruction, by_id[qid], 1, where))
    orphans = sorted(set(by_id) - set(question_line))
    if orphans:
        logger.warning(
            "%d answers of %s answer no question of %s: left out (question_id %s)",
            len(orphans),
            answers_path,
            questions_path,
            orphans[:20],
        )
    if question_line and not rows:
        fail(
            str(answers_path),
            "question_id",
            None,
            f"not one of the {len(question_line)} questions of {questions_path} has an answer here "
            f"({len(by_id)} answers, no question_id in common)",
            "Point answers_path at the answers to these questions (a *_results.jsonl of the same Vicuna set).",
        )
    return rows


def to_alpaca_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The rows as a table with the sheet's columns, numbered ``NO`` = 1, 2, ...

    ``attrs["sources"]`` holds each row's file and line (``seed_tasks_japanese.jsonl, line 12``), so a
    check of the table (``check_alpaca``) can say where a row it refuses came from.
    """
    frame = pd.DataFrame(list(rows), columns=[c for c in ALPACA_COLUMNS if c != "NO"])
    frame.insert(0, "NO", range(1, len(frame) + 1))
    frame = frame[ALPACA_COLUMNS]
    frame.attrs["sources"] = [row.get("source") for row in rows]
    return frame
