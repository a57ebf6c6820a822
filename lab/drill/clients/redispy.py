"""The redis-py client adapter: ``python -m lab.drill.clients.redispy CONFIG.json``.

Reads one JSON config (see lab.drill.clients), runs the drill's workload through Sentinel (``clients``
workers, each RPUSHing increasing integers onto its own list) and writes lab.drill.history records as
JSON lines to ``out``. Settings ``defaults`` is what `Sentinel(...).master_for(...)` gives; the
``recommended`` ones are docs/clients.md's (each with the reason the matrix found for it).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from lab.drill.outcomes import error_class, served_by

RECOMMENDED: dict[str, Any] = {
    # A dead or hung node must not hold a command for ever (the default waits with no timeout).
    "socket_timeout": 1.0,
    "socket_connect_timeout": 0.5,
    # No silent retries with backoff: a failover is handled by rediscovery, and a retried write may
    # have been applied already.
    "retry": Retry(NoBackoff(), 0),
}
#: Replies that mean "this is not the master you want": drop the connections so the next command
#: asks the Sentinels (redis-py only does that by itself for READONLY). A master cut off from its
#: replicas answers NOREPLICAS (min-replicas-to-write) until Sentinel demotes it, long after a new
#: master took over.
REDISCOVER_ON = {"NOREPLICAS", "MASTERDOWN"}
RECOMMENDED_SENTINEL: dict[str, Any] = {
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
    "retry": Retry(NoBackoff(), 0),
}


def make_client(config: dict[str, Any]) -> redis.Redis:
    recommended = config["settings"] == "recommended"
    tls = config.get("tls")
    ssl = (
        {"ssl": True, "ssl_ca_certs": tls["ca"], "ssl_certfile": tls["cert"], "ssl_keyfile": tls["key"]} if tls else {}
    )
    sentinel = Sentinel(
        [tuple(s) for s in config["sentinels"]],
        sentinel_kwargs={
            "username": config.get("sentinel_username"),
            "password": config.get("sentinel_password"),
            **(RECOMMENDED_SENTINEL if recommended else {}),
            **ssl,
        },
        **ssl,
        username=config.get("username"),
        password=config.get("password"),
        **(RECOMMENDED if recommended else {}),
    )
    conn: redis.Redis = sentinel.master_for(config["master_name"])
    return conn


def main(path: str) -> int:
    config = json.loads(Path(path).read_text())
    Path(path).unlink(missing_ok=True)  # it holds the lab's passwords: gone once read, whatever happens next
    epoch_ms = float(config["epoch_ms"])
    work = config["workload"]
    recommended = config["settings"] == "recommended"
    records: list[dict[str, Any]] = []
    lock = threading.Lock()

    def now() -> float:
        return round(time.time() * 1000 - epoch_ms, 3)

    def record(**fields: Any) -> None:
        with lock:
            records.append({"t": now(), **fields})

    clients = []
    for process in range(work["clients"]):
        conn = make_client(config)
        try:
            conn.ping()  # connected before READY (a pooled client connects on its first command)
        except Exception as exc:
            record(type="client", process=process, event="error", detail=f"{type(exc).__name__}: {exc}"[:200])
        clients.append(conn)
    stop = threading.Event()  # set when the drill closes our stdin (or at the safety limit)

    def stop_on_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=stop_on_eof, daemon=True).start()
    safety = threading.Timer(work["duration_s"], stop.set)
    safety.daemon = True
    safety.start()
    print("READY", flush=True)

    def worker(process: int) -> None:
        key = f"{work['prefix']}:{process}"
        base = {"process": process, "f": "rpush", "key": key}
        conn = clients[process]
        value = 0
        while not stop.is_set():
            value += 1
            record(type="invoke", value=value, **base)
            try:
                conn.rpush(key, value)
            except Exception as exc:  # every failure is data: classified, recorded, and the loop goes on
                kind, maybe = error_class(exc)
                record(type="info" if maybe else "fail", value=value, error=kind, **base)
                if recommended and kind in REDISCOVER_ON:
                    conn.connection_pool.disconnect()  # ask the Sentinels again on the next command
                time.sleep(0.005)
                continue
            address = served_by(conn)
            record(type="ok", value=value, node=f"{address[0]}:{address[1]}" if address else None, **base)
        conn.close()

    threads = [threading.Thread(target=worker, args=(p,), daemon=True) for p in range(work["clients"])]
    for t in threads:
        t.start()
    # A worker blocked in a command with no timeout (the defaults) never returns: stop waiting for it.
    # Its last operation has an invoke and no completion, which the checker counts as indeterminate.
    stop.wait()
    given_up = time.monotonic() + 2
    for t in threads:
        t.join(timeout=max(0.0, given_up - time.monotonic()))
    with lock, Path(config["out"]).open("w") as out:
        for item in sorted(records, key=lambda r: r["t"]):
            out.write(json.dumps(item) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
