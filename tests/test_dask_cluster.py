"""The Dask cluster a run starts (``--env dask``) listens on this machine only, on free ports."""

import psutil
import pytest
import yaml

from qeu_kedro.dask_cluster import local_cluster_arguments, start_client
from tests.conftest import DASK_IN_PROCESS, REPO

pytest.importorskip("distributed")
SHIPPED = yaml.safe_load((REPO / "conf" / "dask" / "dask.yml").read_text())["dask"]


def listening_addresses() -> set[tuple[str, int]]:
    """(ip, port) of every listening TCP socket of this process and its children (the worker processes)."""
    me = psutil.Process()
    sockets = set()
    for process in (me, *me.children(recursive=True)):
        sockets |= {
            (c.laddr.ip, c.laddr.port) for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
        }
    return sockets


def servers_of(settings: dict) -> set[tuple[str, int]]:
    before = listening_addresses()
    client, cluster = start_client(settings)
    try:
        return listening_addresses() - before
    finally:
        client.close()
        cluster.close()


@pytest.mark.parametrize(
    "settings",
    [
        SHIPPED,
        {"local_cluster": {**DASK_IN_PROCESS["local_cluster"], "n_workers": 1}},
        {"local_cluster": {**SHIPPED["local_cluster"], "processes": False, "n_workers": 1, "host": "127.0.0.1"}},
    ],
    ids=["shipped-dask-env", "in-process", "shipped-switched-to-in-process-with-a-host"],
)
def test_every_server_of_a_local_cluster_is_on_127_0_0_1_and_a_free_port(settings):
    servers = servers_of(settings)
    assert servers, "the scheduler's HTTP server at least"
    assert {ip for ip, _ in servers} == {"127.0.0.1"}, servers
    # not Dask's fixed 8787: two runs at once do not fight over it
    assert 8787 not in {port for _, port in servers}, servers


def test_a_host_or_address_the_settings_name_is_kept():
    kwargs = local_cluster_arguments(
        {"local_cluster": {"host": "10.0.0.5", "dashboard_address": ":8790", "n_workers": None}}
    )
    assert kwargs == {"host": "10.0.0.5", "dashboard_address": ":8790"}  # null: LocalCluster's own default
    in_process = local_cluster_arguments({"local_cluster": {"processes": False}})
    assert "host" not in in_process and in_process["worker_dashboard_address"] == "127.0.0.1:0"
    # an in-process cluster has no host (inproc://): Dask would refuse to start with one
    assert "host" not in local_cluster_arguments({"local_cluster": {"processes": False, "host": "127.0.0.1"}})


def test_a_shuffle_that_starts_and_ends_as_it_should_logs_no_warning(caplog):
    """The ratings' pair check (a groupby with split_out) made distributed's scheduler log two WARNING lines per
    run, 'Shuffle ... initialized by task' and '... deactivated due to stimulus', though nothing was wrong."""
    import logging

    import dask.dataframe as dd
    import pandas as pd

    client, cluster = start_client({"local_cluster": {**DASK_IN_PROCESS["local_cluster"], "n_workers": 1}})
    try:
        frame = dd.from_pandas(pd.DataFrame({"k": range(200), "n": 1}), npartitions=4)
        with caplog.at_level(logging.INFO, logger="distributed"):
            assert frame.groupby("k")["n"].sum(split_out=4).compute().sum() == 200
    finally:
        client.close()
        cluster.close()
    shuffle = [r for r in caplog.records if r.name.startswith("distributed.shuffle")]
    assert not [r.getMessage() for r in shuffle if r.levelno >= logging.WARNING]
    logging.getLogger("distributed.shuffle._scheduler_plugin").warning("Shuffle x failed: a real warning")
    assert "a real warning" in caplog.text  # other warnings still pass
