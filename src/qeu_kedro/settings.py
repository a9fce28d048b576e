"""Project settings. See https://docs.kedro.org/en/stable/kedro_project_setup/settings.html."""

import os
import warnings
from pathlib import Path

from kedro.config import OmegaConfigLoader

from qeu_kedro.dask_cluster import DaskClusterHook
from qeu_kedro.hooks import InputChecksHook, MlflowOutputsHook, UnfinishedRunHook
from qeu_kedro.session import ProjectSession

# Kedro 1.7's config loader and kedro-mlflow 2.0's hook call OmegaConf.register_new_resolver,
# deprecated in omegaconf 2.4, and warn on every run; the calls are theirs (this project uses
# register_resolver), so this hides that one warning from those two modules only.
warnings.filterwarnings(
    "ignore",
    message=r"register_new_resolver\(\) is deprecated",
    category=UserWarning,
    module=r"(kedro\.config\.omegaconf_config|kedro_mlflow\.framework\.hooks\.mlflow_hook)",
)


def shared_data_dir() -> str:
    """Folder of the licensed real data: ``QEU_SHARED_DATA``, else ``../shared/data`` beside the project.

    "The project" is the folder kedro runs in; from a subfolder (``notebooks/``, ``src/``), where that
    has no ``../shared/data``, it is the project this package belongs to (``src/qeu_kedro/`` is in it).
    """
    if os.environ.get("QEU_SHARED_DATA"):
        return os.environ["QEU_SHARED_DATA"]
    beside_cwd = (Path.cwd().parent / "shared" / "data").resolve()
    beside_package = (Path(__file__).resolve().parents[3] / "shared" / "data").resolve()
    return str(beside_package if not beside_cwd.is_dir() and beside_package.is_dir() else beside_cwd)


CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"shared_data": shared_data_dir},
    # An environment states only the parameters it changes: its blocks are merged key by key onto
    # conf/base (nested keys included) instead of replacing whole top-level blocks.
    "merge_strategy": {"parameters": "soft"},
    # The Dask cluster of a run (conf/dask/dask.yml; qeu_kedro.dask_cluster).
    "config_patterns": {"dask": ["dask*", "dask*/**"]},
}

# InputChecksHook refuses an unknown --env and wrong parameters before anything runs.
# UnfinishedRunHook names, at the next run, the files a killed or failed run left behind.
# MlflowOutputsHook names and tags the MLflow run that kedro-mlflow opens (conf/base/mlflow.yml) and
# writes one nested run per pipeline x namespace under it (metrics, curves, figures, small models);
# does nothing when MLflow is not installed or tracking is off.
# DaskClusterHook starts a LocalCluster, or joins a scheduler, when the environment configures one
# (conf/dask/dask.yml).
HOOKS = (InputChecksHook(), UnfinishedRunHook(), MlflowOutputsHook(), DaskClusterHook())

# `kedro run` (and `python -m qeu_kedro`) create their session through this: a `--namespaces` name that no
# node of the run's pipelines is in is refused with the namespaces there are (Kedro filters before any hook).
SESSION_CLASS = ProjectSession
