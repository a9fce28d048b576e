"""Project hooks: check the configuration before anything runs; record outputs in MLflow.

:class:`InputChecksHook` stops a run with a clear message before any node runs when the
``--env`` names no configuration folder, or when the parameters have an unknown key, a wrong
type or a value out of range (:mod:`qeu_kedro.parameters`).

:class:`UnfinishedRunHook` keeps a record of what a run has written until it finishes: the next
run names the files a killed or failed run left behind, which may not match each other.

:class:`MlflowOutputsHook` records every node's metrics, figures and small models in the active MLflow run.

kedro-mlflow (its own hook, registered by the plugin) opens one MLflow run per ``kedro run`` and
logs the parameters. The pipelines write their metrics as plain JSON dicts (``*metrics*``,
``*summary*``) and their figures as matplotlib figures through the catalog; this hook mirrors those
outputs into the run, so that no pipeline needs an MLflow-specific dataset and each stays runnable
without MLflow.

Names keep the dataset name, namespace included, so ``base`` and ``finetuned`` never collide:
``base.ridge_metrics`` → metrics ``base.ridge_metrics.r2_test`` …, figure
``figures/base/top_features_scatter.png``, model ``models/base/ridge_model.json``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

# MLflow sends usage telemetry unless told not to (DO_NOT_TRACK=1 does not count: it wants "true").
# The project runs offline and sends nothing: opt out before MLflow starts its client, and drop a
# client already started by an earlier import (the kedro CLI loads kedro-mlflow's commands first).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
if "mlflow.telemetry.client" in sys.modules:
    sys.modules["mlflow.telemetry.client"].set_telemetry_client()

# MLflow's allowed key characters; anything else becomes "_".
_KEY_UNSAFE = re.compile(r"[^\w\-. /:]")
# Outputs whose name contains one of these are reports: their numbers become metrics.
REPORT_WORDS = ("metrics", "summary")
# MLflow's limit for a metric key.
_MAX_KEY = 250


def numeric_leaves(value: Any, prefix: str) -> Iterator[tuple[str, float]]:
    """Yield ``(dotted.key, float)`` for every finite number inside nested dicts and lists."""
    # bool is an int subclass; a flag is not a measurement.
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        number = float(value)
        if math.isfinite(number):
            yield prefix, number
        return
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalar
        yield from numeric_leaves(value.item(), prefix)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from numeric_leaves(item, f"{prefix}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from numeric_leaves(item, f"{prefix}.{i}")


def metric_key(name: str) -> str:
    """An MLflow-safe metric key."""
    return _KEY_UNSAFE.sub("_", name)[:_MAX_KEY]


def _is_figure(value: Any) -> bool:
    # Checked by class name so that start-up never imports matplotlib.
    return any(cls.__module__.startswith("matplotlib.figure") and cls.__name__ == "Figure" for cls in type(value).__mro__)


def figures_in(value: Any, stem: str) -> Iterator[tuple[str, Any]]:
    """Yield ``(artifact_stem, figure)`` for a figure or a dict/list of figures (as MatplotlibDataset takes)."""
    if _is_figure(value):
        yield stem, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if _is_figure(item):
                yield f"{stem}_{key}", item
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if _is_figure(item):
                yield f"{stem}_{i}", item


def _artifact_path(dataset_name: str, kind: str) -> tuple[str, str]:
    """``base.top_features_scatter`` → (``figures/base``, ``top_features_scatter``)."""
    *namespace, leaf = dataset_name.split(".")
    return "/".join([kind, *namespace]), leaf


def prepare_tracking_store(context: Any) -> None:
    """Create the SQLite tracking store and the experiment under a file lock, before kedro-mlflow uses them.

    Two ``kedro run`` started at once on a fresh clone would both create MLflow's schema
    (``duplicate column name``, alembic ``CommandError``); under an exclusive lock on
    ``mlflow.db.lock`` the first creates it and the others find it done. The set-up is
    kedro-mlflow's own (``KedroMlflowConfig.setup``): kedro-mlflow repeats it right after, at no cost.
    """
    try:
        import fcntl

        from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig
    except ImportError:  # no kedro-mlflow (or not POSIX): nothing to prepare
        return
    loader = context.config_loader
    if "mlflow" not in loader.config_patterns:
        loader.config_patterns.update({"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]})
    try:
        conf = loader["mlflow"]
    except Exception:  # noqa: BLE001 - no mlflow.yml: kedro-mlflow's defaults, its own business
        return
    uri = str(((conf or {}).get("server") or {}).get("mlflow_tracking_uri") or "")
    if not uri.startswith("sqlite:///"):
        return
    config = KedroMlflowConfig.model_validate({**conf})
    if config.tracking.experiment.name is None:
        config.tracking.experiment.name = context._package_name
    database = Path(uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            config.setup(context)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class MlflowOutputsHook:
    """After each node, log its ``*metrics*`` / ``*summary*`` dicts, its figures and its small JSON models."""

    # tryfirst: before kedro-mlflow's own after_context_created reads conf/base/mlflow.yml.
    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        """Register ``${qeu.project_path:}`` (used by mlflow.yml) as this project's absolute root."""
        from omegaconf import OmegaConf

        # A relative "sqlite:///mlflow.db" would follow the working directory, and MLflow caches
        # stores by URI, so two projects in one process would share the first one's database.
        root = str(Path(context.project_path).resolve())
        OmegaConf.register_new_resolver("qeu.project_path", lambda: root, replace=True)
        prepare_tracking_store(context)

    @hook_impl
    def after_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any], outputs: dict[str, Any], is_async: bool) -> None:
        try:
            import mlflow
        except ImportError:  # the project runs without MLflow too
            return
        # No active run: kedro-mlflow is not installed, or tracking is disabled for this pipeline.
        if mlflow.active_run() is None:
            return
        for name, value in outputs.items():
            try:
                self._log_output(mlflow, name, value)
            except Exception as err:  # noqa: BLE001 - tracking must never fail a run
                logger.warning("MLflow: could not log output '%s' of node '%s': %s", name, node.name, err)

    @staticmethod
    def _log_output(mlflow: Any, name: str, value: Any) -> None:
        leaf = name.rsplit(".", 1)[-1]
        if any(word in leaf for word in REPORT_WORDS) and isinstance(value, Mapping):
            metrics = {metric_key(k): v for k, v in numeric_leaves(value, name)}
            if metrics:
                mlflow.log_metrics(metrics)
                # The whole report too: strings (labels, model names) and non-finite values stay readable.
                folder, stem = _artifact_path(name, "metrics")
                mlflow.log_dict(dict(value), f"{folder}/{stem}.json")
                logger.info("MLflow: logged %d metrics of '%s'", len(metrics), name)
            return
        figures = list(figures_in(value, leaf))
        if figures:
            folder, _ = _artifact_path(name, "figures")
            for stem, figure in figures:
                mlflow.log_figure(figure, f"{folder}/{stem}.png")
            logger.info("MLflow: logged %d figure(s) of '%s'", len(figures), name)
            return
        # Small models the project writes as JSON (e.g. ridge_model: coefficients); model folders
        # of hundreds of MB stay in data/06_models and are not copied into every run.
        if leaf.endswith("_model") and isinstance(value, Mapping):
            folder, stem = _artifact_path(name, "models")
            mlflow.log_dict(dict(value), f"{folder}/{stem}.json")
            logger.info("MLflow: logged model '%s'", name)


class InputChecksHook:
    """Refuse a run whose environment or parameters are wrong, before kedro-mlflow or any node starts."""

    def __init__(self) -> None:
        self._conf_source: str | None = None
        self._envs: list[str] = []

    # tryfirst: before kedro-mlflow reads the (maybe missing) environment's mlflow.yml.
    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        """Fail on an ``--env`` without a folder under ``conf/``, listing the environments there are."""
        import difflib

        loader = context.config_loader
        conf_source = Path(loader.conf_source)
        base_env = getattr(loader, "base_env", None) or "base"
        env = context.env or getattr(loader, "default_run_env", None) or "local"
        self._conf_source = str(conf_source)
        self._envs = [base_env] if env == base_env else [base_env, env]
        if conf_source.is_dir() and not (conf_source / env).is_dir():
            names = sorted(p.name for p in conf_source.iterdir() if p.is_dir() and not p.name.startswith("."))
            close = difflib.get_close_matches(env, names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ValueError(
                f"Unknown configuration environment '{env}' (--env): there is no folder {conf_source / env}.{hint} "
                f"Environments: {', '.join(n for n in names if n != base_env)}."
            )

    # tryfirst: before kedro-mlflow opens a run and logs the parameters.
    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Check the parameters of the blocks this run uses (and every ``--params`` key)."""
        from qeu_kedro.parameters import base_parameters, check_parameters, sources

        if self._conf_source is None:
            return
        params = catalog.load("parameters")
        runtime = run_params.get("runtime_params") or {}
        used = {name.split(":", 1)[1].split(".")[0] for name in pipeline.inputs() if name.startswith("params:")}
        if "parameters" in pipeline.inputs():
            used = set(params)
        used |= {str(key).split(".")[0] for key in runtime}
        check_parameters(
            params,
            base_parameters(self._conf_source, self._envs[0]),
            blocks=used,
            source_of=sources(self._conf_source, self._envs, runtime),
        )


class UnfinishedRunHook:
    """Record each run's saved files in ``data/.runs/<run id>.json`` until the run ends well.

    The record is created with the first file the run saves (a run that writes nothing leaves none).

    A run that fails keeps its record; a killed run cannot remove it. The next run names
    what such a run wrote (e.g. the model inputs of one run beside the model of another)
    in a warning, then drops the record. Records of runs still alive (parallel runs) are left alone.
    """

    def __init__(self) -> None:
        self._record: Path | None = None
        self._catalog: Any = None
        self._entry: dict[str, Any] = {}

    @staticmethod
    def _folder(project_path: str) -> Path:
        return Path(project_path) / "data" / ".runs"

    def _write(self) -> None:
        import json

        if self._record is None or not self._entry.get("written"):
            return
        self._record.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._record.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._entry, indent=1))
        os.replace(tmp, self._record)

    @hook_impl(trylast=True)  # after the parameter check: a refused run starts no record
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        import json
        import time

        from qeu_kedro.datasets._atomic import _alive

        folder = self._folder(run_params["project_path"])
        for old in sorted(folder.glob("*.json")):
            try:
                entry = json.loads(old.read_text())
            except ValueError:
                entry = {}
            if entry.get("pid") and _alive(int(entry["pid"])) and entry.get("pid") != os.getpid():
                continue  # a run going on in parallel
            if entry.get("written"):
                logger.warning(
                    "The run %s started %s did not finish (%s); it wrote %s. These files may not match each other "
                    "or the other outputs: re-run the pipelines that write them (%s).",
                    entry.get("run_id"), entry.get("started"), entry.get("failed") or "killed",
                    ", ".join(f"{w['dataset']} ({w['filepath']})" for w in entry["written"]),
                    ", ".join(entry.get("pipelines") or ["__default__"]),
                )
            old.unlink(missing_ok=True)
        self._catalog = catalog
        self._record = folder / f"{str(run_params['run_id']).replace(':', '_')}.json"
        self._entry = {"run_id": run_params["run_id"], "pid": os.getpid(), "pipelines": run_params.get("pipeline_names"),
                       "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "written": []}
        # The record file appears with the first saved file: a run refused before it writes anything leaves nothing.

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        if self._record is None:
            return
        try:
            filepath = getattr(self._catalog[dataset_name], "_filepath", None)
        except Exception:  # noqa: BLE001 - recording must never fail a run
            filepath = None
        if filepath is None:
            return  # in memory: nothing left behind
        self._entry["written"].append({"dataset": dataset_name, "filepath": str(filepath)})
        self._write()

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], run_result: Any, pipeline: Any, catalog: Any) -> None:
        if self._record is not None:
            self._record.unlink(missing_ok=True)
        self._record = None

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        if self._record is None:
            return
        self._entry["failed"] = f"failed: {type(error).__name__}"
        self._entry["pid"] = None  # over: the next run reports it even from this process
        self._write()
        self._record = None
