"""Hostile clients and careless operators against real `modwatch` processes over real sockets (issue 14)."""

from __future__ import annotations

import psutil
import pytest

from faults.support import modwatch, stop
from isolation import free_port, wait_for


def listening_addresses(pid: int, port: int) -> set[str]:
    return {c.laddr.ip for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


@pytest.mark.parametrize("command", ["api --port {port}", "dashboard --port {port}", "worker --metrics-port {port}",
                                     "scheduler --metrics-port {port}"])
def test_every_server_listens_on_localhost_by_default(fault_env, tmp_path, command):
    port = free_port()
    process = modwatch(*command.format(port=port).split(), env=fault_env, log=tmp_path / "log")
    try:
        found = wait_for(lambda: listening_addresses(process.pid, port), f"`modwatch {command}` listening")
    finally:
        stop(process)
    assert found == {"127.0.0.1"}
