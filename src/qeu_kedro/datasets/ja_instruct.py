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

    Reads and checks the three files and reshapes them into the sheet's columns, each holding what
    the source says (see :mod:`qeu_kedro.ja_instruct`); the rows' categories are decided downstream
    by the ``alpaca_sft`` node ``assign_categories``.

    Args:
        seed_tasks_path: ``seed_tasks_japanese.jsonl``.
        questions_path: Vicuna ``question.jsonl``.
        answers_path: one model's answers (``*_results.jsonl``), joined on ``question_id``.
        on_malformed: ``skip`` (log and leave the line out) or ``error`` for a malformed JSON line.
    """

    def __init__(
        self,
        seed_tasks_path: str,
        questions_path: str,
        answers_path: str,
        on_malformed: str = "skip",
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
        tasks, questions, answers = (read_jsonl(path, self._on_malformed) for path in self._paths.values())
        seed_rows = seed_tasks_to_rows(tasks, self._paths["seed_tasks_path"])
        vicuna_rows = vicuna_to_rows(questions, answers, self._paths["questions_path"], self._paths["answers_path"])
        frame = to_alpaca_frame(seed_rows + vicuna_rows)
        logger.info(
            "ja-instruct: %d seed-task rows + %d Vicuna rows; the sources' categories %s",
            len(seed_rows),
            len(vicuna_rows),
            dict(Counter(frame["category"].fillna("(none)"))),
        )
        return frame

    def save(self, data: Any) -> None:
        raise DatasetError("JaInstructDataset is read-only: raw data is never written.")

    def _exists(self) -> bool:
        return all(path.exists() for path in self._paths.values())
