"""bench/drill_spam_wave.py, shortened: a spam wave against Mastodon's real limits, in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from isolation import claimed_redis_db, redis_db_url

DRILL = Path(__file__).resolve().parents[2] / "bench" / "drill_spam_wave.py"


def test_eight_simulated_minutes_of_a_spam_wave_meet_the_targets():
    database = claimed_redis_db(redis_db_url(14))  # the drill's process writes there; emptied after
    try:
        answer = subprocess.run([sys.executable, str(DRILL), "--minutes", "8", "--accounts", "150",
                                 "--redis", redis_db_url(14), "--json"],
                                capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    finally:
        database.flushdb()
    assert answer.returncode == 0, answer.stdout[-3000:] + answer.stderr[-3000:]
    result = json.loads(next(line for line in answer.stdout.splitlines() if line.startswith('{"virtual_minutes"')))
    assert result["reports_filed"] >= 10 and result["wave_accounts"] == 8 * 6 + 16
    assert result["modwatch_429s"] == {} and result["duplicates"] == 0 and result["lost"] == 0
    assert result["paused_by_another_family"] == 0
    assert result["requests_per_family"]["global"] <= 2 * 300  # two 5-minute windows touched, at most
    assert result["moderator"].get("status 429", 0) == 0
    assert result["requests_per_family"].get("paging", 0) <= 150 + 5  # the polls' share of one paging window
