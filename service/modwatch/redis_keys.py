"""Every Redis key modwatch writes itself, named once (docs/architecture.md, "Redis keys", says what each holds).

A top-level module that imports nothing: telemetry, the lowest layer, reads some of these keys (the
queue-stats collector reads the scheduler's heartbeat and the runtime switches), so the names cannot live
in any layer above it, and a module of their own keeps them from being defined twice again
(tests/core/test_redis_keys.py fails on a `"modwatch:` key literal anywhere else). RQ's own keys stay `rq:*`.

Names with a `{field}` are templates for `str.format`; a name ending in `_PREFIX` is followed by an id.
"""

from __future__ import annotations

# jobs/scheduler.py: the lease of the scheduler that schedules, its loop heartbeat, operators' intervals.
SCHEDULER_LEADER_KEY = "modwatch:scheduler:leader"
SCHEDULER_HEARTBEAT_KEY = "modwatch:scheduler:heartbeat"
SCHEDULER_INTERVALS_KEY = "modwatch:scheduler:intervals"

# jobs/tasks.py: held while a poll runs (a redis-py Lock).
POLL_RUNNING_KEY = "modwatch:poll:running:{name}"

# jobs/enqueue.py: a report job was started for this streamed account.
STREAM_REPORTED_KEY = "modwatch:stream:reported:{account_id}"

# stream/consumer.py: the lease of the consumer that consumes, and each host's heartbeat, refreshed every
# lease tick by active and standby consumers alike (`modwatch healthcheck stream`).
STREAM_LEASE_KEY = "modwatch:stream:leader"
STREAM_HEARTBEAT_KEY = "modwatch:stream:heartbeat:{host}"

# telemetry/queue_stats.py: when record_queue_stats last succeeded and how long it took.
QUEUE_STATS_LAST_SUCCESS_KEY = "modwatch:queue_stats:last_success"
QUEUE_STATS_DURATION_KEY = "modwatch:queue_stats:duration"

# telemetry/trace_store.py: the spans of one trace (LOCAL_TRACES).
TRACE_KEY = "modwatch:trace:{trace_id}"

# moderation/runtime.py: the overrides of the runtime switches; per override {"since": ISO time, "by": who};
# the environment's values the last process started with, to notice a new one at the next start.
RUNTIME_KEY = "modwatch:runtime"
RUNTIME_META_KEY = "modwatch:runtime:meta"
RUNTIME_ENV_KEY = "modwatch:runtime:env"

# moderation/ratelimit.py: the shared gate (global family) and one hash per other rate-limit family.
RATELIMIT_GATE_KEY = "modwatch:mastodon:ratelimit"
RATELIMIT_FAMILY_KEY = "modwatch:mastodon:ratelimit:{family}"

# moderation/flows.py: our own Mastodon account id, cached.
OWN_ACCOUNT_KEY = "modwatch:mastodon:own_account_id"

# moderation/flows.py (_retry_later) sets it while an analysis waits for a rate-limit slot: a poll
# (moderation/polling.py) adds no second one.
ANALYSIS_DEFERRED_KEY = "modwatch:analysis:deferred:{account_id}"

# moderation/recent.py: the posts Mastodon delivered, per account.
RECENT_POSTS_KEY = "modwatch:recent_posts:{account_id}"

# moderation/reports.py: violations per remote domain, and the day whose report budget was synced.
DOMAIN_VIOLATIONS_KEY = "modwatch:domain_violations"
REPORT_BUDGET_SYNCED_KEY = "modwatch:reports:budget_synced:{reset}"

# moderation/outcomes.py: Mastodon report id -> verdict of the resolved reports already counted; the
# sync's turn; "rule\tverdict" -> count.
OUTCOMES_SEEN_KEY = "modwatch:outcomes:seen"
OUTCOMES_NEXT_SYNC_KEY = "modwatch:outcomes:next_sync"
OUTCOMES_TALLY_KEY = "modwatch:outcomes:tally"

# moderation/waves.py: the accounts seen per wave fingerprint, and the fingerprints active in the window.
WAVE_KEY_PREFIX = "modwatch:wave:"
WAVES_ACTIVE_KEY = "modwatch:waves:active"
