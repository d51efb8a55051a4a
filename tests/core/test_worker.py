import os
import subprocess
import sys
import time
from pathlib import Path

from core.support import subprocess_env
from modwatch.simulator.server import running
from modwatch.simulator.state import DEFAULT_ADMIN_TOKEN


def test_worker_refuses_a_mastodon_without_the_admin_api(core_env):
    with running(version="3.5.9") as sim:
        env = subprocess_env({"INSTANCE_BASE": sim.base_url, "MASTODON_ACCESS_TOKEN": DEFAULT_ADMIN_TOKEN})
        result = subprocess.run([sys.executable, "-m", "modwatch.cli", "worker", "--burst"], env=env,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "3.5.9" in result.stderr and "Traceback" not in result.stderr


def test_worker_starts_when_mastodon_is_unreachable(core_env):
    env = subprocess_env({"INSTANCE_BASE": "http://127.0.0.1:1", "MASTODON_ACCESS_TOKEN": "x"})
    result = subprocess.run([sys.executable, "-m", "modwatch.cli", "worker", "--burst"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "mastodon_unreachable_at_start" in result.stderr


def test_healthcheck_worker_follows_the_heartbeat(core_env):
    check = [sys.executable, "-m", "modwatch.cli", "healthcheck", "worker"]
    assert subprocess.run(check, env=subprocess_env(), capture_output=True, timeout=60).returncode == 1
    worker = subprocess.Popen([sys.executable, "-m", "modwatch.cli", "worker"], env=subprocess_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        code = 1
        while code != 0 and time.monotonic() < deadline:
            code = subprocess.run(check, env=subprocess_env(), capture_output=True, timeout=60).returncode
        assert code == 0
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def children_of(pid: int) -> dict[int, str]:
    """pid -> state letter of every process whose parent is `pid`."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found[int(stat.parent.name)] = fields[0]
    return found


def test_forking_worker_goes_on_before_a_horse_has_exited_and_reaps_them_all(core_env):
    from rq.registry import FailedJobRegistry

    from modwatch.connection import get_redis
    from modwatch.jobs.queues import WEBHOOKS, get_queue
    from modwatch.jobs.worker import build_worker

    before = set(children_of(os.getpid()))
    queue = get_queue(WEBHOOKS)
    added = [queue.enqueue("core.jobfuncs.add", index, 1) for index in range(5)]
    died = queue.enqueue("core.jobfuncs.die_abruptly")

    assert build_worker(get_redis(), [WEBHOOKS]).work(burst=True, with_scheduler=False)

    assert [job.return_value(refresh=True) for job in added] == [1, 2, 3, 4, 5]
    # A horse that ends without saying it is done is waited for, and its exit status read, as RQ does.
    assert died.id in FailedJobRegistry(queue=queue).get_job_ids()
    assert "Work-horse terminated unexpectedly" in died.latest_result().exc_string
    leftover = {pid: state for pid, state in children_of(os.getpid()).items() if pid not in before}
    assert leftover == {}


def test_a_horse_report_larger_than_a_pipe_buffer_arrives_whole(core_env):
    from modwatch.connection import get_redis
    from modwatch.jobs.queues import WEBHOOKS, get_queue
    from modwatch.jobs.worker import build_worker
    from modwatch.telemetry.metrics import RULE_HITS

    job = get_queue(WEBHOOKS).enqueue("core.jobfuncs.count_rule_hits", 3000)
    try:
        assert build_worker(get_redis(), [WEBHOOKS]).work(burst=True, with_scheduler=False)

        assert job.get_status(refresh=True) == "finished"
        # The horse's changes, applied in this process (the worker's), for every one of its series.
        assert [RULE_HITS.labels(rule=f"bulk-{index}")._value.get() for index in (0, 1500, 2999)] == [1, 1, 1]
    finally:
        for index in range(3000):
            try:
                RULE_HITS.remove(f"bulk-{index}")
            except KeyError:
                pass


def test_forking_worker_imports_a_job_module_once_itself_and_fails_unimportable_jobs_as_rq_does(core_env):
    from rq.registry import FailedJobRegistry

    from modwatch.connection import get_redis
    from modwatch.jobs.queues import WEBHOOKS, get_queue
    from modwatch.jobs.worker import build_worker

    sys.modules.pop("core.importedonce", None)
    queue = get_queue(WEBHOOKS)
    jobs = [queue.enqueue("core.importedonce.imported_by") for _ in range(2)]
    missing = queue.enqueue("core.no_such_module.function")
    exits = queue.enqueue("core.exitsonimport.function")  # importing it in the worker must not end the worker

    assert build_worker(get_redis(), [WEBHOOKS]).work(burst=True, with_scheduler=False)

    # Imported by the worker (this process) before forking, not by each horse.
    assert [job.return_value(refresh=True) for job in jobs] == [os.getpid(), os.getpid()]
    assert missing.id in FailedJobRegistry(queue=queue).get_job_ids()
    assert "Invalid attribute name: function" in missing.latest_result().exc_string
    assert exits.id in FailedJobRegistry(queue=queue).get_job_ids()
