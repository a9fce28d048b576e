"""benchmarks/alpaca_sft_languages.py: a run keeps only the files it wrote itself."""

import os
import subprocess
import time

import pytest

from tests.conftest import load_benchmark


@pytest.fixture
def bench(tmp_path, monkeypatch):
    module = load_benchmark("alpaca_sft_languages")
    out, answers = tmp_path / "out", tmp_path / "answers"
    out.mkdir()
    answers.mkdir()
    monkeypatch.setattr(module, "OUT", out)
    monkeypatch.setattr(module, "ANSWERS", answers)
    # the last run's outputs, an hour old
    for path in [out / n for n in ("metrics.json", "before_after.csv", "report.md")] + [answers / "answers_before.csv"]:
        path.write_text("last run")
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    return module, out, answers


def fake_run(writes, rc):
    """subprocess.run for the kedro command: writes ``writes`` (paths) and returns ``rc``; git answers a commit."""

    def run(command, **kwargs):
        if command[0] == "git":
            return subprocess.CompletedProcess(command, 0, stdout="abc1234\n")
        for path in writes:
            path.write_text("this run")
        return subprocess.CompletedProcess(command, rc)

    return run


def test_a_failed_run_records_none_of_the_last_runs_files(bench, tmp_path, monkeypatch):
    module, out, answers = bench
    folder = tmp_path / "en"
    folder.mkdir()
    (folder / "metrics.json").write_text("an older record of this label")
    # the run wrote the base model's answers, then failed in training
    monkeypatch.setattr(module.subprocess, "run", fake_run([answers / "answers_before.csv"], rc=1))
    with pytest.raises(SystemExit, match="en run failed"):
        module._run("en", [], folder)
    assert sorted(p.name for p in folder.iterdir()) == ["answers_before.csv", "log.txt", "meta.txt"]
    assert (folder / "answers_before.csv").read_text() == "this run"
    meta = (folder / "meta.txt").read_text().splitlines()
    assert meta[1].startswith("end ") and "rc 1" in meta[1]


def test_a_finished_run_records_its_outputs(bench, tmp_path, monkeypatch):
    module, out, answers = bench
    written = [
        out / n for n in ("metrics.json", "train_metrics.json", "before_after.csv", "report.md", "before_after.png")
    ]
    monkeypatch.setattr(module.subprocess, "run", fake_run([*written, answers / "answers_before.csv"], rc=0))
    folder = tmp_path / "native"
    module._run("native", [], folder)
    assert all((folder / p.name).read_text() == "this run" for p in written)


def test_the_last_runs_files_written_a_moment_before_are_not_taken_for_this_runs(bench, tmp_path, monkeypatch):
    """Runs go back to back: the previous run's last files can be younger than a second when this one starts."""
    module, out, answers = bench
    for path in [out / "metrics.json", out / "report.md", answers / "answers_before.csv"]:
        path.write_text("last run, just now")
    monkeypatch.setattr(module.subprocess, "run", fake_run([], rc=1))
    folder = tmp_path / "en"
    with pytest.raises(SystemExit):
        module._run("en", [], folder)
    assert sorted(p.name for p in folder.iterdir()) == ["log.txt", "meta.txt"]
