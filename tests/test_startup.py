"""Start-up paths that must never import torch: the registry, kedro-viz, the ridge analysis."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HEAVY = ("torch", "transformers", "sentence_transformers")


def imported_modules(project: Path, *args: str) -> set[str]:
    """Run ``kedro <args>`` under ``python -X importtime`` in a fresh interpreter; the modules it imported."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kedro", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line.split("|")[-1] for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {name.strip() for name in lines[1:]}


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def write_embeddings(project: Path, dim: int = 8) -> None:
    """Stand-in movie embeddings for both namespaces, so the ridge pipeline has its input."""
    movies = pd.read_csv(project / "data/01_raw/movies.csv")
    rng = np.random.default_rng(0)
    for ns in ("base", "finetuned"):
        table = pd.DataFrame(
            rng.normal(size=(len(movies), 2 * dim)).astype(np.float32),
            columns=[f"{c}_embedding_{i}" for c in ("title", "overview") for i in range(dim)],
        )
        table.insert(0, "movie_id", movies["movie_id"])
        (project / "data/04_feature" / ns).mkdir(parents=True, exist_ok=True)
        table.to_parquet(project / "data/04_feature" / ns / "movie_embeddings.parquet")


@pytest.mark.slow
def test_registry_list_does_not_import_torch(project):
    modules = imported_modules(project, "registry", "list")
    assert "kedro.framework.project" in modules and "qeu_kedro.pipelines.ridge_analysis.nodes" in modules
    assert heavy(modules) == []
    # nor the plotting and learning libraries: the nodes import them when they plot or split
    assert sorted(m for m in modules if m.split(".")[0] in ("matplotlib", "sklearn")) == []


@pytest.mark.slow
def test_viz_build_does_not_import_torch(project):
    modules = imported_modules(project, "viz", "build")
    assert (project / "build" / "index.html").exists()
    assert heavy(modules) == []


@pytest.mark.slow
def test_ridge_run_with_embeddings_present_does_not_import_torch(project):
    write_embeddings(project)
    modules = imported_modules(project, "run", "--pipelines", "ridge_analysis")
    assert (project / "data/08_reporting/base/ridge_metrics.json").exists()
    assert (project / "data/08_reporting/finetuned/top_coefficients_bar.png").exists()
    assert heavy(modules) == []


@pytest.mark.slow
def test_cached_rerun_of_the_shipped_catalog_does_not_import_torch(project):
    # the shipped base.embedding_model is lazy: with every text cached, no model is read
    first = imported_modules(project, "run", "--pipelines", "movie_embedding", "--namespaces", "base")
    assert "torch" in first  # the first run encodes
    before = pd.read_parquet(project / "data/04_feature/base/movie_embeddings.parquet")
    again = imported_modules(project, "run", "--pipelines", "movie_embedding", "--namespaces", "base")
    assert heavy(again) == []
    pd.testing.assert_frame_equal(pd.read_parquet(project / "data/04_feature/base/movie_embeddings.parquet"), before)
