"""check-redis-health as a scrape target: ``python -m lab.monitoring.healthprobe PORT -- ARGS...`` serves
``GET /metrics`` on 127.0.0.1:PORT by running the health checker with ARGS and ``--format prometheus`` once per
scrape (its credentials come from this process's environment, as they would on a monitoring host). Prometheus
scrapes it beside the exporters, so a drill can compare the checker's verdicts with the alerts."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


def serve(port: int, checker_args: list[str]) -> None:
    from redis_ha_health.check_redis_health import main as check

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_response(404 if self.path != "/" else 200)
                self.end_headers()
                return
            lines: list[str] = []
            check([*checker_args, "--format", "prometheus"], out=lines.append)
            body = ("\n".join(lines) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    HTTPServer(("127.0.0.1", port), Handler).serve_forever()  # one scrape at a time


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m lab.monitoring.healthprobe", description=__doc__.split("\n\n")[0],
        usage="%(prog)s [-h] PORT -- CHECK-REDIS-HEALTH-ARGS...",
    )  # fmt: skip
    parser.add_argument("port", type=int, help="the port on 127.0.0.1")
    parser.add_argument("checker", nargs=argparse.REMAINDER, help="after --: check-redis-health's arguments")
    args = parser.parse_args()
    serve(args.port, args.checker[1:] if args.checker[:1] == ["--"] else args.checker)


if __name__ == "__main__":
    main()
