"""The Japanese instruction sets mapped into the sheet's columns."""

from __future__ import annotations

import json
import logging

import pytest
from kedro.io import DatasetError

from qeu_kedro.datasets.ja_instruct import JaInstructDataset
from qeu_kedro.ja_instruct import (
    ALPACA_COLUMNS,
    MalformedLineError,
    read_jsonl,
    seed_tasks_to_rows,
    to_alpaca_frame,
    vicuna_to_rows,
)

PATTERNS = [{"pattern": "poem|story", "category": "creative"}, {"pattern": "math", "category": "math"}]


def _task(name, output, inp="", classification=False):
    return {
        "id": name,
        "name": name,
        "instruction": f"{name}をしてください。",
        "instances": [{"input": inp, "output": output}],
        "is_classification": classification,
    }


def test_malformed_line_is_skipped_with_a_warning_or_raises(tmp_path, caplog):
    path = tmp_path / "tasks.jsonl"
    lines = [json.dumps({"a": 1}), '{"a": 先頭の引用符がない"}', json.dumps({"a": 3}, ensure_ascii=False)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert read_jsonl(path, "skip") == [{"a": 1}, {"a": 3}]
    assert "line 2: malformed JSON" in caplog.text
    with pytest.raises(MalformedLineError, match=r"line 2: malformed JSON.*on_malformed: skip"):
        read_jsonl(path, "error")


def test_seed_task_columns():
    tasks = [
        _task("spring_poem", "桜が舞う"),  # creative by name, short output -> simple
        _task("long_story", "むかしむかし" * 10),  # creative, complex
        _task("fun_math", "答えは" + "とても長い説明" * 5),  # math is always simple
        _task("sentiment", "肯定的", classification=True),  # classification wins
        _task("explain", "説明" * 20, inp="本文"),  # no pattern, has input -> closed_qa
        _task("advice", "助言" * 20),  # no pattern, no input -> open_qa
    ]
    rows = seed_tasks_to_rows(tasks, PATTERNS, ["classification", "math"], 20)
    got = [(r["field"], r["category"], r["uniqueness"]) for r in rows]
    assert got == [
        ("spring_poem", "creative", "simple"),
        ("long_story", "creative", "complex"),
        ("fun_math", "math", "simple"),
        ("sentiment", "classification", "simple"),
        ("explain", "closed_qa", "complex"),
        ("advice", "open_qa", "complex"),
    ]
    assert {r["language"] for r in rows} == {"ja"} and {r["reasoning"] for r in rows} == {""}


def test_vicuna_rows_join_answers_and_map_categories():
    questions = [
        {"question_id": 1, "category": "writing", "turns": ["詩を書いて"]},
        {"question_id": 2, "category": "math", "turns": ["1+1は？"]},
        {"question_id": 3, "category": "math", "turns": ["2+2は？"]},
    ]
    answers = [
        {"question_id": 1, "choices": [{"turns": ["  春の詩です。" * 5]}]},
        {"question_id": 2, "choices": [{"turns": ["2です。"]}]},
    ]
    rows = vicuna_to_rows(questions, answers, {"writing": "creative", "math": "math"}, ["math"], 20)
    assert [(r["instruction"], r["category"], r["uniqueness"], r["field"]) for r in rows] == [
        ("詩を書いて", "creative", "complex", "writing"),
        ("1+1は？", "math", "simple", "math"),
    ]
    frame = to_alpaca_frame(rows)
    assert list(frame.columns) == ALPACA_COLUMNS and frame["NO"].tolist() == [1, 2]
    with pytest.raises(ValueError, match="'writing'.*no entry in vicuna_categories"):
        vicuna_to_rows(questions, answers, {"math": "math"}, ["math"], 20)


def test_missing_files_say_where_the_data_is_expected(tmp_path):
    ds = JaInstructDataset(str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c"))
    with pytest.raises(DatasetError, match="ja_instruct environment reads the real data"):
        ds.load()
    with pytest.raises(DatasetError, match="on_malformed"):
        JaInstructDataset("a", "b", "c", on_malformed="ignore")


@pytest.mark.real_data
def test_real_data_through_the_env_catalog(shared_data, caplog):
    from tests.conftest import REPO, load_config

    config = dict(load_config(REPO, "ja_instruct")["alpaca_raw"])
    assert config.pop("type") == "qeu_kedro.datasets.ja_instruct.JaInstructDataset"
    config.update(
        seed_tasks_path=str(shared_data / "ja-instruct" / "seed_tasks_japanese.jsonl"),
        questions_path=str(shared_data / "ja-instruct" / "question.jsonl"),
        answers_path=str(shared_data / "ja-instruct" / "calm2-7b-chat_results.jsonl"),
    )
    with caplog.at_level(logging.WARNING):
        frame = JaInstructDataset(**config).load()
    assert "seed_tasks_japanese.jsonl, line 112: malformed JSON" in caplog.text
    assert len(frame) == 174 + 80 and frame["NO"].is_unique
    assert set(frame["language"]) == {"ja"} and set(frame["uniqueness"]) == {"simple", "complex"}
    assert (frame["category"] == "classification").sum() == 26  # the parsed tasks marked is_classification
    assert frame["output"].str.len().min() >= 1 and frame["instruction"].str.len().min() >= 1
    # Kedro wraps a load error in DatasetError; the message keeps the line and the advice.
    with pytest.raises(DatasetError, match=r"line 112: malformed JSON.*on_malformed: skip"):
        JaInstructDataset(**dict(config, on_malformed="error")).load()
