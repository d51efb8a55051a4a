import pytest

from cassette_replay import start_replay


@pytest.fixture(scope="module")
def replay():
    server = start_replay()
    yield server
    server.server.shutdown()
