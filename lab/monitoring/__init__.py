"""Monitoring beside a lab (``lab up --monitoring``): redis_exporter for every node, Prometheus with the
shipped rules (conf/monitoring/) and the community's, Alertmanager, and a webhook that records what
Alertmanager sends. ``config`` renders their files, ``stack`` runs them as the lab's processes,
``api`` reads what they saw."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.spec import LabSpec

#: component -> (the binary it runs, the Debian package that ships it)
BINARIES = {
    "prometheus": ("prometheus", "prometheus"),
    "alertmanager": ("prometheus-alertmanager", "prometheus-alertmanager"),
    "exporter": ("prometheus-redis-exporter", "prometheus-redis-exporter"),
}
#: The ``instance`` label of the check-redis-health scrape target (the "health" component).
HEALTH_INSTANCE = "check-redis-health"


def components(spec: LabSpec) -> list[str]:
    """Every monitoring process of a lab, in the order they start (exporters before what reads them). A lab
    made before a component existed lacks its port, and runs without it."""
    every = [f"exporter/{node.name}" for node in spec.nodes] + ["health", "webhook", "alertmanager", "prometheus"]
    return [c for c in every if spec.monitoring is None or c in spec.monitoring.ports]
