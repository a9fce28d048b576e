"""A failed (or killed) run's files are named by the next run; a run that ends well leaves no record."""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io import AbstractDataset

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

    def warnings_of_a_run(**run: object) -> str:
        messages = Collect()
        logger = logging.getLogger("qeu_kedro.hooks")
        logger.addHandler(messages)  # Kedro's rich logging set-up keeps caplog's root handler out
        try:
            run_kedro(project, **run)
        finally:
            logger.removeHandler(messages)
        return "\n".join(messages.lines)

    # a run that makes none of those files again (one check node) names them and keeps them named
    for _ in range(2):
        text = warnings_of_a_run(**RUN, node_names=["base.check_ratings"])
        assert "did not finish (failed: ValueError); it wrote" in text and "base.ridge_model" in text
    assert len(list((project / "data/.runs").glob("*.json"))) == 1
    text = warnings_of_a_run(**RUN)
    assert "did not finish (failed: ValueError); it wrote" in text and "base.ridge_model" in text
    assert list((project / "data/.runs").glob("*.json")) == []  # this run made them again and ended well


class HalfWritten(AbstractDataset):
    """A file whose save writes its first bytes, then fails as a full disk does."""

    def __init__(self, filepath: str) -> None:
        self._filepath = Path(filepath)

    def _describe(self) -> dict:
        return {"filepath": str(self._filepath)}

    def load(self) -> str:
        return self._filepath.read_text()

    def save(self, data: str) -> None:
        with self._filepath.open("w") as file:
            file.write(data[: len(data) // 2])
            file.flush()
            raise OSError(errno.ENOSPC, "No space left on device")


def test_the_save_a_failure_interrupts_is_named_as_unfinished(tmp_path):
    from kedro.framework.hooks.manager import _create_hook_manager
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import Node, Pipeline
    from kedro.runner import SequentialRunner

    from qeu_kedro.datasets import CSVDataset
    from qeu_kedro.hooks import UnfinishedRunHook

    def run(run_id: str, catalog: DataCatalog, pipeline: Pipeline) -> None:
        hook = UnfinishedRunHook()
        hooks = _create_hook_manager()
        hooks.register(hook)
        run_params = {"project_path": str(tmp_path), "run_id": run_id, "pipeline_names": ["demo"]}
        hook.before_pipeline_run(run_params, pipeline, catalog)
        try:
            SequentialRunner().run(pipeline, catalog, hooks)
        except Exception as error:
            hook.on_pipeline_error(error, run_params, pipeline, catalog)
            raise
        hook.after_pipeline_run(run_params, None, pipeline, catalog)

    pipeline = Pipeline(
        [
            Node(lambda: pd.DataFrame({"x": [1, 2]}), None, "small", name="a"),
            Node(lambda small: "x" * 1000, "small", "memo", name="b"),
            Node(lambda memo: "# report\n" * 100, "memo", "report", name="c"),
        ]
    )
    catalog = DataCatalog(
        {
            "small": CSVDataset(filepath=str(tmp_path / "small.csv")),
            "memo": MemoryDataset(),
            "report": HalfWritten(str(tmp_path / "report.md")),
        }
    )
    with pytest.raises(Exception, match="No space left on device"):
        run("run1", catalog, pipeline)
    (record,) = (tmp_path / "data/.runs").glob("*.json")
    written = {w["dataset"]: w for w in json.loads(record.read_text())["written"]}
    assert set(written) == {"small", "report"}  # not the one in memory
    assert written["report"] == {"dataset": "report", "filepath": str(tmp_path / "report.md"), "finished": False}
    assert written["small"]["finished"] is True

    messages = Collect()
    logger = logging.getLogger("qeu_kedro.hooks")
    logger.addHandler(messages)
    try:
        run(
            "run2",
            DataCatalog({"small": CSVDataset(filepath=str(tmp_path / "small.csv"))}),
            Pipeline(pipeline.nodes[:1]),
        )
    finally:
        logger.removeHandler(messages)
    (text,) = messages.lines
    assert f"report ({tmp_path / 'report.md'}; its save did not finish)" in text
    assert f"small ({tmp_path / 'small.csv'})" in text
    # run2 made small.csv again; the half-written report.md stays named until a run makes it again
    (record,) = (tmp_path / "data/.runs").glob("*.json")
    assert [w["dataset"] for w in json.loads(record.read_text())["written"]] == ["report"]
