"""Start-up objects are frozen before a process starts serving; the stream consumer collects young
garbage less often (modwatch.heap)."""

import gc
import subprocess
import sys

from core.support import subprocess_env
from modwatch import heap

SERVE_NOTHING = """
import gc, uvicorn
from modwatch import cli
uvicorn.run = lambda app, **options: print(gc.get_freeze_count(), gc.get_count()[2])
cli.main(["api"])
"""

CONSUME_NOTHING = """
import gc
from modwatch import cli
from modwatch.stream import consumer
cli.check_mastodon_version = lambda settings: None
consumer.Consumer.run = lambda self: print(gc.get_freeze_count(), gc.get_threshold()[0])
cli.main(["stream", "--metrics-port", "0"])
"""


def test_api_serves_with_its_start_up_objects_frozen(core_env):
    result = subprocess.run([sys.executable, "-c", SERVE_NOTHING], env=subprocess_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    frozen, oldest_generation = map(int, result.stdout.split())
    # The app, its routes and every module: out of the collector's way, none left to walk.
    assert frozen > 50_000 and oldest_generation == 0


def test_the_stream_consumer_runs_frozen_and_collects_young_garbage_less_often(core_env):
    result = subprocess.run([sys.executable, "-c", CONSUME_NOTHING], env=subprocess_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    frozen, young_threshold = map(int, result.stdout.split()[-2:])
    assert frozen > 50_000 and young_threshold == heap.YOUNG_THRESHOLD


def test_collect_less_often_raises_only_the_young_threshold():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        heap.collect_less_often()
        assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, 10, 10)
        assert gc.isenabled()  # cycles are still collected
    finally:
        gc.set_threshold(*before)
