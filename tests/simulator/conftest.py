import pytest

from modwatch.simulator.server import running



@pytest.fixture(scope="module")
def sim():
    with running(accounts=120, seed=7) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def clean_faults(request):
    yield
    if "sim" in request.fixturenames:
        simulator = request.getfixturevalue("sim")
        simulator.state.faults.update(latency_ms=0, error_ratio=0, ratelimit_ratio=0, timeout_ratio=0)
