"""The lab's Alertmanager receiver: ``python -m lab.monitoring.webhook PORT FILE`` serves
``POST /<receiver>`` on 127.0.0.1:PORT and appends each notification to FILE (JSON lines, 0600) with the
wall-clock time it arrived: when a page would have reached someone. ``GET /health`` says it is up."""

from __future__ import annotations

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lab.monitoring.api import well_formed

MAX_BODY = 1 << 20


def record(body: dict[str, Any], receiver: str, received: float) -> dict[str, Any]:
    """The line kept of one notification: when, to whom, and each alert's name, labels and state."""
    return {
        "received": received,
        "receiver": receiver,
        "status": body.get("status"),
        "alerts": [
            {"status": a.get("status"), "labels": a.get("labels", {}), "startsAt": a.get("startsAt"),
             "endsAt": a.get("endsAt")}
            for a in body.get("alerts", [])
        ],
    }  # fmt: skip


def serve(port: int, path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def do_POST(self) -> None:
            received = time.time()
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_BODY:
                    raise ValueError("no body, or too large")
                kept = record(json.loads(self.rfile.read(length)), self.path.strip("/"), received)
                if not well_formed(kept):
                    raise ValueError("not an Alertmanager notification")
            except (ValueError, AttributeError, TypeError):
                self.send_response(400)
                self.end_headers()
                return
            line = json.dumps(kept) + "\n"
            os.write(fd, line.encode())
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lab.monitoring.webhook", description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int, help="the port on 127.0.0.1")
    parser.add_argument("file", type=Path, help="the JSON-lines file notifications are appended to (0600)")
    args = parser.parse_args()
    serve(args.port, args.file)


if __name__ == "__main__":
    main()
