"""Serving the simulator with uvicorn, in the foreground or in a thread for tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from modwatch.simulator.app import create_app
from modwatch.simulator.state import Config, SimState


def uvicorn_config(state: SimState, host: str, port: int) -> uvicorn.Config:
    # uvicorn's own Date header is the only one: Mastodon.py misreads two as a rate-limit error.
    return uvicorn.Config(create_app(state), host=host, port=port, log_level="warning", access_log=False,
                          server_header=False, timeout_graceful_shutdown=1, lifespan="off")


@dataclass
class RunningSimulator:
    state: SimState
    server: uvicorn.Server
    thread: threading.Thread
    base_url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def start_in_thread(host: str = "127.0.0.1", port: int = 0, state: SimState | None = None, **config) -> RunningSimulator:
    """Start a real HTTP simulator on `port` (0 picks a free one); `config` are `Config` fields."""
    state = state or SimState(Config(**config))
    port = port or free_port(host)
    server = uvicorn.Server(uvicorn_config(state, host, port))
    thread = threading.Thread(target=server.run, name=f"simulator:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"simulator did not start on {host}:{port}")
        time.sleep(0.02)
    return RunningSimulator(state, server, thread, f"http://{host}:{port}")


@contextmanager
def running(host: str = "127.0.0.1", port: int = 0, **config) -> Iterator[RunningSimulator]:
    simulator = start_in_thread(host, port, **config)
    try:
        yield simulator
    finally:
        simulator.stop()
