"""`lab up --monitoring` on both backends with real redis_exporter, Prometheus and Alertmanager: what it starts,
that it keeps secrets off command lines and out of readable files, least privilege under ACL, and that a
failure, an interrupt, a killed component or `lab down` leaves nothing of it behind."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path
from typing import Any

import pytest

from lab import control, procs, state
from lab.monitoring import api, stack
from lab.monitoring import config as monitoring_config
from lab.pytest_plugin import lab_name, require_backend, require_monitoring
from lab.spec import MONITORING_DIR, LabSpec, Monitoring
from lab.waits import wait_for
from tests.helpers import assert_no_lab_started, run_lab, start_lab

pytestmark = [pytest.mark.integration, pytest.mark.one_server]


@pytest.fixture(autouse=True)
def _monitoring() -> None:
    require_monitoring()


def monitoring_pids(lab_dir: Path) -> list[int]:
    """Every process working in the lab's monitoring directory."""
    top = lab_dir / MONITORING_DIR
    return procs.processes_under(top) if top.is_dir() else []


def secrets_of(spec: LabSpec) -> list[str]:
    return [s for s in (spec.password, spec.sentinel_password, *spec.acl_passwords.values()) if s]


def test_up_with_monitoring_scrapes_every_node_and_down_removes_it(tmp_path: Path, lab_backend: str) -> None:
    require_backend(lab_backend)
    home, name = tmp_path / "home", lab_name(f"mon-{lab_backend}")
    result = run_lab("up", "--name", name, "--backend", lab_backend, "--monitoring", "--json", home=home, timeout=180)
    try:
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout)
        mon = doc["monitoring"]
        assert set(mon["components"].values()) == {"running"} and len(mon["components"]) == 10, mon
        spec = state.load(home, name)
        assert api.targets_down(spec) == []
        # Every node's exporter reaches its node: redis_up is 1 for all six.
        up = api.prometheus(spec, "/api/v1/query", query="redis_up == 1")["result"]
        assert sorted(r["metric"]["instance"] for r in up) == sorted(n.name for n in spec.nodes)
        # The status line a user reads names both URLs.
        status = run_lab("status", "--name", name, home=home)
        assert f"Prometheus {mon['prometheus']}" in status.stdout and "10 of 10 processes running" in status.stdout
        # No secret on a command line or in a file others can read; the lab's monitoring files are 0600.
        pids = monitoring_pids(spec.base_dir)
        assert len(pids) == 10, pids
        for pid in pids:
            cmdline = Path(f"/proc/{pid}/cmdline").read_text()
            assert not any(secret in cmdline for secret in secrets_of(spec)), cmdline
        for path in (p for p in (spec.base_dir / MONITORING_DIR).rglob("*") if p.is_file() and "data" not in p.parts):
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    finally:
        down = run_lab("down", "--name", name, home=home, timeout=120)
    assert down.returncode == 0, down.stderr
    assert monitoring_pids(home / name) == [] and not (home / name).exists()


def test_the_exporters_log_in_as_the_least_privileged_users(tmp_path: Path, profile_file: Any) -> None:
    """The production profile's ACL users: the data nodes' exporters are `monitor` (PING and INFO), the
    Sentinels' `client`; the password reaches each through its environment (readable by its owner only).
    (Scraped and evaluated every second, not production's 15 s: what is checked is who logs in.)"""
    home, name = tmp_path / "home", lab_name("mon-acl")
    fast = profile_file(base="production", monitoring={"scrape_interval": "1s", "evaluation_interval": "1s"})
    spec = control.up(name, fast, "local", home, monitoring=True).spec
    try:
        for node in spec.nodes:
            pid = stack.pid_of(spec, f"exporter/{node.name}")
            assert pid is not None
            environ = dict(
                line.split("=", 1) for line in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in line
            )
            assert environ["REDIS_USER"] == ("monitor" if node.kind == "redis" else "client")
            assert stat.S_IMODE(os.stat(f"/proc/{pid}/environ").st_mode) == 0o400
        up = api.prometheus(spec, "/api/v1/query", query="redis_up == 1")["result"]
        assert len(up) == 6, up
        # check-redis-health beside them, as the same two users, finds the lab healthy (PING and INFO suffice).
        pid = stack.pid_of(spec, "health")
        assert pid is not None
        health_env = Path(f"/proc/{pid}/environ").read_text().split("\0")
        assert "REDIS_USERNAME=monitor" in health_env and "SENTINEL_USERNAME=client" in health_env
        status = api.prometheus(spec, "/api/v1/query", query="redis_health_status")["result"]
        # (OK, or WARNING on a loaded machine: a PING round trip over its 100 ms warning threshold)
        assert [float(r["value"][1]) < 2 for r in status] == [True], status
    finally:
        control.down(name, home)


def test_a_killed_component_is_a_problem_that_up_repairs(tmp_path: Path) -> None:
    home, name = tmp_path / "home", lab_name("mon-kill")
    spec = control.up(name, "lab", "local", home, monitoring=True).spec
    try:
        pid = stack.pid_of(spec, "prometheus")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert procs.wait_gone(pid)
        status = run_lab("status", "--name", name, home=home)
        assert status.returncode == 1 and "monitoring: prometheus is not running" in status.stdout, status.stdout
        repaired = run_lab("up", "--name", name, home=home, timeout=120)
        assert repaired.returncode == 0 and "started prometheus" in repaired.stdout, repaired.stdout
        assert stack.pid_of(spec, "prometheus") not in (None, pid)
    finally:
        control.down(name, home)


def test_monitoring_is_added_to_a_running_lab_and_refused_without_it(tmp_path: Path) -> None:
    home, name = tmp_path / "home", lab_name("mon-add")
    control.up(name, "lab", "local", home)
    try:
        refused = run_lab("alerts", "--name", name, home=home)
        assert refused.returncode == 1 and refused.stderr.strip().count("\n") == 0, refused.stderr
        assert f"runs without monitoring: `lab up --name {name} --monitoring` adds it" in refused.stderr
        added = run_lab("up", "--name", name, "--monitoring", home=home, timeout=120)
        assert added.returncode == 0 and "started monitoring (added)" in added.stdout, added.stdout
        alerts = run_lab("alerts", "--name", name, "--json", home=home)
        assert alerts.returncode == 0, alerts.stderr
        # None of the shipped rules is up on a healthy lab (the community's RedisMissingMaster, `for: 0m`, may
        # still be firing from Prometheus's first evaluations, before it had any target: docs/monitoring.md).
        shipped = [a for a in json.loads(alerts.stdout)["active"] if a["source"] == "redis-ha-lab"]
        assert shipped == [], shipped
    finally:
        control.down(name, home)
    assert monitoring_pids(home / name) == []


def test_missing_binaries_are_one_line_naming_the_package(tmp_path: Path) -> None:
    bare = tmp_path / "bin"  # the system's tools, but none of monitoring's
    bare.mkdir()
    for tool in Path("/usr/bin").iterdir():
        if not tool.name.startswith(("prometheus", "promtool", "amtool")):
            (bare / tool.name).symlink_to(tool)
    home = tmp_path / "home"
    result = run_lab("up", "--name", "nomon", "--monitoring", home=home, env={"PATH": str(bare)})
    assert_no_lab_started(home, "nomon")
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0, result.stderr
    assert "apt-get install prometheus prometheus-alertmanager prometheus-redis-exporter" in result.stderr
    assert not (home / "nomon").exists()


def test_a_component_that_cannot_start_rolls_the_new_lab_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prometheus's port taken between the choice and the start: one error naming it, and the new lab is
    gone, nodes and monitoring alike."""
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    chosen = monitoring_config.plan

    def plan_with_a_taken_port(spec: LabSpec, profile: Any) -> Monitoring:
        planned = chosen(spec, profile)
        return Monitoring({**planned.ports, "prometheus": port}, planned.scrape_s, planned.evaluation_s)

    monkeypatch.setattr(monitoring_config, "plan", plan_with_a_taken_port)
    home, name = tmp_path / "home", lab_name("mon-port")
    try:
        with pytest.raises(Exception, match=r"prometheus exited at start .*address already in use"):
            control.up(name, "lab", "local", home, monitoring=True)
    finally:
        taken.close()
    assert not (home / name).exists() and procs.processes_under(home) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_up_interrupted_while_monitoring_starts_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM: the new lab is rolled back, monitoring included. kill -9: what it started stays, and `lab down`
    (of the lab, or of its unreadable remains) stops every monitoring process too."""
    home, name = tmp_path / "home", lab_name("mon-intr")
    up = start_lab("up", "--name", name, "--backend", "local", "--monitoring", home=home)
    try:
        wait_for(
            lambda: (len(monitoring_pids(home / name)) >= 3, monitoring_pids(home / name)),
            what="monitoring processes of the new lab",
            timeout=60,
            interval=0.005,
        )
        up.send_signal(sig)
        _, err = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
            up.communicate()
    if sig == signal.SIGTERM:
        assert up.returncode == 128 + sig and "Traceback" not in err, err
    else:
        assert monitoring_pids(home / name), "kill -9 left the started processes (nothing could stop them)"
        down = run_lab("down", "--name", name, home=home, timeout=120)
        assert down.returncode in (0, 1), down.stderr  # (1: its state was never written, its remains removed)
    assert monitoring_pids(home / name) == [] and procs.processes_under(home) == []
    assert not (home / name).exists() or not any((home / name).iterdir())


def test_down_stops_monitorings_processes_and_no_one_elses(tmp_path: Path) -> None:
    """A process a user started inside the lab's monitoring directory (a shell there, a Python) is not the lab's:
    `lab down` stops the ten it started and leaves that one alone."""
    import subprocess
    import sys

    home, name = tmp_path / "home", lab_name("mon-other")
    spec = control.up(name, "lab", "local", home, monitoring=True).spec
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], cwd=stack.home(spec))
    try:
        assert len(monitoring_pids(spec.base_dir)) == 11
        control.down(name, home)
        assert bystander.poll() is None, "lab down stopped a process it did not start"
        assert monitoring_pids(home / name) == [] or not (home / name).exists()
    finally:
        bystander.kill()
        bystander.wait()
        if state.exists(home, name):
            control.down(name, home)


def test_a_tls_lab_is_scraped_over_tls(tmp_path: Path) -> None:
    """`lab up --tls --monitoring`: the exporters and check-redis-health reach every node over TLS with the
    lab's CA and client certificate (its ports take nothing else)."""
    home, name = tmp_path / "home", lab_name("mon-tls")
    spec = control.up(name, "lab", "local", home, tls=True, monitoring=True).spec
    try:
        pid = stack.pid_of(spec, "exporter/redis-1")
        assert pid is not None and "-redis.addr=rediss://" in Path(f"/proc/{pid}/cmdline").read_text()
        up = api.prometheus(spec, "/api/v1/query", query='redis_up{job=~"redis|sentinel"} == 1')["result"]
        assert len(up) == 6, up
        status = api.prometheus(spec, "/api/v1/query", query="redis_health_status")["result"]
        # (OK, or WARNING on a loaded machine: a PING round trip over its 100 ms warning threshold)
        assert [float(r["value"][1]) < 2 for r in status] == [True], status
    finally:
        control.down(name, home)


def test_a_component_its_pid_file_lost_is_replaced_not_left_answering(tmp_path: Path) -> None:
    """A `lab up` killed between starting Prometheus and writing its pid file leaves one running that no pid
    file names: the next `lab up` stops it and starts its own (it used to see the old one answer and say
    "started prometheus" while the new one had died on the taken port)."""
    home, name = tmp_path / "home", lab_name("mon-stray")
    spec = control.up(name, "lab", "local", home, monitoring=True).spec
    try:
        old = stack.pid_of(spec, "prometheus")
        assert old is not None
        (stack.directory(spec, "prometheus") / stack.PIDFILE).unlink()
        repaired = run_lab("up", "--name", name, home=home, timeout=120)
        assert repaired.returncode == 0 and "started prometheus" in repaired.stdout, repaired.stdout + repaired.stderr
        assert procs.wait_gone(old, 1) and stack.pid_of(spec, "prometheus") not in (None, old)
        assert run_lab("status", "--name", name, home=home).returncode == 0
    finally:
        control.down(name, home)


def test_down_stops_monitoring_whose_directory_was_renamed(tmp_path: Path) -> None:
    home, name = tmp_path / "home", lab_name("mon-moved")
    spec = control.up(name, "lab", "local", home, monitoring=True).spec
    (spec.base_dir / MONITORING_DIR).rename(spec.base_dir / "monitoring.real")
    try:
        control.down(name, home)
        assert procs.processes_under(home) == [], "a monitoring process outlived `lab down`"
    finally:
        stack.stop_under(spec.base_dir)


def test_the_webhook_records_only_alertmanagers_notifications(tmp_path: Path) -> None:
    """Anyone on the host can post to it: a body of another shape is refused (400) and never reaches
    `lab alerts` or a drill's report; a line corrupted in its file is skipped."""
    import urllib.error
    import urllib.request

    home, name = tmp_path / "home", lab_name("mon-hook")
    spec = control.up(name, "lab", "local", home, monitoring=True).spec
    try:
        url = spec.monitoring.url("webhook") + "/page"  # type: ignore[union-attr]

        def post(body: bytes) -> int:
            try:
                return int(urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=5).status)
            except urllib.error.HTTPError as exc:
                return exc.code

        for bad in (b'{"alerts": [{"status": "firing", "labels": "x"}]}', b"[1]", b"\xff\xfe", b'{"alerts": 3}'):
            assert post(bad) == 400, bad
        good = b'{"status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "Test"}}]}'
        assert post(good) == 200
        with api.notifications_path(spec.base_dir).open("a") as notes:
            notes.write('[1, 2]\n{"received": "x"}\n')
        alerts = run_lab("alerts", "--name", name, "--json", home=home)
        assert alerts.returncode == 0 and "Traceback" not in alerts.stderr, alerts.stderr
        assert [n["alerts"][0]["labels"]["alertname"] for n in json.loads(alerts.stdout)["notifications"]] == ["Test"]
    finally:
        control.down(name, home)
