"""Monitoring's processes for one lab, on the host for both backends (they reach the nodes' addresses as
any client does; a fault that cuts a node off from clients cuts it off from Prometheus too).

Each component runs in its own directory under the lab's ``monitoring/`` (its pid file, its log, its data);
a process is the lab's only if it runs there, and a monitoring binary (or this Python for the webhook).
Credentials reach an exporter through its environment (readable by its owner only), never its command line:
the data nodes' least-privilege ``monitor`` user where the lab has ACL users, the Sentinels' ``client``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from lab import procs
from lab.errors import LabError
from lab.monitoring import BINARIES, components
from lab.spec import MONITORING_DIR, LabSpec, Monitoring, Node

READY_TIMEOUT = 30.0
PIDFILE, LOGFILE = "pid", "log"


def home(spec: LabSpec) -> Path:
    """The lab's monitoring directory."""
    return spec.base_dir / MONITORING_DIR


def directory(spec: LabSpec, component: str) -> Path:
    return home(spec) / component.replace("/", "-")


def missing_binaries() -> list[str]:
    """What `lab up --monitoring` needs and cannot find: "binary (Debian package)"."""
    return [f"{binary} (Debian package {package})" for binary, package in BINARIES.values() if not shutil.which(binary)]


def check_binaries() -> None:
    missing = missing_binaries()
    if missing:
        packages = " ".join(BINARIES[c][1] for c in BINARIES if not shutil.which(BINARIES[c][0]))
        raise LabError(f"monitoring needs {', '.join(missing)}: apt-get install {packages}")


def _exporter(spec: LabSpec, node: Node, port: int, timeout: float) -> tuple[list[str], dict[str, str]]:
    user = "client" if node.kind == "sentinel" else ("monitor" if "users/monitor" in spec.acl_passwords else "admin")
    auth = spec.auth(node.kind, user)
    env = {"REDIS_PASSWORD": auth["password"] or ""}
    if auth["username"]:
        env["REDIS_USER"] = auth["username"]
    argv = [
        BINARIES["exporter"][0],
        f"-web.listen-address=127.0.0.1:{port}",
        f"-redis.addr={'rediss' if spec.tls else 'redis'}://{node.host}:{node.port}",
        f"-connection-timeout={max(timeout, 0.5):g}s",
        "-set-client-name=false",  # CLIENT SETNAME, CONFIG GET: not the monitor user's (see docs/monitoring.md)
        "-config-command=-",
    ]
    if spec.tls:
        files = spec.tls_files()
        argv += [
            f"-tls-ca-cert-file={files.ca}",
            f"-tls-client-cert-file={files.client_cert}",
            f"-tls-client-key-file={files.client_key}",
        ]
    return argv, env


def _health(spec: LabSpec, port: int, scrape_s: float) -> tuple[list[str], dict[str, str], str]:
    """check-redis-health through the Sentinels, as the monitor and client users (their passwords in its
    environment), with a connection timeout that lets one scrape visit every node within a scrape interval."""
    data = spec.auth("redis", "monitor" if "users/monitor" in spec.acl_passwords else "admin")
    sentinel = spec.auth("sentinel", "client")
    env = {"REDIS_PASSWORD": data["password"] or "", "SENTINEL_PASSWORD": sentinel["password"] or ""}
    if data["username"]:
        env |= {"REDIS_USERNAME": data["username"], "SENTINEL_USERNAME": sentinel["username"] or ""}
    if spec.tls:
        files = spec.tls_files()
        env |= {"REDIS_TLS_CA_CERT": str(files.ca), "REDIS_TLS_CERT": str(files.client_cert),
                "REDIS_TLS_KEY": str(files.client_key)}  # fmt: skip
    checker = [f"--sentinel={n.address}" for n in spec.sentinels]
    checker += [f"--master-name={spec.master_name}", f"--timeout={max(scrape_s / 8, 0.1):g}"]
    checker += [f"--expect-replicas={len(spec.redis_nodes) - 1}"]
    argv = [sys.executable, "-m", "lab.monitoring.healthprobe", str(port), "--", *checker]
    return argv, env, f"http://127.0.0.1:{port}/"


def command(spec: LabSpec, component: str) -> tuple[list[str], dict[str, str], str]:
    """(argv, environment beyond PATH, the URL that answers once it serves) of one component."""
    from lab.monitoring import api

    mon = _monitoring(spec)
    port = mon.ports[component]
    top, here = home(spec), directory(spec, component)
    if component.startswith("exporter/"):
        argv, env = _exporter(spec, spec.node(component.split("/", 1)[1]), port, mon.scrape_s * 0.8)
        return argv, env, f"http://127.0.0.1:{port}/"
    if component == "health":
        return _health(spec, port, mon.scrape_s)
    if component == "webhook":
        argv = [sys.executable, "-m", "lab.monitoring.webhook", str(port), str(api.notifications_path(spec.base_dir))]
        return argv, {}, f"http://127.0.0.1:{port}/health"
    if component == "alertmanager":
        argv = [
            BINARIES["alertmanager"][0],
            f"--config.file={top / 'alertmanager.yml'}",
            f"--storage.path={here / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # one Alertmanager: no gossip port
            "--log.level=warn",
        ]
        return argv, {}, f"http://127.0.0.1:{port}/-/ready"
    argv = [
        BINARIES["prometheus"][0],
        f"--config.file={top / 'prometheus.yml'}",
        f"--storage.tsdb.path={here / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=7d",
        "--log.level=warn",
    ]
    return argv, {}, f"http://127.0.0.1:{port}/-/ready"


def _monitoring(spec: LabSpec) -> Monitoring:
    assert spec.monitoring is not None, "a lab without monitoring"
    return spec.monitoring


def _ours(pid: int) -> bool:
    """A live process working in the lab's monitoring directory that runs a monitoring binary, or a Python
    running one of lab.monitoring's processes (a Python a user started there is not one)."""
    if procs.state_letter(pid) in ("", "Z", "X"):
        return False
    exe = os.path.basename(procs.exe_path(pid))
    if exe in {b for b, _ in BINARIES.values()}:
        return True
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return exe.startswith("python") and argv[1:3] in (
        [b"-m", b"lab.monitoring.webhook"],
        [b"-m", b"lab.monitoring.healthprobe"],
    )


def pid_of(spec: LabSpec, component: str) -> int | None:
    """The running process of ``component``, or None."""
    here = directory(spec, component)
    try:
        pid = int((here / PIDFILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _ours(pid) and procs.workdir(pid) == here.resolve() else None


def running(spec: LabSpec) -> dict[str, int | None]:
    """Every component of the lab's monitoring and its pid (None: not running)."""
    return {component: pid_of(spec, component) for component in components(spec)} if spec.monitoring else {}


def _log_tail(spec: LabSpec, component: str, lines: int = 3) -> str:
    try:
        text = (directory(spec, component) / LOGFILE).read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.splitlines()[-lines:])


def start(spec: LabSpec, only: list[str] | None = None) -> None:
    """Start the lab's monitoring (or the components ``only`` names) and return once every one serves and
    Prometheus has scraped every exporter; LabError names the component that did not, with its log's end."""
    from lab.monitoring import api
    from lab.waits import wait_for

    check_binaries()
    wanted = [c for c in components(spec) if only is None or c in only]
    path = os.environ.get("PATH", "/usr/bin:/bin")
    started: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    for component in wanted:
        argv, env, ready = command(spec, component)
        here = directory(spec, component)
        # One its pid file does not name (a `lab up` killed before it wrote it) still holds the port, and would
        # answer for the new one: it goes first.
        procs.terminate([pid for pid in procs.processes_under(here) if _ours(pid)] if here.is_dir() else [])
        here.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = os.open(here / LOGFILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            proc = subprocess.Popen(
                argv,
                cwd=here,
                env={"PATH": path, "LANG": "C.UTF-8", **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C at the terminal is the command's to handle, not theirs
            )
        finally:
            os.close(log)
        pidfile = os.open(here / PIDFILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(pidfile, f"{proc.pid}\n".encode())
        os.close(pidfile)
        started[component] = (proc, ready)

    def serving() -> tuple[bool, str]:
        for component, (proc, ready) in started.items():
            if proc.poll() is not None:
                raise LabError(
                    f"monitoring: {component} exited at start ({proc.returncode}): {_log_tail(spec, component)}"
                )
            if not api.answers(ready):
                return False, f"{component} does not answer {ready} yet"
        return True, ""

    wait_for(serving, what=f"lab {spec.name}'s monitoring to serve", timeout=READY_TIMEOUT, interval=0.05)
    if "prometheus" in started or only is None:
        wait_scraped(spec, timeout=READY_TIMEOUT + 2 * _monitoring(spec).evaluation_s)
    for component, (proc, _) in started.items():  # still the process that answered, not one that died since
        if proc.poll() is not None:
            raise LabError(f"monitoring: {component} exited at start ({proc.returncode}): {_log_tail(spec, component)}")


def wait_scraped(spec: LabSpec, timeout: float = READY_TIMEOUT) -> None:
    """Until Prometheus has scraped every exporter and then evaluated every rule group: its alerts then judge
    the whole lab (an evaluation between the first scrapes of some exporters and of the others would leave,
    say, RedisNoMaster pending for an evaluation)."""
    from lab.monitoring import api
    from lab.waits import WaitTimeout, wait_for

    def scraped() -> tuple[bool, list[str]]:
        down = api.targets_down(spec)
        return not down, down

    def evaluated(after: float) -> tuple[bool, list[str]]:
        groups = api.prometheus(spec, "/api/v1/rules")["groups"]
        behind = [g["name"] for g in groups if api.unix(g.get("lastEvaluation", "")) <= after]
        return not behind, behind

    try:
        wait_for(scraped, what=f"lab {spec.name}'s Prometheus to scrape every exporter", timeout=timeout, interval=0.1,
                 describe=lambda down: "not up: " + ", ".join(down))  # fmt: skip
        targets = api.prometheus(spec, "/api/v1/targets", state="active")["activeTargets"]
        last = max(api.unix(t["lastScrape"]) for t in targets)
        wait_for(lambda: evaluated(last), what=f"lab {spec.name}'s rules to be evaluated on every exporter's data",
                 timeout=timeout, interval=0.1, describe=lambda behind: "not yet: " + ", ".join(behind))  # fmt: skip
    except WaitTimeout as exc:
        raise LabError(str(exc)) from None


def stop(spec: LabSpec) -> list[str]:
    """Stop every monitoring process of the lab (whatever works in its monitoring directory and runs a
    monitoring binary or a Python); what could not be stopped is returned."""
    pids = stop_under(spec.base_dir)
    return [f"monitoring process {pid}" for pid in pids if not procs.exited(pid)]


def stop_under(lab_dir: Path) -> list[int]:
    """:func:`stop` for a lab known only by its directory (its state unreadable): the pids it signalled. Every
    monitoring process working anywhere in the lab's directory: its ``monitoring/`` renamed, they still are."""
    if not lab_dir.is_dir():
        return []
    pids = [pid for pid in procs.processes_under(lab_dir) if _ours(pid)]
    procs.terminate(pids)
    return pids
