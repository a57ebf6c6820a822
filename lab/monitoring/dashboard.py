"""The Grafana dashboard of the shipped metrics, generated from code: ``python -m lab.monitoring.dashboard``
writes conf/monitoring/grafana-dashboard.json (``--check``: exit 1 if the committed file is not what this
generates). Grafana itself is not installable here: the tests check that every panel's query parses
(promtool) and names only metrics the lab's exporters give, the shipped recording rules, or ALERTS."""

from __future__ import annotations

import json
import sys
from typing import Any

from lab import CONF_DIR

PATH = CONF_DIR / "monitoring" / "grafana-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

Target = tuple[str, str]  # (PromQL, legend)
Panel = tuple[str, str, str, list[Target]]  # (title, stat or timeseries, unit, targets)
R, S = '{job="redis"}', '{job="sentinel"}'


def stat(title: str, expr: str, legend: str = "") -> Panel:
    return (title, "stat", "none", [(expr, legend)])


def series(title: str, unit: str, *targets: Target) -> Panel:
    return (title, "timeseries", unit, list(targets))


ROWS: list[tuple[str, list[Panel]]] = [
    (
        "Replication group",
        [
            stat("Data nodes that say master", "redis_ha:masters:count"),
            stat("Masters the Sentinels name", "redis_ha:sentinel_masters:count", "{{master_name}}"),
            stat("CKQUORUM (1 = OK)", f"min(redis_sentinel_master_ckquorum_status{S})"),
            stat("Sentinels in TILT", f"sum(redis_sentinel_tilt{S})"),
            stat("Alerts firing", 'count by (alertname) (ALERTS{alertstate="firing"})', "{{alertname}}"),
        ],
    ),
    (
        "Data nodes",
        [
            series("Up (exporter and node)", "none", (f"min by (instance) (up{R} * redis_up{R})", "{{instance}}")),
            series(
                "Master (1) or replica (0)",
                "none",
                ('max by (instance) (redis_instance_info{job="redis", role="master"})', "{{instance}}"),
            ),
            series("Replication link up", "none", (f"redis_master_link_up{R}", "{{instance}}")),
            series(
                "Replica lag",
                "s",
                (f"redis_connected_slave_lag_seconds{R}", "{{instance}} -> {{slave_ip}}:{{slave_port}}"),
            ),
            series(
                "Memory used of maxmemory",
                "percentunit",
                (f"redis_memory_used_bytes{R} / (redis_memory_max_bytes{R} > 0)", "{{instance}}"),
            ),
            series("Commands per second", "ops", (f"rate(redis_commands_processed_total{R}[1m])", "{{instance}}")),
            series("Connected clients", "none", (f"redis_connected_clients{R}", "{{instance}}")),
            series(
                "Rejected connections (5 m)",
                "none",
                (f"increase(redis_rejected_connections_total{R}[5m])", "{{instance}}"),
            ),
            series("Keys", "none", (f"sum by (instance) (redis_db_keys{R})", "{{instance}}")),
            series(
                "Last RDB save / AOF write OK",
                "none",
                (f"redis_rdb_last_bgsave_status{R}", "{{instance}} rdb"),
                (f"redis_aof_last_write_status{R}", "{{instance}} aof"),
            ),
        ],
    ),
    (
        "Sentinels",
        [
            series(
                "Master as each Sentinel sees it (1 = ok)",
                "none",
                (f"redis_sentinel_master_status{S}", "{{instance}}: {{master_address}} {{master_status}}"),
            ),
            series(
                "Usable / known Sentinels",
                "none",
                (f"redis_sentinel_master_ok_sentinels{S}", "{{instance}} usable"),
                (f"redis_sentinel_master_sentinels{S}", "{{instance}} known"),
            ),
            series(
                "Usable / known replicas",
                "none",
                (f"redis_sentinel_master_ok_slaves{S}", "{{instance}} usable"),
                (f"redis_sentinel_master_slaves{S}", "{{instance}} known"),
            ),
            series("Sentinel up", "none", (f"min by (instance) (up{S} * redis_up{S})", "{{instance}}")),
        ],
    ),
]


def exprs() -> list[str]:
    return [expr for _, panels in ROWS for _, _, _, targets in panels for expr, _ in targets]


def dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    for row, members in ROWS:
        row_panel = {"type": "row", "title": row, "id": len(panels) + 1, "collapsed": False, "panels": []}
        panels.append({**row_panel, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        y += 1
        width = 24 // 5 if members[0][1] == "stat" else 8
        for i, (title, kind, unit, targets) in enumerate(members):
            x = (i * width) % 24
            if i and x == 0:
                y += 8
            panels.append({
                "type": kind, "title": title, "id": len(panels) + 1, "datasource": DATASOURCE,
                "gridPos": {"h": 8, "w": width, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + n)}
                    for n, (expr, legend) in enumerate(targets)
                ],
            })  # fmt: skip
        y += 8
    return {
        "title": "Redis HA (redis-ha-lab)",
        "uid": "redis-ha-lab",
        "description": "The metrics the shipped alert rules read (conf/monitoring/), per data node and Sentinel.",
        "tags": ["redis", "sentinel", "redis-ha-lab"],
        "schemaVersion": 37,
        "version": 1,
        "editable": True,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "10s",
        "templating": {
            "list": [{"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus"}]
        },
        "panels": panels,
    }


def text() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lab.monitoring.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is not what this generates")
    if parser.parse_args(argv).check:
        if PATH.read_text() != text():
            print(f"dashboard: {PATH} is not what lab.monitoring.dashboard generates: run it without --check")
            return 1
        return 0
    PATH.write_text(text())
    print(f"dashboard: wrote {PATH} ({len(exprs())} queries)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
