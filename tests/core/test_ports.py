"""Ports: each component's own default metrics port, a spare one for a second process on a host, and one
line naming the setting when a chosen port is taken (never a traceback)."""

import json
import socket
import subprocess
import sys
import textwrap

import httpx

from core.support import subprocess_env
from isolation import free_port


def held_port() -> socket.socket:
    """A listening socket on a free port, as another process on the host would hold it."""
    sock = socket.socket()
    sock.bind(("0.0.0.0", 0))
    sock.listen()
    return sock


def serve_with_defaults(component: str, default: int, spares: range) -> subprocess.Popen:
    """`serve_metrics` in a child process whose defaults are ports this test chose (the real ones, 9100 and
    9101, may be in use by anything on a shared machine)."""
    code = textwrap.dedent(f"""
        import sys, time
        from modwatch.jobs import worker
        from modwatch.telemetry.logging import configure
        configure("INFO", "json")
        worker.DEFAULT_METRICS_PORTS[{component!r}] = {default}
        worker.SPARE_METRICS_PORTS = range({spares.start}, {spares.stop})
        print(worker.serve_metrics(None, {component!r}), flush=True)
        time.sleep(60)
    """)
    return subprocess.Popen([sys.executable, "-c", code], env=subprocess_env({"LOG_FORMAT": "json"}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_worker_and_scheduler_have_their_own_default_metrics_ports():
    from modwatch.jobs.worker import DEFAULT_METRICS_PORTS, SPARE_METRICS_PORTS

    assert DEFAULT_METRICS_PORTS["worker"] == 9100 and DEFAULT_METRICS_PORTS["scheduler"] == 9101
    ports = list(DEFAULT_METRICS_PORTS.values())
    assert len(set(ports)) == len(ports)  # every component its own
    assert not set(ports) & set(SPARE_METRICS_PORTS)  # a second worker never takes another component's default


def test_a_second_process_whose_default_port_is_taken_serves_on_a_spare_port_and_says_so():
    taken = held_port()
    default, spare = taken.getsockname()[1], free_port()
    child = serve_with_defaults("worker", default, range(spare, spare + 1))
    try:
        assert child.stdout.readline().strip() == str(spare)
        assert httpx.get(f"http://127.0.0.1:{spare}/metrics").status_code == 200
    finally:
        child.kill()
        _, stderr = child.communicate()
        taken.close()
    warning = next(json.loads(line) for line in stderr.splitlines() if "metrics_default_port_taken" in line)
    assert warning["port"] == spare and warning["default_port"] == default
    assert "METRICS_PORT" in warning["hint"]


def test_default_and_spare_ports_all_taken_is_one_line_naming_the_variable():
    taken = held_port()
    port = taken.getsockname()[1]
    child = serve_with_defaults("scheduler", port, range(port, port + 1))
    try:
        _, stderr = child.communicate(timeout=60)
    finally:
        taken.close()
    assert child.returncode == 1
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("modwatch scheduler: ports ")
    assert "METRICS_PORT" in stderr


def test_a_chosen_metrics_port_that_is_taken_stops_the_worker_with_one_line(core_env):
    taken = held_port()
    port = taken.getsockname()[1]
    try:
        result = subprocess.run([sys.executable, "-m", "modwatch.cli", "worker", "--burst"],
                                env=subprocess_env({"METRICS_PORT": str(port)}),
                                capture_output=True, text=True, timeout=60)
    finally:
        taken.close()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"modwatch worker: cannot serve metrics on port {port} ")
    assert "METRICS_PORT or --metrics-port" in last


def test_modwatch_run_names_a_taken_port_and_the_option_that_moves_it(tmp_path):
    taken = held_port()
    port = taken.getsockname()[1]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "modwatch.cli", "run", "--port", str(free_port()), "--dashboard-port", str(port)],
            env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    finally:
        taken.close()
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"port {port} (rq-dashboard) is not available" in result.stderr
    assert "make run ARGS='--dashboard-port " in result.stderr
    assert not (tmp_path / "var").exists()  # checked before anything started
