"""A webhook receiver on a local port: answers with the statuses queued in `answers`."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler


class Receiver(BaseHTTPRequestHandler):
    answers: list[int] = []
    received: list[tuple[bytes, str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((body, self.headers["X-CDAT-Signature"]))
        self.send_response(self.answers.pop(0) if self.answers else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return
