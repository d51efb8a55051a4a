"""Recorded Mastodon answers from shared/mastodon/ served by a local HTTP server."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

from isolation import mastodon_recordings

KEPT_HEADERS = {"link", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "content-type"}


def interactions(name: str) -> list[dict]:
    return yaml.safe_load((mastodon_recordings() / "cassettes" / name).read_text())["interactions"]


class Replay:
    """A local HTTP server answering each request with the next queued recorded response."""

    def __init__(self):
        self.queue: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                replay.requests.append((self.command, self.path))
                recorded = replay.queue.pop(0)["response"]
                raw = recorded["body"]["string"].encode()
                self.send_response(recorded["status"]["code"])
                for name, values in recorded["headers"].items():
                    if name.lower() in KEPT_HEADERS:
                        self.send_header(name, values[0])
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"

    def serve(self, *recorded: dict) -> None:
        self.queue = list(recorded)


def start_replay() -> Replay:
    server = Replay()
    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    return server


def recorded_json(interaction: dict):
    return json.loads(interaction["response"]["body"]["string"])
