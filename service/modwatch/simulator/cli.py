"""`modwatch simulate`: run the Mastodon API simulator."""

from __future__ import annotations

import argparse
import os
import threading

from modwatch.simulator.state import DEFAULT_ADMIN_TOKEN, DEFAULT_USER_TOKEN, Config, SimState
from modwatch.simulator.webhooks import EVENTS, send_webhooks


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("simulate", help="run the Mastodon API simulator",
                                   description="Serve a seeded, simulated Mastodon API (see docs/simulator.md).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1, help="population and fault seed (default 1)")
    parser.add_argument("--accounts", type=int, default=200, help="seeded accounts (default 200)")
    # Read from the environment first, like --webhook-secret, so a token never shows in process arguments.
    parser.add_argument("--admin-token", default=os.environ.get("SIMULATOR_ADMIN_TOKEN", DEFAULT_ADMIN_TOKEN),
                        help=f"admin bearer token (default: SIMULATOR_ADMIN_TOKEN, else {DEFAULT_ADMIN_TOKEN})")
    parser.add_argument("--token", default=DEFAULT_USER_TOKEN, help=f"non-admin bearer token (default {DEFAULT_USER_TOKEN})")
    parser.add_argument("--ratelimit", type=int, default=300, help="requests per window per token (default 300)")
    parser.add_argument("--ratelimit-period", type=int, default=300, help="window length in seconds (default 300)")
    parser.add_argument("--paging-limit", type=int, default=300,
                        help="requests with min_id/max_id/since_id/page per user per paging window (default 300)")
    parser.add_argument("--paging-period", type=int, default=900, help="paging window in seconds (default 900)")
    parser.add_argument("--reports-per-day", type=int, default=400, help="reports one account may file per day")
    parser.add_argument("--growth-per-minute", type=float, default=0.0, help="new accounts/statuses arriving per minute")
    parser.add_argument("--version", dest="mastodon_version", default="4.3.2", help="Mastodon version to announce")
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every answer")
    parser.add_argument("--error-ratio", type=float, default=0.0, help="share of answers that are 503")
    parser.add_argument("--ratelimit-ratio", type=float, default=0.0, help="share of answers that are 429")
    parser.add_argument("--timeout-ratio", type=float, default=0.0, help="share of answers delayed by --timeout-seconds")
    parser.add_argument("--timeout-seconds", type=float, default=15.0, help="delay of a timeout fault (default 15)")
    parser.add_argument("--webhook-target", help="URL to POST signed webhook deliveries to")
    parser.add_argument("--webhook-secret", default=os.environ.get("WEBHOOK_SECRET"),
                        help="webhook signing secret (default: $WEBHOOK_SECRET; required with --webhook-target)")
    parser.add_argument("--webhook-rate", type=float, default=1.0, help="deliveries per second (default 1)")
    parser.add_argument("--webhook-count", type=int, help="stop after this many deliveries (default: never)")
    parser.add_argument("--webhook-events", default="account.created,status.created",
                        help=f"comma-separated events to send, from {', '.join(EVENTS)}")
    parser.add_argument("--stream-rate", type=float, default=0.0,
                        help="firehose: posts per second on the streaming API (default 0: only posts made by hand)")
    parser.add_argument("--stream-spam-ratio", type=float, default=0.02, help="firehose: share of spam posts")
    parser.add_argument("--stream-remote-share", type=float, default=0.9, help="firehose: share of remote authors")
    parser.add_argument("--stream-wave-every", type=float, default=0.0,
                        help="firehose: seconds between spam waves (default 0: only through POST /_sim/stream/wave)")
    parser.add_argument("--stream-wave-accounts", type=int, default=20, help="accounts in a wave (default 20)")
    parser.add_argument("--stream-wave-posts", type=int, default=2, help="posts per wave account (default 2)")
    parser.add_argument("--stream-heartbeat", type=float, default=15.0, help="seconds between :thump comments")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    # Imported here so every other `modwatch` command starts without the web stack.
    import uvicorn

    from modwatch.simulator.server import uvicorn_config

    if args.webhook_target and not args.webhook_secret:
        raise SystemExit("--webhook-secret is required with --webhook-target")
    state = SimState(Config(
        seed=args.seed, accounts=args.accounts, admin_token=args.admin_token, user_token=args.token,
        ratelimit_limit=args.ratelimit, ratelimit_period=args.ratelimit_period, reports_per_day=args.reports_per_day,
        paging_limit=args.paging_limit, paging_period=args.paging_period,
        growth_per_minute=args.growth_per_minute, version=args.mastodon_version,
        webhook_target=args.webhook_target, webhook_secret=args.webhook_secret,
        stream_heartbeat_seconds=args.stream_heartbeat,
    ))
    if args.stream_rate or args.stream_wave_every:
        from modwatch.simulator import firehose

        firehose.configure(state, rate=args.stream_rate, spam_ratio=args.stream_spam_ratio,
                           remote_share=args.stream_remote_share, wave_every=args.stream_wave_every,
                           wave_accounts=args.stream_wave_accounts, wave_posts=args.stream_wave_posts)
    state.faults.update(latency_ms=args.latency_ms, error_ratio=args.error_ratio, ratelimit_ratio=args.ratelimit_ratio,
                        timeout_ratio=args.timeout_ratio, timeout_seconds=args.timeout_seconds)
    stop = threading.Event()
    if args.webhook_target:
        events = tuple(e.strip() for e in args.webhook_events.split(",") if e.strip())
        threading.Thread(target=send_webhooks, daemon=True, name="webhooks", kwargs=dict(
            state=state, target_url=args.webhook_target, secret=args.webhook_secret,
            rate_per_second=args.webhook_rate, count=args.webhook_count, events=events, stop=stop)).start()
    try:
        uvicorn.Server(uvicorn_config(state, args.host, args.port)).run()
    finally:
        stop.set()
    return 0
