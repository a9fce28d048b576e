"""A failed (or killed) run's files are named by the next run; a run that ends well leaves no record."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_kedro

RUN = {"pipeline_names": ["ridge_analysis"], "namespaces": ["base"]}


def stand_in_embeddings(project) -> None:
    movies = pd.read_csv(project / "data/01_raw/movies.csv")
    table = pd.DataFrame(
        np.random.default_rng(0).normal(size=(len(movies), 4)), columns=[f"title_embedding_{i}" for i in range(4)]
    )
    table.insert(0, "movie_id", movies["movie_id"])
    (project / "data/04_feature/base").mkdir(parents=True)
    table.to_parquet(project / "data/04_feature/base/movie_embeddings.parquet")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.mark.slow
def test_the_next_run_names_what_a_failed_run_wrote(project):
    stand_in_embeddings(project)
    # plot_top_features fails on an unknown feature after the model and the metrics were written
    with pytest.raises(ValueError, match="plot_features names unknown features"):
        run_kedro(project, params={"ridge_analysis": {"plot_features": ["no_such_feature"]}}, **RUN)
    records = list((project / "data/.runs").glob("*.json"))
    assert len(records) == 1
    entry = json.loads(records[0].read_text())
    assert entry["failed"] == "failed: ValueError"
    assert "base.ridge_model" in {w["dataset"] for w in entry["written"]}

    messages = Collect()
    logger = logging.getLogger("qeu_kedro.hooks")
    logger.addHandler(messages)  # Kedro's rich logging set-up keeps caplog's root handler out
    try:
        run_kedro(project, **RUN)
    finally:
        logger.removeHandler(messages)
    text = "\n".join(messages.lines)
    assert "did not finish (failed: ValueError); it wrote" in text and "base.ridge_model" in text
    assert list((project / "data/.runs").glob("*.json")) == []  # reported once; this run ended well
