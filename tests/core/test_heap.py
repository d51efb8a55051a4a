"""Start-up objects are frozen before a process starts serving (modwatch.heap)."""

import subprocess
import sys

from core.support import subprocess_env

SERVE_NOTHING = """
import gc, uvicorn
from modwatch import cli
uvicorn.run = lambda app, **options: print(gc.get_freeze_count(), gc.get_count()[2])
cli.main(["api"])
"""


def test_api_serves_with_its_start_up_objects_frozen(core_env):
    result = subprocess.run([sys.executable, "-c", SERVE_NOTHING], env=subprocess_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    frozen, oldest_generation = map(int, result.stdout.split())
    # The app, its routes and every module: out of the collector's way, none left to walk.
    assert frozen > 50_000 and oldest_generation == 0
