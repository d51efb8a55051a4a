"""A local OTLP/HTTP endpoint for the benchmarks, in a process of its own as a collector would be.

It accepts POST /v1/traces, answers with an empty ExportTraceServiceResponse and counts what it
got; GET /stats answers {"requests": n, "bytes": n}. It prints its port, then serves until killed.

    python bench/otlp_sink.py
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

received = {"requests": 0, "bytes": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        received["requests"] += 1
        received["bytes"] += len(body)
        self.answer(b"", "application/x-protobuf")  # an empty protobuf message

    def do_GET(self) -> None:  # noqa: N802
        self.answer(json.dumps(received).encode(), "application/json")

    def answer(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
