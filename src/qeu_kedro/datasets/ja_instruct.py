"""Read-only dataset: the Japanese instruction sets as an alpaca-shaped table."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from qeu_kedro.ja_instruct import read_jsonl, seed_tasks_to_rows, to_alpaca_frame, vicuna_to_rows

logger = logging.getLogger(__name__)


class JaInstructDataset(AbstractDataset):
    """Japanese Self-Instruct seed tasks + Japanese Vicuna questions/answers, as alpaca rows.

    See :mod:`qeu_kedro.ja_instruct` for how each column is filled.

    Args:
        seed_tasks_path: ``seed_tasks_japanese.jsonl``.
        questions_path: Vicuna ``question.jsonl``.
        answers_path: one model's answers (``*_results.jsonl``), joined on ``question_id``.
        on_malformed: ``skip`` (log and leave the line out) or ``error`` for a malformed JSON line.
        seed_category_patterns: ordered ``{pattern, category}`` regexes on the seed task name.
        vicuna_categories: Vicuna category -> alpaca category.
        simple_categories: categories whose rows are ``simple``.
        simple_max_output_chars: a reference output this short marks the row ``simple``.
    """

    def __init__(  # noqa: PLR0913
        self,
        seed_tasks_path: str,
        questions_path: str,
        answers_path: str,
        on_malformed: str = "skip",
        seed_category_patterns: list[dict[str, str]] | None = None,
        vicuna_categories: dict[str, str] | None = None,
        simple_categories: list[str] | None = None,
        simple_max_output_chars: int = 20,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._paths = {
            "seed_tasks_path": Path(seed_tasks_path),
            "questions_path": Path(questions_path),
            "answers_path": Path(answers_path),
        }
        if on_malformed not in {"skip", "error"}:
            raise DatasetError(f"JaInstructDataset: on_malformed must be 'skip' or 'error', not {on_malformed!r}.")
        self._on_malformed = on_malformed
        self._patterns = list(seed_category_patterns or [])
        self._vicuna_categories = dict(vicuna_categories or {})
        self._simple_categories = list(simple_categories or [])
        self._simple_max_output_chars = simple_max_output_chars
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {**{k: str(v) for k, v in self._paths.items()}, "on_malformed": self._on_malformed}

    def load(self) -> pd.DataFrame:
        for path in self._paths.values():
            if not path.exists():
                raise DatasetError(
                    f"{path} does not exist. The ja_instruct environment reads the real data from "
                    "../shared/data/ja-instruct (or QEU_SHARED_DATA); see the README."
                )
        tasks = read_jsonl(self._paths["seed_tasks_path"], self._on_malformed)
        questions = read_jsonl(self._paths["questions_path"], self._on_malformed)
        answers = read_jsonl(self._paths["answers_path"], self._on_malformed)
        seed_rows = seed_tasks_to_rows(tasks, self._patterns, self._simple_categories, self._simple_max_output_chars)
        vicuna_rows = vicuna_to_rows(
            questions, answers, self._vicuna_categories, self._simple_categories, self._simple_max_output_chars
        )
        frame = to_alpaca_frame(seed_rows + vicuna_rows)
        logger.info(
            "ja-instruct: %d seed-task rows + %d Vicuna rows; categories %s; uniqueness %s",
            len(seed_rows),
            len(vicuna_rows),
            dict(Counter(frame["category"])),
            dict(Counter(frame["uniqueness"])),
        )
        return frame

    def save(self, data: Any) -> None:
        raise DatasetError("JaInstructDataset is read-only: raw data is never written.")

    def _exists(self) -> bool:
        return all(path.exists() for path in self._paths.values())
