"""The Dask cluster of a run: a ``LocalCluster`` sized to the machine, or a running scheduler.

Configured by ``dask.yml`` (pattern ``dask*``, only the ``dask`` environment has one). With
no scheduler address the hook starts a ``LocalCluster`` for the run and closes it after; with
an address (``conf/local/dask.yml``, or Dask's own ``DASK_SCHEDULER_ADDRESS``) it connects a
client to that scheduler and leaves the cluster running. Nodes never see the client: they
build Dask collections and ``dask.compute`` them on the default client the hook set, or,
without one (tests, other environments), on Dask's threaded scheduler.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml
from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

ADDRESS_VARIABLE = "DASK_SCHEDULER_ADDRESS"


def cluster_settings(config_loader: Any, env: str | None) -> dict[str, Any] | None:
    """The ``dask`` block of the run's configuration, or None when the environment has none.

    ``conf/local/dask.yml`` (machine settings, never versioned) overrides it in any
    environment, so a scheduler address set there serves ``--env dask``;
    ``DASK_SCHEDULER_ADDRESS`` overrides both.
    """
    from kedro.config import MissingConfigException

    try:
        settings = dict((config_loader["dask"] or {}).get("dask") or {})
    except (KeyError, MissingConfigException):
        settings = {}
    if not settings.get("enabled"):
        return None
    local = Path(config_loader.conf_source) / "local" / "dask.yml"
    if env not in (None, "local") and local.is_file():
        settings.update((yaml.safe_load(local.read_text()) or {}).get("dask") or {})
    if os.environ.get(ADDRESS_VARIABLE):
        settings["scheduler_address"] = os.environ[ADDRESS_VARIABLE]
    return settings


LOOPBACK = "127.0.0.1"


def local_cluster_arguments(settings: dict[str, Any]) -> dict[str, Any]:
    """``distributed.LocalCluster`` arguments from ``settings["local_cluster"]``, every server on this machine.

    A null value keeps ``LocalCluster``'s default, except where that default listens beyond this
    machine: the scheduler's HTTP server (health and metrics; the dashboard pages need bokeh) is
    started even with ``dashboard_address=None``, on port 8787 of every interface when the cluster
    runs in-process, so it gets ``127.0.0.1:0`` (a free port); so do the in-process workers' HTTP
    servers, and worker processes get ``host: 127.0.0.1``. A host or address the settings name is kept,
    except a host for an in-process cluster, which has none.
    """
    kwargs = {key: value for key, value in (settings.get("local_cluster") or {}).items() if value is not None}
    kwargs.setdefault("dashboard_address", f"{LOOPBACK}:0")
    if kwargs.get("processes", True):
        kwargs.setdefault("host", LOOPBACK)  # scheduler, nannies and workers
    else:  # in-process: the scheduler talks over inproc://, which has no host (Dask refuses one)
        kwargs.pop("host", None)
        kwargs.setdefault("worker_dashboard_address", f"{LOOPBACK}:0")
    return kwargs


class _RoutineShuffleNotices(logging.Filter):
    """Drops the two notices distributed's scheduler logs as WARNING for every shuffle that starts and ends as it
    should (a groupby with ``split_out``: the ratings' pair check); its other warnings pass."""

    ROUTINE = ("Shuffle %s initialized by task", "Shuffle %s deactivated due to stimulus")

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(self.ROUTINE))


_SHUFFLE_LOGGER = "distributed.shuffle._scheduler_plugin"


def start_client(settings: dict[str, Any]) -> tuple[Any, Any]:
    """A ``distributed.Client`` (the default client from now on) and the ``LocalCluster`` it started, if any."""
    from distributed import Client, LocalCluster

    shuffle_logger = logging.getLogger(_SHUFFLE_LOGGER)  # the in-process scheduler's (a LocalCluster's)
    if not any(isinstance(f, _RoutineShuffleNotices) for f in shuffle_logger.filters):
        shuffle_logger.addFilter(_RoutineShuffleNotices())

    address = settings.get("scheduler_address")
    if address:
        client = Client(address, timeout=settings.get("connect_timeout", "30s"))
        logger.info(
            "Dask: connected to the scheduler at %s (%d workers)", address, len(client.scheduler_info()["workers"])
        )
        return client, None
    cluster = LocalCluster(**local_cluster_arguments(settings))
    client = Client(cluster)
    workers = client.scheduler_info()["workers"].values()
    logger.info(
        "Dask: started a LocalCluster at %s: %d workers, %d threads, %.1f GB memory limit per worker",
        cluster.scheduler_address,
        len(workers),
        sum(w["nthreads"] for w in workers),
        max((w.get("memory_limit") or 0) for w in workers) / 1e9,
    )
    return client, cluster


class DaskClusterHook:
    """Starts (or joins) the cluster before the pipeline runs and releases it after, also on error."""

    def __init__(self) -> None:
        self._settings: dict[str, Any] | None = None
        self._client: Any = None
        self._cluster: Any = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._settings = cluster_settings(context.config_loader, context.env)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        if self._settings is not None:
            self._client, self._cluster = start_client(self._settings)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._close()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None
