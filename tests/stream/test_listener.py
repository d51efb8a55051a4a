"""The listener reads server-sent events as Mastodon's streaming server writes them (streaming/index.js
streamToHttp: `:)` first, `:thump` heartbeats, `event:`/`data:` lines, a blank line after each event)."""

from __future__ import annotations

import mastodon
import pytest
from mastodon.errors import MastodonReadTimeout
from requests.exceptions import ChunkedEncodingError, ReadTimeout

from modwatch.moderation.stream_analysis import Deleted, Received
from modwatch.stream.listener import EventListener

POST = b'{"id":"7","created_at":"2026-12-06T22:00:00.000Z","account":{"id":"1","acct":"a@remote.example"}}'


class Response:
    def __init__(self, chunks: list[bytes], failure: Exception | None = None) -> None:
        self.chunks, self.failure = chunks, failure

    def iter_content(self, chunk_size: int):
        yield from self.chunks
        if self.failure is not None:
            raise self.failure


def listen(chunks: list[bytes], failure: Exception | None = None) -> tuple[list, list[str], EventListener]:
    got, opened = [], []
    listener = EventListener("public:remote", got.append, opened.append)
    listener.handle_stream(Response(chunks, failure))
    return got, opened, listener


def test_events_split_anywhere_across_chunks():
    body = b":)\nevent: update\ndata: " + POST + b"\n\n:thump\nevent: delete\ndata: 7\n\nevent: status.update\ndata: " + POST + b"\n\n"
    got, opened, listener = listen([body[i:i + 7] for i in range(0, len(body), 7)])
    assert opened == [listener]  # once, handing over the connection that opened (its gap fill stops at it)
    assert [type(item) for item in got] == [Received, Deleted, Received]
    assert got[0].event == "update" and got[0].status["id"] == "7" and got[2].event == "status.update"
    assert got[1].status_id == "7"
    assert listener.first_post_id == listener.newest_post_id == 7


def test_broken_reads_raise_mastodon_py_errors():
    with pytest.raises(MastodonReadTimeout):
        listen([b":)\n"], ReadTimeout("no heartbeat"))
    with pytest.raises(mastodon.MastodonNetworkError):
        listen([b":)\n"], ChunkedEncodingError("cut"))
    with pytest.raises(mastodon.MastodonMalformedEventError):
        listen([b"event: update\ndata: {not json\n\n"])
