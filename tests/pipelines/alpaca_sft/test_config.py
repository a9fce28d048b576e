"""The configuration: library config objects from the YAML, the default run, the hub env fails at once offline."""

from __future__ import annotations

from enum import Enum

import pytest

from qeu_kedro.models import ModelNotAvailableError
from tests.conftest import REPO, load_config


def _plain(value):
    return value.value if isinstance(value, Enum) else value


def test_sft_and_lora_configs_carry_the_yaml_values_under_the_libraries_own_names(params, tmp_path):
    from peft import LoraConfig

    from qeu_kedro.pipelines.alpaca_sft.nodes import sft_config

    train = params["train"]
    config = sft_config(train, str(tmp_path))
    assert train["trainer"]["max_steps"] == 45 and train["trainer"]["learning_rate"] == 5.0e-4
    for key, value in train["trainer"].items():
        assert _plain(getattr(config, key)) == value, key
    # what the recipe fixes
    assert config.completion_only_loss is True and config.packing is False and config.report_to == []
    assert config.output_dir == str(tmp_path)
    lora = LoraConfig(**train["lora"])
    for key, value in train["lora"].items():
        assert _plain(getattr(lora, key)) == value, key
    # a new knob is a YAML key, no code
    more = sft_config({**train, "trainer": {**train["trainer"], "gradient_accumulation_steps": 3, "optim": "sgd"}}, "x")
    assert more.gradient_accumulation_steps == 3 and _plain(more.optim) == "sgd"


@pytest.mark.parametrize(
    ("block", "key", "value"),
    [("trainer", "report_to", "mlflow"), ("trainer", "completion_only_loss", False), ("preference", "output_dir", "x")],
)
def test_a_key_the_recipe_sets_is_refused_at_the_config_naming_it(params, tmp_path, block, key, value):
    """It was TRL's raw "SFTConfig() got multiple values for keyword argument 'report_to'" (a TypeError)."""
    from qeu_kedro.pipelines.alpaca_sft.training import dpo_config, sft_config

    train = {**params["train"], block: {**params["train"][block], key: value}}
    words = rf"alpaca_sft\.train\.{block}\.{key}: the recipe sets it itself \(it fixes output_dir, completion_only_loss"
    if block == "trainer":
        with pytest.raises(ValueError, match=words):
            sft_config(train, str(tmp_path))
    # the preference objective's config likewise (completion_only_loss is not DPOConfig's: refused as that first)
    with pytest.raises(ValueError, match=words if key != "completion_only_loss" else "DPOConfig does not take"):
        dpo_config(train, str(tmp_path))


def test_default_run_is_small_and_includes_alpaca_sft():
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(REPO)
    from kedro.framework.project import pipelines

    names = {n.name for n in pipelines["__default__"].nodes}
    assert {"alpaca_sft.train_lora", "alpaca_sft.generate_answers_before", "alpaca_sft.generate_answers_after"} <= names
    params = load_config(REPO, None, "parameters")["alpaca_sft"]
    assert params["train"]["trainer"]["max_steps"] <= 60 and params["generation"]["max_new_tokens"] <= 64


def test_hub_env_names_phi2_and_fails_at_once_offline_with_advice(tmp_path, monkeypatch):
    from kedro.io import DataCatalog

    catalog_conf = load_config(REPO, "hub", "catalog")
    assert catalog_conf["alpaca_base_model"]["model"] == "microsoft/phi-2"
    assert catalog_conf["alpaca_sft.lora_adapter"]["base_model"] == "microsoft/phi-2"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # phi-2 is not in this (empty) cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    catalog = DataCatalog.from_config({"alpaca_base_model": catalog_conf["alpaca_base_model"]})
    with pytest.raises(Exception) as info:
        catalog.load("alpaca_base_model")
    # Kedro wraps the load error; at the root is the registry's, raised before any download attempt.
    chain, error = [], info.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, ModelNotAvailableError) for e in chain)
    assert "microsoft/phi-2" in str(info.value) and "no --env" in str(info.value)


def test_start_up_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, qeu_kedro.pipelines.alpaca_sft, qeu_kedro.datasets.hf_causal_lm, qeu_kedro.datasets.ja_instruct, "
        "qeu_kedro.conversions.smollm2; "
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
