"""Project-level checks: the registry finds pipelines, kedro-viz builds, telemetry is off."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_find_pipelines_registers_every_pipeline_folder():
    from kedro.framework.project import find_pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(REPO)
    found = find_pipelines(raise_errors=True)
    folders = {p.name for p in (REPO / "src/qeu_kedro/pipelines").iterdir() if (p / "pipeline.py").exists()}
    assert folders <= set(found)
    assert {"movie_embedding", "ridge_analysis"} <= folders


def test_telemetry_is_declined_in_the_repo():
    assert "consent: false" in (REPO / ".telemetry").read_text()


@pytest.mark.slow
def test_kedro_viz_build_makes_a_static_site_of_all_pipelines(project):
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    kedro = Path(sys.executable).with_name("kedro")
    result = subprocess.run(
        [str(kedro), "viz", "build"], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (project / "build" / "index.html").exists()
    pipelines = json.loads((project / "build" / "api" / "main").read_text())
    names = {p["id"] for p in pipelines["pipelines"]}
    assert {"__default__", "movie_embedding", "ridge_analysis"} <= names
    node_names = {n["name"] for n in pipelines["nodes"]}
    assert any("fit_ridge" in n for n in node_names)
    modular = pipelines.get("modular_pipelines", {})
    assert {"base", "finetuned"} <= set(modular)


def test_the_shared_data_is_found_from_a_subfolder_of_the_project(monkeypatch):
    """The notebooks' kernel runs in notebooks/; kedro finds the project from src/ too: ../shared/data is
    then beside the project, not beside the current folder."""
    from qeu_kedro.settings import shared_data_dir

    expected = (REPO.parent / "shared" / "data").resolve()
    if not expected.is_dir():
        pytest.skip("no ../shared/data beside the project")
    monkeypatch.delenv("QEU_SHARED_DATA", raising=False)
    for folder in (REPO, REPO / "notebooks", REPO / "src"):
        monkeypatch.chdir(folder)
        assert shared_data_dir() == str(expected)
    monkeypatch.setenv("QEU_SHARED_DATA", "/elsewhere")
    assert shared_data_dir() == "/elsewhere"


def test_an_unknown_sample_name_lists_the_samples(tmp_path, monkeypatch):
    from qeu_kedro.sample_data.__main__ import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"Unknown sample 'movie'. Did you mean 'movies'\? Samples: movies, alpaca"):
        main(["movie"])
    assert not (tmp_path / "data").exists()  # nothing written before the refusal
