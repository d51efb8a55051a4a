"""docker-compose.yml and observability/ checked statically (no Docker engine here)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from oncall.support import DASHBOARDS, REPO, known_series_names, metric_names_in

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SCHEMA = json.loads((Path(__file__).with_name("compose-spec.json")).read_text())
MODWATCH_SERVICES = sorted(name for name, service in SERVICES.items() if service.get("build"))
OBSERVABILITY = REPO / "observability"


def host_mounts(service: dict) -> dict[str, Path]:
    """container path -> host path of the service's bind mounts (relative to the compose file)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (REPO / source).resolve()
    return mounts


def published_ports(service: dict) -> list[str]:
    return [str(port).rsplit(":", 1)[0] for port in service.get("ports", [])]


def test_compose_file_matches_the_compose_specification():
    errors = [error.message for error in jsonschema.Draft7Validator(SCHEMA).iter_errors(COMPOSE)]
    assert not errors


def test_the_schema_rejects_what_compose_rejects():
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["worker"]["healthchek"] = broken["services"]["worker"].pop("healthcheck")
    broken["services"]["api"]["depends_on"] = {"redis": {"condition": "service_ready"}}
    assert len(list(jsonschema.Draft7Validator(SCHEMA).iter_errors(broken))) == 2


def test_every_mounted_host_path_exists():
    for name, service in SERVICES.items():
        for target, source in host_mounts(service).items():
            assert source.exists(), f"{name} mounts missing {source} at {target}"


def test_modwatch_services_only_set_known_variables():
    from modwatch.settings import env_names

    known = env_names()
    for name in MODWATCH_SERVICES:
        for variable in SERVICES[name]["environment"]:
            assert variable in known or variable.startswith("OTEL_"), f"{name} sets unknown {variable}"


def test_modwatch_services_share_one_environment_block():
    raw = (REPO / "docker-compose.yml").read_text()
    assert "x-modwatch-env: &modwatch-env" in raw
    shared = COMPOSE["x-modwatch-env"]
    for name in MODWATCH_SERVICES:
        assert SERVICES[name]["environment"].items() >= shared.items(), name


def test_host_ports_do_not_collide():
    ports = [port for service in SERVICES.values() for port in published_ports(service)]
    assert len(ports) == len(set(ports)), ports


def test_worker_scales():
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "ports" not in worker


def test_images_are_pinned():
    for name, service in SERVICES.items():
        if "build" in service:
            continue
        image = service["image"]
        assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), f"{name}: {image}"


def test_healthchecks_test_the_real_thing():
    def check(name):
        return " ".join(SERVICES[name]["healthcheck"]["test"])

    assert "/readyz" in check("api")
    assert "modwatch healthcheck worker" in check("worker")
    assert "modwatch healthcheck scheduler" in check("scheduler")
    assert "pg_isready" in check("postgres")
    assert "redis-cli ping" in check("redis")


def test_data_lives_on_volumes():
    assert "--appendonly" in SERVICES["redis"]["command"] and "redis-data:/data" in SERVICES["redis"]["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]


def test_simulator_is_demo_only_and_the_app_builds_from_the_dockerfile():
    assert SERVICES["simulator"]["profiles"] == ["demo"]
    for name in MODWATCH_SERVICES:
        assert SERVICES[name]["build"] == "."
    dockerfile = (REPO / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM python:3.11-slim" in dockerfile
    assert "pip install --constraint requirements.lock ." in dockerfile  # the versions CI tested


def test_prometheus_keeps_exemplars_and_discovers_workers():
    assert "--enable-feature=exemplar-storage" in SERVICES["prometheus"]["command"]
    config = yaml.safe_load((OBSERVABILITY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    alert_config = yaml.safe_load((REPO / "alerts" / "config.yaml").read_text())
    assert {alert_config["api_job"], alert_config["worker_job"], alert_config["scheduler_job"]} <= set(jobs)
    assert jobs["modwatch-worker"]["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": 9100, "refresh_interval": "15s"}]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian: prometheus)")
def test_promtool_accepts_the_prometheus_config(tmp_path):
    """Rule files are container paths: point them at the files compose mounts there."""
    mounts = host_mounts(SERVICES["prometheus"])
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    config["rule_files"] = [str(mounts[path]) for path in config["rule_files"]]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config))
    result = subprocess.run(["promtool", "check", "config", str(copy)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Checking {mounts['/etc/prometheus/rules/modwatch.rules.yaml']}" in result.stdout  # rules were loaded


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool is not installed (Debian: prometheus-alertmanager)")
def test_amtool_accepts_the_alertmanager_config():
    path = host_mounts(SERVICES["alertmanager"])["/etc/alertmanager/alertmanager.yml"]
    result = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_are_built_from_their_sources():
    result = subprocess.run([sys.executable, str(REPO / "dashboards" / "build.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _provisioned_datasources() -> dict[str, dict]:
    sources = {}
    for path in (OBSERVABILITY / "grafana" / "provisioning" / "datasources").glob("*.yaml"):
        for source in yaml.safe_load(path.read_text())["datasources"]:
            sources[source["uid"]] = source
    return sources


def _datasource_uids(node) -> set[str]:
    """uids of every `datasource` reference in a dashboard JSON tree."""
    if isinstance(node, list):
        return set().union(*map(_datasource_uids, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = set().union(*map(_datasource_uids, node.values())) if node else set()
    if isinstance(node.get("datasource"), dict):
        found.add(node["datasource"]["uid"])
    return found


def test_dashboards_use_provisioned_datasources():
    provisioned = _provisioned_datasources()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        default = next(v for v in dashboard["templating"]["list"] if v["name"] == "datasource")["current"]["value"]
        uids = _datasource_uids(dashboard) | set(re.findall(r"uid%22%3A%22(\w+)%22", path.read_text()))  # Explore links
        uids = {default if uid == "${datasource}" else uid for uid in uids} - {"-- Grafana --"}
        assert uids <= set(provisioned), f"{path.name} uses unprovisioned {uids - set(provisioned)}"
        assert provisioned[default]["type"] == "prometheus"


def test_exemplars_and_traces_link_prometheus_and_tempo():
    provisioned = _provisioned_datasources()
    assert set(provisioned) == {"prometheus", "tempo"}
    prometheus, tempo = provisioned["prometheus"]["jsonData"], provisioned["tempo"]["jsonData"]
    assert {"name": "trace_id", "datasourceUid": "tempo"} in prometheus["exemplarTraceIdDestinations"]
    assert tempo["tracesToMetrics"]["datasourceUid"] == "prometheus"
    for query in tempo["tracesToMetrics"]["queries"]:
        assert metric_names_in(query["query"]) <= known_series_names(), query["name"]


def test_grafana_loads_the_mounted_dashboards():
    mounts = host_mounts(SERVICES["grafana"])
    provider_file = mounts["/etc/grafana/provisioning"] / "dashboards" / "modwatch.yaml"
    path = yaml.safe_load(provider_file.read_text())["providers"][0]["options"]["path"]
    assert mounts[path] == REPO / "dashboards"


def test_traces_flow_collector_to_tempo():
    collector = yaml.safe_load((OBSERVABILITY / "otel-collector" / "config.yaml").read_text())
    pipeline = collector["service"]["pipelines"]["traces"]
    assert set(pipeline["receivers"]) <= set(collector["receivers"])
    assert set(pipeline["exporters"]) <= set(collector["exporters"]) and "debug" in pipeline["exporters"]
    tempo_exporter = collector["exporters"]["otlp/tempo"]["endpoint"]
    tempo = yaml.safe_load((OBSERVABILITY / "tempo" / "tempo.yaml").read_text())
    tempo_grpc = tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert tempo_exporter == f"tempo:{tempo_grpc.rsplit(':', 1)[1]}"
    endpoint = COMPOSE["x-modwatch-env"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint == "http://otel-collector:" + collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rsplit(":", 1)[1]


def _modwatch_commands() -> list[tuple[str, list[str]]]:
    """(where, argv after `modwatch`) for every modwatch command and healthcheck in the compose file."""
    found = []
    for name, service in SERVICES.items():
        candidates = [service.get("command", []), service.get("healthcheck", {}).get("test", [])[1:]]
        for argv in candidates:
            if argv[:2] == ["sh", "-c"]:
                argv = shlex.split(argv[2].removeprefix("exec "))
            if argv[:1] == ["modwatch"]:
                found.append((name, argv[1:]))
    return found


def test_compose_runs_commands_the_cli_knows():
    from modwatch.cli import build_parser

    commands = _modwatch_commands()
    assert {argv[0] for _, argv in commands} >= {"api", "worker", "scheduler", "dashboard", "simulate", "healthcheck"}
    for where, argv in commands:
        try:
            build_parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"{where}: `modwatch {' '.join(argv)}` is not a valid command")


# Safe by default (issue 14, docs/security.md): one static check per rule.
API_PORT = "8080"
REQUIRED = re.compile(r"^\$\{([A-Z_]+):\?[^}]+\}$")


def interpolated(value: str) -> list[str]:
    """Every ${...} expression in a compose value."""
    return re.findall(r"\$\{[^}]+\}", str(value))


def test_only_the_api_port_is_published_beyond_localhost():
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            host_side = str(port).rsplit(":", 1)[0]
            if name == "api" and host_side == API_PORT:
                continue
            assert host_side.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert SERVICES["api"]["ports"] == [f"{API_PORT}:{API_PORT}"]


def test_prometheus_admin_and_lifecycle_apis_are_off():
    flags = " ".join(SERVICES["prometheus"]["command"])
    assert "--web.enable-lifecycle" not in flags and "--web.enable-admin-api" not in flags
    for name, service in SERVICES.items():  # nothing relies on a reload endpoint either
        assert "/-/reload" not in json.dumps(service) and "/-/quit" not in json.dumps(service), name


SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY")


def test_no_default_passwords_every_secret_is_required():
    found = 0
    for where, block in [("x-modwatch-env", COMPOSE["x-modwatch-env"])] + [
            (name, service.get("environment", {})) for name, service in SERVICES.items()]:
        for variable, value in block.items():
            for expression in interpolated(value):
                inner = expression[2:-1].split(":")[0].split("-")[0]
                if SECRET_NAME.search(inner) and inner != "DASHBOARD_PASSWORD":  # empty: API_KEY (below)
                    found += 1
                    assert REQUIRED.match(expression), f"{where}.{variable}: {expression} has a default or may be empty"
            if SECRET_NAME.search(variable) and not interpolated(value):
                pytest.fail(f"{where}.{variable} is a literal secret")
    assert found >= 6  # API_KEY, WEBHOOK_SECRET, MASTODON_ACCESS_TOKEN, POSTGRES_PASSWORD (x2), GRAFANA_ADMIN_PASSWORD
    grafana = SERVICES["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false" and "GF_AUTH_ANONYMOUS_ORG_ROLE" not in grafana


def test_dashboard_password_falls_back_to_the_required_api_key_not_a_default():
    from modwatch.settings import Settings

    assert COMPOSE["x-modwatch-env"]["DASHBOARD_PASSWORD"] == "${DASHBOARD_PASSWORD:-}"
    assert "API_KEY" in Settings.model_fields["dashboard_password"].description


def test_every_container_runs_as_a_non_root_user():
    dockerfile_users = re.findall(r"^USER\s+(\S+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert dockerfile_users and dockerfile_users[-1] not in ("root", "0")
    for name, service in SERVICES.items():
        if service.get("build"):
            assert "user" not in service, name  # the Dockerfile's user
            continue
        user = str(service.get("user", ""))
        assert user, f"{name} runs as its image's user; set a non-root `user:`"
        assert user.split(":")[0] not in ("0", "root"), f"{name} runs as root"


def test_instance_base_is_required_and_the_demo_names_the_simulator_explicitly():
    shared = COMPOSE["x-modwatch-env"]
    assert REQUIRED.match(shared["INSTANCE_BASE"]) and "simulator:3000" in shared["INSTANCE_BASE"]
    assert REQUIRED.match(shared["MASTODON_ACCESS_TOKEN"])
    header = (REPO / "docker-compose.yml").read_text().split("name: modwatch")[0]
    assert "INSTANCE_BASE=http://simulator:3000" in header and "--profile demo" in header
