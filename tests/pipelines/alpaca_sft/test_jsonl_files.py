"""read_jsonl on files that are not JSON lines: a byte that is no UTF-8 is one malformed line, named by file and
line (skipped with on_malformed: skip); a file with no record, or mostly malformed lines, is refused even then."""

import json
import logging

import pytest

from qeu_kedro.datasets.ja_instruct import JaInstructDataset
from qeu_kedro.ja_instruct import MalformedLineError, read_jsonl
from qeu_kedro.validation import RawDataError

TASK = {"id": "seed_task_0", "name": "x", "instruction": "説明して", "instances": [{"input": "", "output": "はい"}]}


def _write_vicuna(folder):
    (folder / "q.jsonl").write_text(json.dumps({"question_id": 1, "category": "writing", "turns": ["q"]}) + "\n")
    (folder / "a.jsonl").write_text(json.dumps({"question_id": 1, "choices": [{"turns": ["a"]}]}) + "\n")


def test_a_byte_that_is_not_utf8_is_a_malformed_line_named_by_file_and_line(tmp_path, caplog):
    path = tmp_path / "seed.jsonl"
    lines = [json.dumps(TASK, ensure_ascii=False).encode()] * 4
    lines[2] = lines[2].replace("説明".encode(), "説明".encode("shift_jis"))
    path.write_bytes(b"\n".join(lines) + b"\n")
    with caplog.at_level(logging.WARNING):
        assert [n for n, _ in read_jsonl(path, "skip")] == [1, 2, 4]
    assert f"{path}, line 3: not UTF-8 text" in caplog.text
    with pytest.raises(MalformedLineError, match=r"seed\.jsonl, line 3: not UTF-8 text.*on_malformed: skip"):
        read_jsonl(path, "error")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "holds no JSON record. Point"),
        ("\n  \n", "holds no JSON record. Point"),
        (
            json.dumps([TASK, TASK], ensure_ascii=False, indent=1),
            r"holds no JSON record \(all \d+ of its non-blank lines are malformed, from line 1\)",
        ),
    ],
)
def test_a_file_with_no_record_is_refused_even_with_skip(tmp_path, text, words):
    path = tmp_path / "seed.jsonl"
    path.write_text(text, encoding="utf-8")
    _write_vicuna(tmp_path)
    with pytest.raises(RawDataError, match=rf"dataset '.*seed\.jsonl': the file {words}"):
        read_jsonl(path, "skip")
    with pytest.raises(Exception, match=r"seed\.jsonl': the file"):  # kedro's DatasetError around it
        JaInstructDataset(str(path), str(tmp_path / "q.jsonl"), str(tmp_path / "a.jsonl"), on_malformed="skip").load()


def test_mostly_malformed_lines_are_refused_a_stray_one_is_skipped(tmp_path):
    good, bad = json.dumps({"a": 1}), '{"a": '
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join([good, bad, good]) + "\n")
    assert len(read_jsonl(path, "skip")) == 2
    path.write_text("\n".join([good, bad, bad]) + "\n")
    with pytest.raises(RawDataError, match=r"'.*x\.jsonl': 2 of its 3 lines are malformed \(lines 2, 3\)"):
        read_jsonl(path, "skip")
