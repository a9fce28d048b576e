"""The environments: the pipeline is registered, env blocks do not drift, the hub env fails at once offline."""

from __future__ import annotations

import pytest

from qeu_kedro.models import ModelNotAvailableError
from tests.conftest import REPO, load_config


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize(
    ("env", "differs"),
    [
        (
            "ja_instruct",
            {
                "split.eval_size", "split.validation_size", "split.stratify_by", "train.max_steps", "train.max_length",
                "train.learning_rate", "train.checkpoint_every", "generation.max_new_tokens", "report.data",
            },
        ),
        ("hub", {"prompt.use_chat_template", "train.max_steps", "generation.max_new_tokens"}),
    ],
)
def test_env_parameter_blocks_differ_from_base_only_where_documented(env, differs):
    base = _flat(load_config(REPO, "base", "parameters")["alpaca_sft"])
    other = _flat(load_config(REPO, env, "parameters")["alpaca_sft"])
    assert set(other) == set(base)
    assert {k for k in base if base[k] != other[k]} == differs


def test_default_run_is_small_and_includes_alpaca_sft():
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(REPO)
    from kedro.framework.project import pipelines

    names = {n.name for n in pipelines["__default__"].nodes}
    assert {"alpaca_sft.train_lora", "alpaca_sft.generate_answers_before", "alpaca_sft.generate_answers_after"} <= names
    params = load_config(REPO, None, "parameters")["alpaca_sft"]
    assert params["train"]["max_steps"] <= 30 and params["generation"]["max_new_tokens"] <= 64


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
        "qeu_kedro.conversions.smollm2; print(sorted(m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
