"""benchmarks/alpaca_sft_ab.py: two runs' trained answers prompt by prompt, also when one run predates a measure."""

from qeu_kedro.pipelines.alpaca_sft.nodes import compare_before_after
from tests.conftest import load_benchmark
from tests.pipelines.alpaca_sft.test_report import MEASURES, TRAIN, answers


def test_runs_made_before_a_measure_existed_are_compared_on_the_rest(tmp_path, capsys):
    table, _ = compare_before_after(answers(12, False), answers(12, True), TRAIN, MEASURES)
    old = table.drop(columns=["answer_loss_before", "answer_loss_after"])  # a run of before 2026-12-07
    table.to_csv(tmp_path / "new.csv", index=False)
    old.to_csv(tmp_path / "old.csv", index=False)
    load_benchmark("alpaca_sft_ab").main(str(tmp_path / "old.csv"), str(tmp_path / "new.csv"))
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 8 and not any(r.startswith("| answer_loss") for r in rows)  # the nine measures less one
    assert next(r for r in rows if r.startswith("| chrf")).endswith("| no evidence |")  # the same answers
    assert "so not compared: answer_loss." in out
