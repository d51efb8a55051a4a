"""The contract between modwatch and RQ: every RQ method modwatch overrides that RQ does not document as
an extension point still has the signature our override was written against.

An override passes arguments it does not know through (*args, **kwargs), so an added parameter is harmless
at run time; this test still fails on any change, so that whoever upgrades RQ reads the new method before
the pin moves. Known signatures are listed per RQ major version (the CI job runs the suite on 2.x and 3.x).
"""

from __future__ import annotations

import inspect

import pytest
import rq
import rq.scheduler
from rq import Queue, SimpleWorker, Worker
from rq.job import Job

from modwatch.jobs import rq_integration
from modwatch.jobs.rq_integration import ModwatchJob, ModwatchQueue, ModwatchSimpleWorker, ModwatchWorker

RQ_MAJOR = int(rq.__version__.split(".")[0])

# (RQ class, method) -> its parameters, by RQ major version.
_COMMON = {
    (Job, "prepare_for_execution"): ["self", "worker_name", "pipeline"],
    (Queue, "enqueue_job"): ["self", "job", "pipeline", "at_front", "unique"],
    (Queue, "_enqueue_job"): ["self", "job", "pipeline", "at_front", "unique"],
    (Queue, "schedule_job"): ["self", "job", "datetime", "pipeline", "unique"],
    (Worker, "execute_job"): ["self", "job", "queue"],
    (SimpleWorker, "execute_job"): ["self", "job", "queue"],
    (Worker, "fork_work_horse"): ["self", "job", "queue"],
    (Worker, "wait_for_horse"): ["self"],
    (Worker, "teardown"): ["self"],
    (Worker, "unsubscribe"): ["self"],
}
KNOWN_SIGNATURES = {
    2: {**_COMMON,
        (Worker, "perform_job"): ["self", "job", "queue"],
        (SimpleWorker, "perform_job"): ["self", "job", "queue"]},
    3: {**_COMMON,
        (Worker, "perform_job"): ["self", "job", "queue", "execution"],
        (SimpleWorker, "perform_job"): ["self", "job", "queue", "execution"]},
}
# RQ's public hooks the worker classes use, with the parameters they are given.
PUBLIC_HOOKS = {"exception_handlers", "work_horse_killed_handler", "job_class", "queue_class"}
OURS = (ModwatchJob, ModwatchQueue, ModwatchWorker, ModwatchSimpleWorker)


def rq_parameters(cls: type, name: str) -> list[str]:
    return list(inspect.signature(getattr(cls, name)).parameters)


def test_this_rq_major_version_is_one_we_know():
    assert RQ_MAJOR in KNOWN_SIGNATURES, f"rq {rq.__version__}: read the overridden methods, then add its signatures"


@pytest.mark.parametrize(("cls", "name"), list(KNOWN_SIGNATURES[2]), ids=lambda item: getattr(item, "__name__", item))
def test_each_overridden_rq_method_keeps_its_signature(cls, name):
    assert rq_parameters(cls, name) == KNOWN_SIGNATURES[RQ_MAJOR][(cls, name)]


def overrides() -> list[tuple[type, str, object]]:
    """(our class, method name, our function) for every RQ method our classes (and their mixins) override."""
    found = []
    for ours in OURS:
        rq_bases = [base for base in ours.__mro__ if base.__module__.startswith("rq.")]
        for own in [base for base in ours.__mro__ if base.__module__.startswith("modwatch.")]:
            for name, member in vars(own).items():
                if inspect.isfunction(member) and any(name in vars(base) for base in rq_bases):
                    found.append((ours, name, member))
    return found


def test_every_override_of_an_rq_method_is_listed_and_passes_unknown_arguments_through():
    listed = {name for _, name in KNOWN_SIGNATURES[RQ_MAJOR]}
    found = overrides()
    assert len(found) > len(listed)
    for ours, name, member in found:
        if name in {"__init__", "work"}:  # RQ's documented API
            continue
        assert name in listed, f"{ours.__name__}.{name} overrides RQ: add its signature to KNOWN_SIGNATURES"
        kinds = {parameter.kind for parameter in inspect.signature(member).parameters.values()}
        assert {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD} <= kinds, f"{ours.__name__}.{name}"


def test_the_public_hooks_used_are_worker_parameters():
    assert PUBLIC_HOOKS <= set(rq_parameters(Worker, "__init__"))


def test_rq_still_moves_jobs_through_the_queue_name_of_the_modules_the_worker_points_at_its_queue():
    # ModwatchWorker.work points rq.scheduler.Queue and rq.registry.Queue at ModwatchQueue: the moves' send spans.
    assert "Queue(registry.name" in inspect.getsource(rq.scheduler.RQScheduler.enqueue_scheduled_jobs)
    assert all(module.Queue is Queue or issubclass(module.Queue, Queue) for module in rq_integration.MOVING_MODULES)
    if RQ_MAJOR >= 3:
        from rq.registry import ReadyJobRegistry

        assert "queue = Queue(" in inspect.getsource(ReadyJobRegistry.enqueue_jobs)
