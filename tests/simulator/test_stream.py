"""The simulator's streaming API, following mastodon/mastodon `streaming/index.js` (channelNameFromPath,
accountFromRequest, streamToHttp), and the public timeline a consumer fills gaps from."""

from __future__ import annotations

import json
import threading
import time

import mastodon
import pytest
import requests

from modwatch.simulator.server import running
from sim_support import ADMIN

STREAM = "/api/v1/streaming"


@pytest.fixture()
def stream_sim():
    with running(accounts=10, seed=5, stream_heartbeat_seconds=0.3) as simulator:
        yield simulator


class Reader:
    """Reads an SSE response on a thread into lines."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.lines: list[str] = []
        self.ended = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                self.lines.append(line)
        except requests.RequestException:
            pass
        self.ended.set()

    def events(self) -> list[tuple[str, str]]:
        found, lines = [], list(self.lines)
        for index, line in enumerate(lines[:-1]):
            if line.startswith("event: ") and lines[index + 1].startswith("data: "):
                found.append((line.removeprefix("event: "), lines[index + 1].removeprefix("data: ")))
        return found

    def wait_for(self, predicate, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"not seen in {timeout}s: {self.lines[-5:]}"
            time.sleep(0.05)


def open_stream(sim, path: str, **params) -> Reader:
    response = requests.get(sim.base_url + STREAM + path, headers=ADMIN, params=params, stream=True, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"
    reader = Reader(response)
    reader.wait_for(lambda: reader.lines)
    return reader


def post(sim, path: str, body: dict) -> dict:
    response = requests.post(f"{sim.base_url}/_sim/{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def test_public_remote_carries_remote_posts_only_with_heartbeats(stream_sim):
    remote = open_stream(stream_sim, "/public/remote")
    local = open_stream(stream_sim, "/public/local")
    assert remote.lines[0] == ":)"  # streamToHttp's first write
    far = post(stream_sim, "accounts", {"username": "far", "domain": "remote.example"})["id"]
    near = post(stream_sim, "accounts", {"username": "near"})["id"]
    remote_post = post(stream_sim, "statuses", {"account_id": far, "text": "from afar"})
    local_post = post(stream_sim, "statuses", {"account_id": near, "text": "from here"})
    remote.wait_for(lambda: remote.events() and ":thump" in remote.lines)
    local.wait_for(lambda: local.events())
    (event, data), = remote.events()
    assert event == "update" and json.loads(data)["id"] == remote_post["id"]
    assert json.loads(data)["account"]["acct"] == "far@remote.example"
    assert [json.loads(d)["id"] for _, d in local.events()] == [local_post["id"]]


def test_edit_and_delete_events(stream_sim):
    reader = open_stream(stream_sim, "/public")
    author = post(stream_sim, "accounts", {"username": "editor", "domain": "remote.example"})["id"]
    status = post(stream_sim, "statuses", {"account_id": author, "text": "first"})
    post(stream_sim, f"stream/statuses/{status['id']}/edit", {"text": "second"})
    assert requests.delete(f"{stream_sim.base_url}/_sim/stream/statuses/{status['id']}", timeout=10).status_code == 200
    reader.wait_for(lambda: len(reader.events()) == 3)
    (created, _), (edited, edited_data), (deleted, deleted_data) = reader.events()
    assert (created, edited, deleted) == ("update", "status.update", "delete")
    assert json.loads(edited_data)["edited_at"] is not None and "second" in json.loads(edited_data)["content"]
    assert deleted_data == status["id"]  # the bare id, not JSON


def test_only_media_and_tokens(stream_sim):
    media = open_stream(stream_sim, "/public", only_media="true")
    author = post(stream_sim, "accounts", {"username": "pics", "domain": "remote.example"})["id"]
    post(stream_sim, "statuses", {"account_id": author, "text": "words only"})
    pictured = post(stream_sim, "statuses", {"account_id": author, "text": "a picture", "media_descriptions": [None]})
    media.wait_for(lambda: media.events())
    time.sleep(0.2)
    assert [json.loads(d)["id"] for _, d in media.events()] == [pictured["id"]]
    base = stream_sim.base_url + STREAM
    assert requests.get(base + "/public", timeout=10).json() == {"error": "Missing access token"}
    assert requests.get(base + "/public", params={"access_token": "nope"}, timeout=10).status_code == 401
    assert requests.get(base + "/nowhere", headers=ADMIN, timeout=10).status_code == 400
    assert requests.get(base + "/health", timeout=10).text == "OK"


def test_forced_disconnect_ends_streams_and_refuses_for_a_while(stream_sim):
    reader = open_stream(stream_sim, "/public/remote")
    post(stream_sim, "stream/disconnect", {"down_seconds": 1.5})
    reader.wait_for(reader.ended.is_set)
    refused = requests.get(stream_sim.base_url + STREAM + "/public/remote", headers=ADMIN, timeout=10)
    assert refused.status_code == 503
    deadline = time.monotonic() + 30
    while requests.get(stream_sim.base_url + STREAM + "/public/remote", headers=ADMIN, stream=True,
                       timeout=10).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_firehose_wave_and_gap_fill_through_the_timeline(stream_sim):
    reader = open_stream(stream_sim, "/public/remote")
    post(stream_sim, "stream/firehose", {"rate": 100, "spam_ratio": 0.1})
    wave = post(stream_sim, "stream/wave", {"accounts": 4, "posts": 2})["account_ids"]
    reader.wait_for(lambda: len(reader.events()) > 150)
    post(stream_sim, "stream/firehose", {"rate": 0})
    streamed = [json.loads(d) for e, d in reader.events() if e == "update"]
    assert sum(1 for s in streamed if s["account"]["id"] in wave) == 8
    assert all("@" in s["account"]["acct"] for s in streamed)
    # Walking up from the first streamed post with min_id returns every later post, as a gap fill does.
    cursor, walked = streamed[0]["id"], []
    while True:
        page = requests.get(stream_sim.base_url + "/api/v1/timelines/public", headers=ADMIN, timeout=10,
                            params={"remote": "true", "limit": 40, "min_id": cursor}).json()
        if not page:
            break
        assert [s["id"] for s in page] == sorted((s["id"] for s in page), key=int, reverse=True)
        walked += [s["id"] for s in reversed(page)]
        cursor = page[0]["id"]
    deleted = {d for e, d in reader.events() if e == "delete"}
    assert {s["id"] for s in streamed[1:]} - deleted <= set(walked)


def test_mastodon_py_streams_from_the_simulator(stream_sim):
    """Mastodon.py finds the streaming URL in /api/v1/instance and parses the events."""
    author = post(stream_sim, "accounts", {"username": "mpy", "domain": "remote.example"})["id"]
    received: list[str] = []

    class Listener(mastodon.StreamListener):
        def on_update(self, status):
            received.append(str(status["id"]))

        def on_delete(self, status_id):
            received.append(f"deleted {status_id}")

    client = mastodon.Mastodon(api_base_url=stream_sim.base_url, access_token=ADMIN["Authorization"].split()[1])
    handle = client.stream_public(Listener(), run_async=True, remote=True)
    try:
        deadline = time.monotonic() + 30
        while not handle.is_receiving() or stream_sim.state.stream.open_streams == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        status = post(stream_sim, "statuses", {"account_id": author, "text": "hello"})
        requests.delete(f"{stream_sim.base_url}/_sim/stream/statuses/{status['id']}", timeout=10)
        while len(received) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        handle.close()
    assert received == [status["id"], f"deleted {status['id']}"]
