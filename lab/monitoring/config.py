"""Monitoring's files for one lab, rendered from conf/monitoring/ and the profile's ``monitoring``
section: prometheus.yml, alertmanager.yml and the rules (the shipped ones with the profile's timers, the
community's as published). Pure: choosing ports is the only thing here that touches the machine."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from lab import CONF_DIR
from lab.monitoring import HEALTH_INSTANCE, components
from lab.render import RULES_FILE, environment, render_rules
from lab.spec import MONITORING_DIR, LabSpec, Monitoring

if TYPE_CHECKING:
    from lab.profile import Profile

COMMUNITY_RULES = CONF_DIR / "monitoring" / "community.rules.yml"


def seconds(duration: str) -> float:
    """A Prometheus duration of one unit ("1s", "500ms", "5m") in seconds."""
    from lab.profile import duration_seconds

    return duration_seconds(duration)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def plan(spec: LabSpec, profile: Profile) -> Monitoring:
    """A port on 127.0.0.1 for each component (free now) and the profile's intervals."""
    ports: dict[str, int] = {}
    for component in components(replace(spec, monitoring=None)):
        port = free_port()
        while port in ports.values():
            port = free_port()
        ports[component] = port
    settings = profile.monitoring
    return Monitoring(
        ports=ports,
        scrape_s=seconds(settings["scrape_interval"]),
        evaluation_s=seconds(settings["evaluation_interval"]),
    )


def render(spec: LabSpec, profile: Profile, directory: Path) -> None:
    """Write monitoring's files for ``spec`` under ``directory`` (a lab's, or a new lab's staging one)."""
    from lab.secretfiles import write_secret

    monitoring = spec.monitoring
    assert monitoring is not None
    settings = profile.monitoring
    home = directory / MONITORING_DIR
    env = environment()
    exporters = [
        {"name": node.name, "kind": node.kind, "port": monitoring.ports[f"exporter/{node.name}"]} for node in spec.nodes
    ]
    prometheus = env.get_template("monitoring/prometheus.yml.tpl").render(
        lab=spec.name,
        scrape_interval=settings["scrape_interval"],
        evaluation_interval=settings["evaluation_interval"],
        alertmanager_port=monitoring.ports["alertmanager"],
        exporters=exporters,
        health_port=monitoring.ports.get("health"),
        health_instance=HEALTH_INSTANCE,
    )
    alertmanager = env.get_template("monitoring/alertmanager.yml.tpl").render(
        group_wait=settings["evaluation_interval"], webhook_port=monitoring.ports["webhook"]
    )
    # None holds a secret; 0600 all the same (what a lab writes is its own).
    write_secret(home / "prometheus.yml", prometheus.rstrip("\n"))
    write_secret(home / "alertmanager.yml", alertmanager.rstrip("\n"))
    write_secret(directory / RULES_FILE, render_rules(profile).rstrip("\n"))
    write_secret((directory / RULES_FILE).parent / COMMUNITY_RULES.name, COMMUNITY_RULES.read_text().rstrip("\n"))
