"""The suite's own isolation: a Redis database is wiped only when this test run found it empty first."""

from __future__ import annotations

import pytest
import redis

from isolation import claimed_redis_db, redis_db_url

# A database no test area uses.
UNUSED_DB = 15


def test_a_database_holding_keys_the_run_did_not_write_is_refused_and_left_alone():
    url = redis_db_url(UNUSED_DB)
    other = redis.Redis.from_url(url)
    assert other.dbsize() == 0, f"{url} should be unused by the suite"
    try:
        other.set("someone-elses-data", "keep")
        with pytest.raises(pytest.fail.Exception, match="holds 1 keys this test run did not write"):
            claimed_redis_db(url)
        assert other.get("someone-elses-data") == b"keep"
    finally:
        other.delete("someone-elses-data")

    claimed = claimed_redis_db(url)  # found empty: claimed for the run
    claimed.set("a-test-key", "1")
    assert claimed_redis_db(url).dbsize() == 0  # the run's own keys are wiped the next time
    claimed.flushdb()


def test_database_zero_is_never_used():
    with pytest.raises(ValueError):
        redis_db_url(0)
