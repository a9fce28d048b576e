"""Fixtures of the alpaca_sft tests: the sample sheet and the pipeline's base parameters."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def params() -> dict:
    """conf/base/parameters_alpaca_sft.yml (plain YAML: no interpolations in it)."""
    return yaml.safe_load((REPO / "conf" / "base" / "parameters_alpaca_sft.yml").read_text(encoding="utf-8"))[
        "alpaca_sft"
    ]


@pytest.fixture
def sheet() -> pd.DataFrame:
    from qeu_kedro.sample_data.alpaca import make_alpaca

    return make_alpaca()


def ja_instruct_raw(shared_data: Path, **overrides):
    """The ja_instruct environment's ``alpaca_raw`` dataset (its catalog entry), reading from ``shared_data``."""
    from qeu_kedro.datasets.ja_instruct import JaInstructDataset
    from tests.conftest import load_config

    config = dict(load_config(REPO, "ja_instruct")["alpaca_raw"])
    assert config.pop("type") == "qeu_kedro.datasets.ja_instruct.JaInstructDataset"
    folder = shared_data / "ja-instruct"
    config.update(
        seed_tasks_path=str(folder / "seed_tasks_japanese.jsonl"),
        questions_path=str(folder / "question.jsonl"),
        answers_path=str(folder / "calm2-7b-chat_results.jsonl"),
    )
    return JaInstructDataset(**{**config, **overrides})


def categorised(raw: pd.DataFrame, params: dict) -> pd.DataFrame:
    """The raw table checked and its categories completed, as the pipeline's first two nodes do."""
    from qeu_kedro.pipelines.alpaca_sft.nodes import assign_categories, check_alpaca

    rules = params["category_rules"]
    return assign_categories(check_alpaca(raw, params["schema"], rules), rules, params["schema"])
