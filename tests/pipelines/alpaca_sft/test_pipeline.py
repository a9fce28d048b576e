"""The pipeline end to end with Kedro: on the shipped sample (bounded) and on the real Japanese data."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from tests.conftest import run_kedro

# Bounded for tests: 2 LoRA steps, 6 held-out prompts (two per language; the fewest an interval is given
# for) and 3 validation prompts (one per language), 8 new tokens.
BOUNDED = {
    "split": {"eval_size": 6, "validation_size": 3},
    "train": {"checkpoint_every": 1, "trainer": {"max_steps": 2}},
    "generation": {"max_new_tokens": 8},
}
# The real-data check in CI: conf/ja_instruct with fewer steps, prompts and tokens (the full run is
# recorded in benchmarks/RESULTS_alpaca.md).
BOUNDED_REAL = {
    "split": {"eval_size": 6, "validation_size": 3},
    "train": {"checkpoint_every": 1, "trainer": {"max_steps": 2, "max_length": 256}},
    "generation": {"max_new_tokens": 16},
}
LINEAR = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
OPEN = "Don't output the same answer over and over again unnecessarily."


def _lora_b_norm(adapter_dir) -> float:
    from safetensors.torch import load_file

    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    return float(sum(w.float().norm() for name, w in weights.items() if "lora_B" in name))


def check_outputs(
    project, prefix: str, n_prompts: int, languages: set[str], max_steps: int, max_new_tokens: int
) -> dict:
    out = project / "data" / "08_reporting" / prefix / "alpaca_sft"
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    train = json.loads((out / "train_metrics.json").read_text(encoding="utf-8"))
    table = pd.read_csv(out / "before_after.csv")
    assert len(table) == n_prompts == metrics["n_prompts"] and set(table["language"]) == languages
    assert table["answer_before"].notna().all() and table["answer_after"].notna().all()
    assert train["global_step"] == max_steps and train["trainable_share"] < 0.02
    assert 0 < train["n_train_trained_on"] <= train["n_train"]
    # The checkpoint was chosen on validation chrF among the scored steps (step 0 = before training).
    scored = {p["step"]: p["validation_chrf"] for p in train["validation_chrf_curve"]}
    assert 0 in scored and max_steps in scored and train["chosen_step"] in scored and train["chosen_step"] > 0
    assert scored[train["chosen_step"]] == max(v for k, v in scored.items() if k > 0)
    for when in ("before", "after"):
        overall = metrics["overall"][when]
        # each reference answer's loss under the model, one per prompt (so that before and after pair)
        assert table[f"answer_loss_{when}"].map(math.isfinite).all() and 0 < overall["answer_loss"] < 10
        assert 0 <= overall["language_match"] <= 1 and 0 <= overall["repeated_4gram_share"] <= 1
        assert 0 < overall["n_new_tokens"] <= max_new_tokens and 0 <= overall["ended_by_itself"] <= 1
        assert 0 <= overall["chrf"] <= 100
    # chrF of every answer against its reference, before and after, with the paired interval and a verdict.
    chrf = metrics["chrf"]
    assert chrf["n"] == n_prompts and chrf["ci_low"] <= chrf["difference"] <= chrf["ci_high"]
    assert chrf["difference"] == pytest.approx(chrf["after"] - chrf["before"])
    assert chrf["before"] == pytest.approx(table["chrf_before"].mean(), abs=1e-3)
    assert chrf["verdict"] in {"better", "no evidence", "worse"}
    assert 0 <= metrics["reference_copied_4gram_share"] <= 1 and set(metrics["targets"]) == {
        "chrf_better",
        "copied_4gram_share_within_reference_plus_0.10",
        "ended_by_itself_not_lower",
    }
    # each target read on its interval, in words (a boolean there was read on the point estimate)
    assert set(metrics["targets"].values()) <= {"met", "not met", "not shown either way"}
    assert set(metrics["by_language"]) == languages
    # The adapter was trained (LoRA B starts at zero) and saved through the catalog.
    adapter = project / "data" / "06_models" / prefix / "alpaca_sft" / "lora_adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == LINEAR and config["r"] == 8
    assert _lora_b_norm(adapter) > 0
    loss = metrics["paired"]["answer_loss"]  # trained: the reference answers' loss moved, with its interval
    assert (
        loss["difference"] != 0 and loss["ci_low"] <= loss["difference"] <= loss["ci_high"] and loss["n"] == n_prompts
    )
    assert (out / "before_after.png").stat().st_size > 10_000
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Generations" in report and report.count("\n| ") >= n_prompts
    assert "![before vs after](before_after.png)" in report  # the figure, beside the report
    assert (
        f"chrF against the reference changed by {chrf['difference']:+.4f}" in report
        and chrf["verdict"] in report
        and "Targets:" in report
    )
    return metrics


@pytest.mark.slow
def test_sample_run_end_to_end(project):
    run_kedro(project, pipeline_names=["alpaca_sft"], params={"alpaca_sft": BOUNDED})
    records = json.loads(
        (project / "data" / "02_intermediate" / "alpaca_sft" / "alpaca_records.json").read_text(encoding="utf-8")
    )
    assert len(records) == 90 and sum(OPEN in r["reasoning"] for r in records) == 15
    check_outputs(project, "", n_prompts=6, languages={"ja", "en", "zh"}, max_steps=2, max_new_tokens=8)
    answers = pd.read_csv(project / "data" / "07_model_output" / "alpaca_sft" / "answers_after.csv")
    assert (answers["n_new_tokens"] <= 8).all()


@pytest.mark.slow
def test_bad_sheet_writes_nothing(project):
    from qeu_kedro.sample_data.alpaca import make_alpaca

    sheet = make_alpaca()
    sheet.loc[0, "category"] = "poetry"
    sheet.to_excel(project / "data" / "01_raw" / "alpaca_sample.xlsx", index=False)
    with pytest.raises(Exception, match="unknown value 'poetry'"):
        run_kedro(project, pipeline_names=["alpaca_sft"], params={"alpaca_sft": BOUNDED})
    written = [p for p in (project / "data").rglob("*") if p.is_file() and "01_raw" not in p.parts]
    assert not [p for p in written if "alpaca_sft" in str(p)]


@pytest.mark.slow
def test_a_split_the_sheet_cannot_give_writes_nothing(project):
    """eval_size 100 stopped the run at split_sft_examples, after write_alpaca_records had saved the records."""
    with pytest.raises(Exception, match=r"alpaca_sft.split.eval_size = 100 needs more than the sheet's rows \(90\)"):
        run_kedro(
            project, pipeline_names=["alpaca_sft"], params={"alpaca_sft": {**BOUNDED, "split": {"eval_size": 100}}}
        )
    written = [p for p in (project / "data").rglob("*") if p.is_file() and "01_raw" not in p.parts]
    assert not [p for p in written if "alpaca_sft" in str(p)]


@pytest.mark.slow
@pytest.mark.real_data
def test_bounded_real_run(project, shared_data):
    """conf/ja_instruct bounded for CI: the measures, the chrF interval and the checkpoint choice on real data."""
    run_kedro(project, env="ja_instruct", pipeline_names=["alpaca_sft"], params={"alpaca_sft": BOUNDED_REAL})
    assert not (project / "data" / "08_reporting" / "alpaca_sft").exists()  # real results kept apart
    metrics = check_outputs(project, "ja_instruct", n_prompts=6, languages={"ja"}, max_steps=2, max_new_tokens=16)
    # The references of the real data copy little of their prompts: the yardstick for the answers.
    assert metrics["reference_copied_4gram_share"] < 0.5
