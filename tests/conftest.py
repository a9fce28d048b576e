"""Shared fixtures: a throw-away copy of the project to run Kedro in, and the real data folder."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("QEU_SHARED_DATA") or REPO.parent / "shared" / "data").resolve()

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Figures are saved, never shown: no GUI backend even where a display exists (scripts/*.sh do the same).
os.environ.setdefault("MPLBACKEND", "Agg")
# Under pytest-xdist (`-n 2`) the workers share the cores (one each on 2 cores): workers each asking for
# all cores would make torch's OpenMP threads wait on each other. Set before torch is imported.
if os.environ.get("PYTEST_XDIST_WORKER"):
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))

# Importing kedro.framework.project configures logging (a dictConfig that replaces the root logger's handlers).
# Done here, once, before any test: done inside a test, it drops the handler pytest's caplog put on the root
# logger for that test, and a test that asserts on a logged warning fails when it is the first to import kedro
# (test_ja_instruct's real-data test, run alone).
import kedro.framework.project  # noqa: E402, F401


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The licensed real data beside the repo; tests that need it skip where it is absent."""
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"real data not found at {SHARED_DATA} (put ../shared/data beside the repo or set QEU_SHARED_DATA)")
    return SHARED_DATA


def copy_project(dest: Path) -> Path:
    """Copy what a Kedro run needs (pyproject, conf without local, the shipped raw data) to ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")
    shutil.copytree(REPO / "conf", dest / "conf", ignore=shutil.ignore_patterns("local"))
    (dest / "conf" / "local").mkdir()
    shutil.copytree(REPO / "data" / "01_raw", dest / "data" / "01_raw")
    # Kedro wants a source folder; the package itself is the installed (editable) qeu_kedro.
    (dest / "src").mkdir()
    return dest


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the project as the working directory (Kedro's relative paths resolve there)."""
    path = copy_project(tmp_path / "project")
    monkeypatch.chdir(path)
    monkeypatch.setenv("QEU_SHARED_DATA", str(SHARED_DATA))
    return path


def run_kedro(
    project_path: Path, env: str | None = None, params: dict[str, Any] | None = None, **run_args: Any
) -> dict:
    """``kedro run`` in-process on ``project_path``; ``run_args`` go to ``KedroSession.run``."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project_path)
    with KedroSession.create(project_path=project_path, env=env, runtime_params=params) as session:
        return session.run(**run_args)


def load_benchmark(name: str) -> Any:
    """``benchmarks/<name>.py`` as a module: the benchmarks are scripts, not a package."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_config(project_path: Path, env: str | None = None, key: str = "catalog") -> dict:
    """The merged configuration ``key`` (catalog, parameters) of ``env``."""
    from kedro.config import OmegaConfigLoader

    from qeu_kedro.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(
        conf_source=str(project_path / "conf"),
        env=env or "local",
        **CONFIG_LOADER_ARGS,
    )
    return loader[key]


def matched_movies(env: str) -> Any:
    """The table ``embed_movies`` reads in ``env``: its raw ``movies`` and ``movie_overviews`` through the nodes."""
    from kedro.io import DataCatalog

    from qeu_kedro.pipelines.movie_embedding.overviews import check_movie_overviews, check_movies, match_overviews

    catalog = DataCatalog.from_config(load_config(REPO, env))
    params = load_config(REPO, env, "parameters")["movie_overviews"]
    overviews = check_movie_overviews(catalog.load("movie_overviews"), params)
    return match_overviews(check_movies(catalog.load("movies")), overviews, params)


# Two-worker Dask clusters for the tests; qeu_kedro.dask_cluster.local_cluster_arguments keeps their servers on 127.0.0.1.
DASK_IN_PROCESS = {"local_cluster": {"processes": False, "n_workers": 2, "threads_per_worker": 1}}
DASK_PROCESSES = {"local_cluster": {"processes": True, "n_workers": 2, "threads_per_worker": 1}}


# ---- issue 7 (kedro-viz browser test, MLflow tracking, executed notebook): shared fixtures ----------
MOVIE_PIPELINES_BASE_RUN = {"pipeline_names": ["movie_embedding", "ridge_analysis"], "namespaces": ["base"]}


@pytest.fixture(scope="session")
def movie_run_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project copy in which the sample ``kedro run`` of the movie pipelines (``base``) ran.

    Shared by tests that only read what a run leaves behind (kedro-viz previews, the MLflow store),
    so the embeddings are computed once per session. Tests must not delete its outputs.
    """
    path = copy_project(tmp_path_factory.mktemp("movie_run") / "project")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(path)
        mp.setenv("QEU_SHARED_DATA", str(SHARED_DATA))
        run_kedro(path, **MOVIE_PIPELINES_BASE_RUN)
    return path


# ---- end of issue 7 fixtures -------------------------------------------------------------------------
