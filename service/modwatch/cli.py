"""The `modwatch` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from modwatch.send_webhook import register as register_send_webhook
from modwatch.settings import ConfigError, Settings, get_settings
from modwatch.simulator.cli import register as register_simulator


def _settings_or_exit() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        raise SystemExit(f"modwatch: configuration error: {exc}") from None


def _start(process: str) -> Settings:
    from modwatch.telemetry import init_process

    settings = _settings_or_exit()
    init_process(process, settings)
    return settings


def cmd_api(args: argparse.Namespace) -> int:
    from modwatch.api.app import create_app
    from modwatch.api.server import serve
    from modwatch.heap import freeze_heap
    from modwatch.jobs.metric_series import start_at_zero
    from modwatch.storage.db import upgrade_database

    settings = _start("api")
    start_at_zero("api")
    upgrade_database()
    note_runtime_switches(settings)
    app = create_app(settings)
    freeze_heap()
    serve(app, settings, args.host, args.port)
    return 0


def note_runtime_switches(settings: Settings) -> None:
    """Audit a changed environment value and say which runtime overrides are in force; Redis down
    at start is no reason not to serve (the API answers 503 until it is back)."""
    import redis
    import structlog

    from modwatch.moderation import runtime

    try:
        runtime.note_environment(settings)
    except redis.RedisError as exc:
        structlog.get_logger("modwatch.api").warning("runtime_switches_unchecked", error=type(exc).__name__)


def cmd_worker(args: argparse.Namespace) -> int:
    from modwatch.connection import get_redis, wait_through_outages
    from modwatch.jobs.metric_series import start_at_zero
    from modwatch.jobs.worker import run_worker, serve_metrics

    settings = _start("worker")
    wait_through_outages(settings.worker_redis_outage_seconds)
    start_at_zero("worker")
    check_mastodon_version(settings)
    port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
    serve_metrics(port, "worker", settings.metrics_host)
    run_worker(settings, get_redis(), args.queues, burst=args.burst, simple=args.simple)
    return 0


def check_mastodon_version(settings: Settings) -> None:
    """At start: refuse a Mastodon too old for the admin API; only warn when it is unreachable (jobs retry)."""
    import structlog

    from modwatch.mastodon.client import MastodonClient
    from modwatch.mastodon.errors import IncompatibleVersionError, MastodonError

    if not settings.instance_base:
        return
    log = structlog.get_logger("modwatch.worker")
    try:
        version = MastodonClient.from_settings(settings).check_version()
    except IncompatibleVersionError as exc:
        raise SystemExit(f"modwatch: {exc}") from None
    except MastodonError as exc:
        log.warning("mastodon_unreachable_at_start", error=str(exc), instance=settings.instance_base)
    else:
        log.info("mastodon_version", version=version, instance=settings.instance_base)
        check_instance_rule_ids(settings, log)


def check_instance_rule_ids(settings: Settings, log) -> None:
    """At start: name every rule of the rules file whose instance rule ids the instance no longer lists."""
    from modwatch.mastodon.client import MastodonClient
    from modwatch.mastodon.errors import MastodonError
    from modwatch.moderation import instance_rules
    from modwatch.moderation.engine import RulesError

    try:
        log.info("instance_rule_ids", detail=instance_rules.check(MastodonClient.from_settings(settings), settings))
    except ValueError as exc:  # RulesError is one too: an unreadable rules file is named the same way
        log.error("instance_rule_ids_stale" if not isinstance(exc, RulesError) else "rules_file_unusable", error=str(exc))
    except MastodonError as exc:
        log.warning("instance_rules_unreadable", error=str(exc))


def cmd_scheduler(args: argparse.Namespace) -> int:
    from modwatch.connection import get_redis
    from modwatch.jobs.scheduler import run_scheduler
    from modwatch.jobs.worker import serve_metrics

    settings = _start("scheduler")
    port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
    serve_metrics(port, "scheduler", settings.metrics_host)
    run_scheduler(settings, get_redis(), burst=args.burst)
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    from modwatch.connection import get_redis
    from modwatch.heap import collect_less_often, freeze_heap
    from modwatch.jobs.enqueue import enqueue_stream_report
    from modwatch.jobs.worker import serve_metrics
    from modwatch.storage.db import upgrade_database
    from modwatch.stream.consumer import Consumer

    settings = _start("stream")
    check_mastodon_version(settings)
    upgrade_database()
    port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
    serve_metrics(port, "stream", settings.metrics_host)
    consumer = Consumer(settings, get_redis(), enqueue_stream_report)
    freeze_heap()
    collect_less_often()
    consumer.run()
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from modwatch.dashboard import serve_dashboard

    settings = _start("dashboard")
    serve_dashboard(settings, args.host, args.port)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from modwatch.run import run_all

    return run_all(args)


def cmd_check_config(args: argparse.Namespace) -> int:
    from modwatch.checks import check_config

    return check_config(_settings_or_exit(), connect=not args.offline)


def cmd_migrate(args: argparse.Namespace) -> int:
    from modwatch.storage.db import upgrade_database

    _settings_or_exit()
    upgrade_database()
    print("database is at the latest migration")
    return 0


def cmd_healthcheck(args: argparse.Namespace) -> int:
    from modwatch.checks import healthcheck

    return healthcheck(_settings_or_exit(), args.component)


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from modwatch.moderation.engine import RulesError, load_rules
    from modwatch.moderation.evaluation import CorpusError, load_corpus, misclassified, render, score_corpus, summary
    from modwatch.settings import DEFAULT_RULES_FILE

    rules_file = args.rules or DEFAULT_RULES_FILE
    try:
        rules = load_rules(rules_file)
        records = load_corpus(args.corpus)
    except (RulesError, CorpusError) as exc:
        print(f"modwatch eval: {exc}", file=sys.stderr)
        return 2
    threshold = args.threshold or rules.report_threshold or Settings.model_fields["report_threshold"].default
    scored = score_corpus(records, rules, threshold)
    result = summary(scored, rules, threshold)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result, str(args.corpus), str(rules_file), args.split))
    if args.errors:
        print("\n".join(["", *misclassified(scored)]))
    whole = result["overall"]["all"]
    below = [f"{name} {whole[name] or 0:.2f} < {floor}" for name, floor in (("precision", args.min_precision),
                                                                         ("recall", args.min_recall))
             if floor is not None and (whole[name] or 0) < floor]
    if below:
        print(f"modwatch eval: below the bar: {', '.join(below)}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modwatch", description="Moderation sidecar for Mastodon.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(func=handler)
        return command

    api = add("api", cmd_api, "Serve the HTTP API (webhooks, /jobs, /moderation, /metrics).")
    api.add_argument("--host", default="127.0.0.1", help="Address to listen on (a container passes 0.0.0.0).")
    api.add_argument("--port", type=int, default=8080)

    worker = add("worker", cmd_worker, "Run a worker on the given queues (default: all, in priority order).")
    worker.add_argument("queues", nargs="*", help="monitoring, webhooks, moderation")
    worker.add_argument("--burst", action="store_true", help="Quit when the queues are empty.")
    worker.add_argument("--simple", action="store_true", help="Run jobs in the worker process (no fork).")
    worker.add_argument("--metrics-port", type=int, default=None,
                        help="Override METRICS_PORT (default 9100, or the first free port from 9110; 0 disables).")

    scheduler = add("scheduler", cmd_scheduler, "Run the rq-scheduler leader for recurring jobs.")
    scheduler.add_argument("--burst", action="store_true", help="Schedule once and quit.")
    scheduler.add_argument("--metrics-port", type=int, default=None,
                           help="Override METRICS_PORT (default 9101, or the first free port from 9110; 0 disables).")

    stream = add("stream", cmd_stream, "Consume Mastodon's public streams (STREAMS) and analyse every post; "
                                       "one active consumer, the others stand by.")
    stream.add_argument("--metrics-port", type=int, default=None,
                        help="Override METRICS_PORT (default 9102, or the first free port from 9110; 0 disables).")

    dashboard = add("dashboard", cmd_dashboard, "Serve rq-dashboard behind HTTP basic auth.")
    dashboard.add_argument("--host", default="127.0.0.1", help="Address to listen on (a container passes 0.0.0.0).")
    dashboard.add_argument("--port", type=int, default=9181)

    run = add("run", cmd_run, "Run everything locally: API, worker, scheduler, dashboard (and simulator, Redis if needed).")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8080)
    run.add_argument("--dashboard-port", type=int, default=9181)
    run.add_argument("--simulator-port", type=int, default=3000)
    run.add_argument("--worker-metrics-port", type=int, default=9100)
    run.add_argument("--scheduler-metrics-port", type=int, default=9101)
    run.add_argument("--stream-metrics-port", type=int, default=9102)
    run.add_argument("--redis-probe-url", default="redis://127.0.0.1:6379/0",
                     help="Without REDIS_URL: use this Redis if it answers, else start an embedded one.")

    check = add("check-config", cmd_check_config, "Validate settings and check Redis, database and Mastodon.")
    check.add_argument("--offline", action="store_true", help="Only validate settings; connect to nothing.")

    add("migrate", cmd_migrate, "Apply database migrations.")

    evaluate = add("eval", cmd_eval, "Measure a rules file on a labelled corpus: precision, recall and F1 per rule, "
                                     "spam family, benign kind and overall (nothing is filed; no service needed).")
    evaluate.add_argument("corpus", type=Path, help="JSONL corpus, e.g. corpus/labelled.jsonl (format: docs/detection.md)")
    evaluate.add_argument("--rules", type=Path, default=None, help="Rules file (default: the built-in default rules).")
    evaluate.add_argument("--threshold", type=float, default=None, help="Report threshold (default: the rules file's, else 10).")
    evaluate.add_argument("--split", choices=["all", "train", "holdout"], default="all", help="Split of the per-rule table.")
    evaluate.add_argument("--json", action="store_true", help="Print the numbers as JSON.")
    evaluate.add_argument("--errors", action="store_true", help="Also list every missed spam account and false positive.")
    evaluate.add_argument("--min-precision", type=float, default=None, help="Exit 1 when overall precision is lower (for CI).")
    evaluate.add_argument("--min-recall", type=float, default=None, help="Exit 1 when overall recall is lower (for CI).")

    health = add("healthcheck", cmd_healthcheck, "Exit 0 when a component on this host is healthy (for containers).")
    health.add_argument("component", choices=["api", "worker", "scheduler", "stream"])

    register_simulator(sub)
    register_send_webhook(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except ConfigError as exc:
        print(f"modwatch: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
