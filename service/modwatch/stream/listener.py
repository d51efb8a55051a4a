"""Reading one streaming connection: Mastodon.py connects, this listener parses what arrives.

Mastodon.py's `StreamListener.handle_stream` reads the body one byte at a time
(`iter_content(chunk_size=1)`) and converts each payload into attribute dicts with parsed dates:
about a millisecond per post, which alone would cap a consumer well below a busy federated
timeline. `handle_stream` is the listener's documented hook for reading the response, so this
listener overrides it with the same server-sent-events rules read by chunk, keeps payloads as the
API's own JSON (as the REST wrapper does) and raises the same Mastodon.py errors on a broken read.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Callable

import mastodon
import orjson
from mastodon.errors import MastodonReadTimeout
from requests.exceptions import ChunkedEncodingError, ConnectionError, ReadTimeout

from modwatch.moderation.stream_analysis import Deleted, Received
from modwatch.telemetry.metrics import STREAM_EVENTS, STREAM_LAG

POST_EVENTS = {b"update": "update", b"status.update": "status.update"}
KNOWN_EVENTS = ("update", "status.update", "delete", "heartbeat")
CHUNK = 65536


class EventListener(mastodon.StreamListener):
    def __init__(self, stream: str, sink: Callable[[Received | Deleted], None],
                 on_open: Callable[[EventListener], None]) -> None:
        super().__init__()
        self.stream = stream
        self.sink = sink
        self.on_open = on_open
        self.opened = False
        self.first_post_id: int | None = None  # of this connection: a gap fill can stop there
        self.newest_post_id: int | None = None
        self._counters = {name: STREAM_EVENTS.labels(stream=stream, event=name) for name in (*KNOWN_EVENTS, "other")}
        self._lag = STREAM_LAG.labels(stream=stream)

    def handle_stream(self, response) -> None:
        event: dict[bytes, bytes] = {}
        pending = b""
        try:
            for chunk in response.iter_content(chunk_size=CHUNK):
                if not self.opened:
                    self.opened = True
                    self.on_open(self)
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if not line:
                        if event:
                            self._dispatch_raw(event)
                        event = {}
                    elif line[:1] == b":":
                        self.handle_heartbeat()
                    else:
                        key, _, value = line.partition(b": ")
                        event[key] = event[key] + b"\n" + value if key in event else value
        except ChunkedEncodingError as exc:
            raise mastodon.MastodonNetworkError("Server ceased communication.") from exc
        except ReadTimeout as exc:
            raise MastodonReadTimeout("Timed out while reading from server.") from exc
        except ConnectionError as exc:
            raise mastodon.MastodonNetworkError("Requests reports connection error.") from exc

    def handle_heartbeat(self) -> None:
        self._counters["heartbeat"].inc()

    def _dispatch_raw(self, event: dict[bytes, bytes]) -> None:
        name, data = event.get(b"event", b""), event.get(b"data", b"")
        received = time.time()
        if name in POST_EVENTS:
            try:
                status = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise mastodon.MastodonMalformedEventError("Bad JSON", data[:200]) from exc
            self._counters[POST_EVENTS[name]].inc()
            created = _epoch(status.get("created_at"))
            if created is not None:
                self._lag.observe(max(0.0, received - created))
            post_id = int(status["id"]) if str(status.get("id", "")).isdigit() else None
            if post_id is not None:
                self.first_post_id = self.first_post_id or post_id
                self.newest_post_id = max(self.newest_post_id or 0, post_id)
            self.sink(Received(self.stream, POST_EVENTS[name], status, received))
        elif name == b"delete":
            self._counters["delete"].inc()
            self.sink(Deleted(self.stream, data.decode().strip().strip('"'), received))
        else:
            self._counters["other"].inc()


def _epoch(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
