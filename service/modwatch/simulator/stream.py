"""Mastodon's streaming API on the simulator: server-sent events as streaming/index.js sends them.

Followed from mastodon/mastodon `streaming/index.js`:
- paths and channels (`channelNameFromPath`): `/api/v1/streaming/public` -> `public`, `.../public/local`
  -> `public:local`, `.../public/remote` -> `public:remote`; `only_media=true` adds `:media`;
  `/api/v1/streaming/health` answers `OK`;
- the token comes from `Authorization: Bearer` or `?access_token=`; none: 401 `Missing access token`,
  unknown: 401 `Invalid access token`; public channels need no scope (`checkScopes`);
- the body (`streamToHttp`): `text/event-stream`, `Cache-Control: no-store`, a first comment `:)`,
  a `:thump` comment every 15 s, then per event `event: <name>` and `data: <payload>` and a blank
  line. `update` and `status.update` carry a Status as JSON; `delete` carries the bare status id
  (`typeof payload === 'object' ? JSON.stringify(payload) : payload`).

Posts are published to every channel they belong to when they are made (`SimState.add_status`,
`edit_status`, `delete_status`); each connection reads the events published after it opened. A
forced disconnect (`POST /_sim/stream/disconnect`, a fault) ends every open stream and can refuse
new ones for a while, as a restarting streaming server would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING

import orjson
from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from modwatch.simulator import entities

if TYPE_CHECKING:
    from modwatch.simulator.state import SimState, Status

PATHS = {"public": "public", "public/local": "public:local", "public/remote": "public:remote"}
# Channels Mastodon has that the simulator never publishes to: they stream heartbeats only.
QUIET = {"user", "user/notification", "direct", "list", "hashtag", "hashtag/local"}
HEARTBEAT_SECONDS = 15.0
# How often an open stream looks for new events: events published meanwhile go out in one write.
POLL_SECONDS = 0.02
CAPACITY = 200_000
READ_EVENTS = 200


def channels_of(status: Status, remote: bool) -> tuple[str, ...]:
    """The public channels a post goes to (Mastodon's FanOutOnWriteService#deliver_to_public)."""
    if status.visibility != "public":
        return ()
    names = ["public", "public:remote" if remote else "public:local"]
    if status.media_descriptions:
        names += [f"{name}:media" for name in names]
    return tuple(names)


def encode(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


class StreamHub:
    """Events by sequence number; each open stream keeps its own cursor."""

    def __init__(self, heartbeat_seconds: float = HEARTBEAT_SECONDS, capacity: int = CAPACITY) -> None:
        self.heartbeat_seconds = heartbeat_seconds
        self.capacity = capacity
        self._lock = threading.Lock()
        self._events: list[tuple[frozenset[str], bytes]] = []
        self._base = 0  # sequence number of _events[0]
        self.generation = 0  # bumped by a forced disconnect: streams of an older generation end
        self.down_until = 0.0
        self.open_streams = 0
        self.published: dict[str, int] = {"update": 0, "delete": 0, "status.update": 0}

    def announce(self, state: SimState, status: Status, edited: bool = False) -> None:
        author = state.accounts[status.account_id]
        channels = channels_of(status, author.domain is not None)
        if channels:
            payload = orjson.dumps(entities.status(state, status)).decode()
            self.publish("status.update" if edited else "update", payload, channels)

    def retract(self, state: SimState, status: Status) -> None:
        author = state.accounts.get(status.account_id)
        channels = channels_of(status, author is not None and author.domain is not None)
        if channels:
            self.publish("delete", str(status.id), channels)

    def publish(self, event: str, data: str, channels: tuple[str, ...]) -> None:
        with self._lock:
            self._events.append((frozenset(channels), encode(event, data)))
            self.published[event] = self.published.get(event, 0) + 1
            if len(self._events) > self.capacity:
                dropped = len(self._events) // 2
                del self._events[:dropped]
                self._base += dropped

    @property
    def head(self) -> int:
        with self._lock:
            return self._base + len(self._events)

    def read(self, cursor: int, channel: str) -> tuple[int, bytes]:
        """What `channel` has after `cursor`, up to READ_EVENTS events as one chunk, and the new cursor.

        Bounded: a client that falls behind gets its backlog in pieces, not copied whole at every poll.
        """
        with self._lock:
            start = max(cursor - self._base, 0)
            events = self._events[start:start + READ_EVENTS]
            head = self._base + start + len(events)
        return head, b"".join(data for channels, data in events if channel in channels)

    def disconnect(self, down_seconds: float = 0.0) -> dict:
        """End every open stream; refuse new ones for `down_seconds`."""
        with self._lock:
            self.generation += 1
            self.down_until = time.monotonic() + down_seconds
        return {"generation": self.generation, "down_seconds": down_seconds}

    def as_dict(self) -> dict:
        return {"open_streams": self.open_streams, "published": dict(self.published), "head": self.head,
                "down": time.monotonic() < self.down_until, "heartbeat_seconds": self.heartbeat_seconds}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def streaming_router(state: SimState) -> APIRouter:
    """The streaming server's routes (no rate limit: Mastodon's streaming server is not behind rack-attack)."""
    router = APIRouter()
    hub = state.stream
    assert hub is not None

    @router.get("/api/v1/streaming/health")
    def health() -> PlainTextResponse:
        return PlainTextResponse("OK")

    @router.get("/api/v1/streaming/{path:path}", response_model=None)
    def stream(request: Request, path: str) -> StreamingResponse | JSONResponse:
        path = path.strip("/")
        if path not in PATHS and path not in QUIET:
            return _error(400, "Unknown channel requested")
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else request.query_params.get("access_token")
        if not token:
            return _error(401, "Missing access token")
        if token not in state.tokens:
            return _error(401, "Invalid access token")
        if path.startswith("hashtag") and not request.query_params.get("tag"):
            return _error(400, "Missing tag name parameter")
        if time.monotonic() < hub.down_until:
            return _error(503, "Service Unavailable (injected fault)")
        channel = PATHS.get(path, path)
        if request.query_params.get("only_media", "").lower() in {"1", "true", "on", "yes"}:
            channel += ":media"
        return StreamingResponse(_events(hub, channel), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    return router


async def _events(hub: StreamHub, channel: str):
    cursor, generation = hub.head, hub.generation
    hub.open_streams += 1
    try:
        yield b":)\n"
        beat = time.monotonic()
        while hub.generation == generation:
            cursor, chunk = hub.read(cursor, channel)
            now = time.monotonic()
            if chunk:
                yield chunk
            elif now - beat >= hub.heartbeat_seconds:
                yield b":thump\n"
                beat = now
            await asyncio.sleep(POLL_SECONDS if cursor >= hub.head else 0)
    finally:
        hub.open_streams -= 1


def control_router(state: SimState) -> APIRouter:
    """`/_sim/stream/...`: the firehose, waves and the disconnect fault."""
    from modwatch.simulator import firehose

    router = APIRouter(prefix="/_sim/stream")
    hub = state.stream
    assert hub is not None

    @router.get("")
    def status() -> dict:
        return {**hub.as_dict(), "firehose": state.firehose.as_dict() if state.firehose else None}

    @router.post("/disconnect")
    def disconnect(body: dict | None = Body(None)) -> dict:
        return hub.disconnect(float((body or {}).get("down_seconds", 0)))

    @router.post("/wave")
    def wave(body: dict | None = Body(None)) -> dict:
        body = body or {}
        with state.lock:
            ids = firehose.wave(state, accounts=int(body.get("accounts", 10)), posts=int(body.get("posts", 2)),
                                domain=str(body.get("domain") or firehose.WAVE_DOMAIN))
        return {"account_ids": [str(i) for i in ids]}

    @router.put("/firehose", response_model=None)
    @router.post("/firehose", response_model=None)
    def set_firehose(body: dict = Body(...)) -> dict | JSONResponse:
        try:
            return firehose.configure(state, **body).as_dict()
        except (TypeError, ValueError) as exc:
            return _error(422, f"Validation failed: {exc}")

    @router.post("/statuses/{status_id}/edit", response_model=None)
    def edit(status_id: str, body: dict = Body(...)) -> dict | JSONResponse:
        from datetime import datetime, timezone

        record = state.edit_status(int(status_id), str(body.get("text", "")), datetime.now(timezone.utc))
        if record is None:
            return _error(404, "Record not found")
        with state.lock:
            return entities.status(state, record)

    @router.delete("/statuses/{status_id}", response_model=None)
    def delete(status_id: str) -> dict | JSONResponse:
        if not state.delete_status(int(status_id)):
            return _error(404, "Record not found")
        return {}

    return router
