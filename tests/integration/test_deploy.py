"""`lab hosts` and `lab deploy` on simulated hosts: real sshd, real Ansible, real Redis and Sentinel on
three hosts with their own addresses and filesystems. The role deploys exactly what `lab render`
renders, a second run changes nothing, and a run after a failover (or with a changed profile) keeps
what Sentinel owns: no failover, the same master, the same epochs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from lab.hosts import inventory as inventory_mod
from lab.hosts import sim
from lab.pytest_plugin import lab_name, require_hosts
from tests.helpers import run_lab

pytestmark = [pytest.mark.integration, pytest.mark.one_server, pytest.mark.one_backend]

DEPLOY_TIMEOUT = 600


@pytest.fixture(autouse=True)
def _hosts() -> None:
    require_hosts()


class Hosts:
    """A set made by `lab hosts up` in a test's home, and what a test needs to reach it."""

    def __init__(self, home: Path, name: str, doc: dict[str, Any]) -> None:
        self.home, self.name, self.doc = home, name, doc
        self.inventory, self.vault = doc["inventory"], doc["vault_password_file"]
        self.address = {h["name"]: h["address"] for h in doc["hosts"]}

    def ssh(self, host: str, command: str) -> str:
        argv = ["ssh", "-i", self.doc["key"], "-o", f"UserKnownHostsFile={self.doc['known_hosts']}"]
        argv += ["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"root@{self.address[host]}", command]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def deploy(self, *extra: str) -> dict[str, Any]:
        args = ("deploy", "-i", self.inventory, "--vault-password-file", self.vault, "--json", *extra)
        done = run_lab(*args, home=self.home, timeout=DEPLOY_TIMEOUT)
        assert done.returncode == 0, done.stdout + done.stderr
        return {h["host"]: h for h in json.loads(done.stdout)["hosts"]}

    def secrets(self) -> dict[str, Any]:
        return inventory_mod.load(Path(self.inventory), Path(self.vault)).variables()


@contextlib.contextmanager
def host_set(tmp_path: Path, count: int) -> Iterator[Hosts]:
    """`lab hosts up COUNT` in a test's home; `lab hosts down` after, which leaves nothing behind."""
    home, name = tmp_path / "home", lab_name("hosts")
    made = run_lab("hosts", "up", str(count), "--name", name, "--json", home=home, timeout=120)
    try:
        assert made.returncode == 0, made.stderr
        yield Hosts(home, name, json.loads(made.stdout))
    finally:
        gone = run_lab("hosts", "down", "--name", name, home=home, timeout=120)
        assert gone.returncode == 0, gone.stderr
        assert not (home / sim.HOSTS_DIR / name).exists()
        leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
        digest = sim._digest(home / sim.HOSTS_DIR / name)
        assert f"lh-{digest}" not in leftover
        assert subprocess.run(["ip", "link", "show", f"lh-{digest}"], capture_output=True, check=False).returncode != 0


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    with host_set(tmp_path, 3) as made:
        yield made


def sentinels(h: Hosts, variables: dict[str, Any]) -> list[Any]:
    password = variables["redis_ha_sentinel_users"]["admin"]
    return [
        redis.Redis(h.address[f"host-{i}"], 26379, username="admin", password=password, decode_responses=True)
        for i in (1, 2, 3)
    ]


def sentinel_state(h: Hosts, variables: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What each Sentinel owns: the master it monitors, its epoch, the replicas and Sentinels it knows."""
    seen = []
    for s in sentinels(h, variables):
        m = s.sentinel_master("mymaster")
        replicas = sorted(r["name"] for r in s.sentinel_slaves("mymaster"))
        seen.append((m["ip"], m["port"], m["config-epoch"], m["num-other-sentinels"], tuple(replicas)))
    return seen


def live_files(h: Hosts) -> dict[str, str]:
    out = {}
    for host in h.address:
        for conf in ("redis.conf", "sentinel.conf"):
            out[f"{host}:{conf}"] = hashlib.sha256(h.ssh(host, f"cat /etc/redis/{conf}").encode()).hexdigest()
    return out


def wait_for_agreement(h: Hosts, variables: dict[str, Any], not_ip: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        views = {s.sentinel_get_master_addr_by_name("mymaster") for s in sentinels(h, variables)}
        if len(views) == 1 and next(iter(views))[0] != not_ip:
            ip = str(next(iter(views))[0])
            state = sentinel_state(h, variables)
            if all(s[0] == ip and len(s[4]) == 2 and s[3] == 2 for s in state):
                return ip
        time.sleep(0.2)
    raise AssertionError(f"Sentinels did not agree on a new master: {sentinel_state(h, variables)}")


def servers(h: Hosts, host: str) -> list[str]:
    """The redis-server processes running on a host (their command lines): not a zombie, the exited process a
    daemonizing or stopped server leaves until the host's pid 1 (sshd) reaps it."""
    listed = h.ssh(host, "ps -o stat=,args= -C redis-server || true").strip().splitlines()
    return [line.split(None, 1)[1] for line in listed if not line.lstrip().startswith("Z")]


def healthy(h: Hosts, name: str, timeout: float = 60) -> dict[str, Any]:
    """`lab status --json` of an attached lab once it says healthy (exit 0)."""
    deadline = time.monotonic() + timeout
    while (status := run_lab("status", "--name", name, "--json", home=h.home, timeout=60)).returncode != 0:
        assert time.monotonic() < deadline, status.stdout + status.stderr
        time.sleep(1)
    return dict(json.loads(status.stdout))


def test_six_simulated_hosts_take_three_data_nodes_three_sentinels_and_boot_them(tmp_path: Path) -> None:
    with host_set(tmp_path, 6) as hosts:
        simulated_hosts_are_hosts(hosts)
        # --check on hosts never deployed to: what would change, and nothing written (the unit, its link included).
        would = hosts.deploy("--check")
        assert all(h["changed"] and not h["failed"] for h in would.values()), would
        written = "ls /etc/redis-ha /etc/systemd/system/redis-ha.service 2>/dev/null | wc -l"
        assert hosts.ssh("host-4", written).strip() == "0"
        # The six-host layout: data nodes on host-1..3, Sentinels on host-4..6, each file what was rendered.
        assert all(h["changed"] and not h["failed"] for h in hosts.deploy().values())
        out = tmp_path / "rendered"
        args = ("-i", hosts.inventory, "--vault-password-file", hosts.vault)
        assert run_lab("render", *args, "--out", str(out), home=hosts.home).returncode == 0
        for i in range(1, 7):
            node, conf = (f"redis-{i}", "redis.conf") if i <= 3 else (f"sentinel-{i - 3}", "sentinel.conf")
            assert hosts.ssh(f"host-{i}", f"cat /etc/redis-ha/{node}.conf") == (out / node / conf).read_text(), node
            running = servers(hosts, f"host-{i}")
            assert len(running) == 1 and running[0].endswith("6379" if i <= 3 else "26379 [sentinel]"), running
        # The systemd unit that starts a host's nodes at boot and stops them at shutdown: enabled, and
        # what systemd-analyze makes of it on the host (its hooks there, executable).
        unit = "/etc/systemd/system/redis-ha.service"
        enabled = "/etc/systemd/system/multi-user.target.wants/redis-ha.service"
        assert hosts.ssh("host-2", f"readlink {enabled}").strip() == unit
        assert hosts.ssh("host-2", f"cd / && systemd-analyze verify {unit} 2>&1 && echo verified").strip() == "verified"
        # Its stop (a replica's host shut down), then a power cut and a boot: the boot hook starts the node.
        assert "stopped server" in hosts.ssh("host-2", "/opt/redis-ha/shutdown 2>&1")
        assert servers(hosts, "host-2") == []
        assert run_lab("hosts", "kill", "host-2", "--name", hosts.name, home=hosts.home).returncode == 0
        assert run_lab("hosts", "boot", "host-2", "--name", hosts.name, home=hosts.home).returncode == 0
        attached = run_lab("attach", "--name", "six", *args, home=hosts.home, timeout=120)
        assert attached.returncode == 0, attached.stderr
        doc = healthy(hosts, "six")  # (once redis-2, started by the boot hook, has synced again)
        assert doc["master"]["host"] == hosts.address["host-1"]
        assert [s["host"] for s in doc["sentinels"]] == [hosts.address[f"host-{i}"] for i in (4, 5, 6)], doc
        validated = run_lab("validate", "--name", "six", home=hosts.home, timeout=120)
        assert validated.returncode == 0 and "six: OK" in validated.stdout, validated.stdout + validated.stderr
        assert run_lab("down", "--name", "six", home=hosts.home, timeout=120).returncode == 0


def simulated_hosts_are_hosts(hosts: Hosts) -> None:
    # Each its own name, address, /etc and /var; the machine's /usr, read-only; no secret of the machine.
    assert hosts.ssh("host-1", "hostname").strip() == "host-1"
    hosts.ssh("host-1", "echo mine > /etc/only-here")
    assert hosts.ssh("host-2", "test -e /etc/only-here && echo yes || echo no").strip() == "no"
    assert not Path("/etc/only-here").exists()
    assert "Read-only" in hosts.ssh("host-1", "touch /usr/lab-hosts-probe 2>&1 || true")
    assert all(line.split(":")[1] == "*" for line in hosts.ssh("host-1", "cat /etc/shadow").splitlines())
    assert hosts.ssh("host-3", "ip -4 -o addr show eth0").split()[3] == f"{hosts.address['host-3']}/24"
    # Only the set's key gets in, and only a host whose key is pinned is trusted.
    assert (Path(hosts.doc["key"]).stat().st_mode & 0o777) == 0o600
    argv = ["ssh", "-i", hosts.doc["key"], "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes"]
    stranger = subprocess.run(
        [*argv, "-o", "BatchMode=yes", f"root@{hosts.address['host-1']}", "true"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert stranger.returncode != 0 and "Host key verification failed" in stranger.stderr
    # A power cut takes every process of the host at once; a boot brings sshd back.
    killed = run_lab("hosts", "kill", "host-2", "--name", hosts.name, home=hosts.home)
    assert killed.returncode == 0, killed.stderr
    listed = json.loads(run_lab("hosts", "list", "--json", home=hosts.home).stdout)
    assert [h["up"] for h in listed[0]["hosts"]] == [h != "host-2" for h in hosts.address]
    booted = run_lab("hosts", "boot", "host-2", "--name", hosts.name, home=hosts.home)
    assert booted.returncode == 0, booted.stderr
    assert hosts.ssh("host-2", "hostname").strip() == "host-2"


def test_deploy_is_the_render_is_idempotent_and_leaves_what_sentinel_owns(hosts: Hosts, tmp_path: Path) -> None:
    first = hosts.deploy()
    assert all(h["changed"] and not h["failed"] for h in first.values()), first
    variables = hosts.secrets()

    # Byte for byte what `lab render --inventory` renders: the role's record of every node, and the data
    # nodes' live files (a Sentinel rewrites its own as soon as it starts).
    out = tmp_path / "rendered"
    rendered = run_lab(
        "render", "-i", hosts.inventory, "--vault-password-file", hosts.vault, "--out", str(out), home=hosts.home
    )
    assert rendered.returncode == 0, rendered.stderr
    for i in (1, 2, 3):
        host = f"host-{i}"
        for node, conf in ((f"redis-{i}", "redis.conf"), (f"sentinel-{i}", "sentinel.conf")):
            assert hosts.ssh(host, f"cat /etc/redis-ha/{node}.conf") == (out / node / conf).read_text(), node
        assert hosts.ssh(host, "cat /etc/redis/redis.conf") == (out / f"redis-{i}" / "redis.conf").read_text()
        # Run by the service user, config files it owns, the role's record root's only.
        assert hosts.ssh(host, "ps -o user= -C redis-server | sort -u").split() == ["redis"]
        assert hosts.ssh(host, "stat -c '%U %a' /etc/redis/redis.conf /etc/redis-ha").split() == [
            "redis",
            "640",
            "root",
            "700",
        ]

    # A deployment that works: one master, two replicas, three Sentinels that know each other.
    master = hosts.address["host-1"]
    assert wait_for_agreement(hosts, variables, not_ip="-") == master

    # A failover, then the playbook again (its second run): no change, no failover, Sentinel's state and
    # files kept.
    sentinels(hosts, variables)[0].execute_command("SENTINEL", "FAILOVER", "mymaster")
    new_master = wait_for_agreement(hosts, variables, not_ip=master)
    # Sentinel has the demoted master rewrite its file (CONFIG REWRITE) once it follows the new one.
    deadline = time.monotonic() + 30
    while f"replicaof {new_master} 6379" not in hosts.ssh("host-1", "cat /etc/redis/redis.conf"):
        assert time.monotonic() < deadline, "the old master's file never named the new master"
        time.sleep(0.2)
    before, files = sentinel_state(hosts, variables), live_files(hosts)
    again = hosts.deploy()
    assert all(not h["changed"] and not h["pending"] for h in again.values()), again
    time.sleep(1)
    assert sentinel_state(hosts, variables) == before
    assert live_files(hosts) == files

    # A changed profile: the files change (merged), what Sentinel owns does not, and no failover follows.
    tuned = tmp_path / "tuned.yaml"
    tuned.write_text("extends: production\nsentinel:\n  parallel_syncs: 2\nredis:\n  maxmemory: 96mb\n")
    # --check says what would change and changes nothing.
    would = hosts.deploy("--profile", str(tuned), "--check")
    assert all(any("live configs" in t for t in h["changed"]) for h in would.values()), would
    assert live_files(hosts) == files and sentinel_state(hosts, variables) == before
    changed = hosts.deploy("--profile", str(tuned))
    assert all(h["changed"] and not h["failed"] for h in changed.values()), changed
    old_master_conf = hosts.ssh("host-1", "cat /etc/redis/redis.conf")
    assert f"replicaof {new_master} 6379" in old_master_conf and "maxmemory 96mb" in old_master_conf
    for host in hosts.address:
        conf = hosts.ssh(host, "cat /etc/redis/sentinel.conf")
        assert f"sentinel monitor mymaster {new_master} 6379 2" in conf
    # Sentinels and replicas restarted to take it, one host at a time; the master waits for its restart.
    new_master_host = next(h for h, a in hosts.address.items() if a == new_master)
    assert [h for h, o in changed.items() if o["pending"]] == [new_master_host], changed
    password = variables["redis_ha_users"]["admin"]
    for host, address in hosts.address.items():
        client: Any = redis.Redis(address, 6379, username="admin", password=password, decode_responses=True)
        want = 2 * 1024**3 if host == new_master_host else 96 * 1024**2  # the production profile's 2gb, or the new
        assert client.config_get("maxmemory")["maxmemory"] == str(want), host
    masters = [s.sentinel_master("mymaster") for s in sentinels(hosts, variables)]
    assert all(int(m["parallel-syncs"]) == 2 for m in masters), masters
    assert wait_for_agreement(hosts, variables, not_ip=master) == new_master
    assert [s[:3] for s in sentinel_state(hosts, variables)] == [s[:3] for s in before]  # no failover

    # The master's turn (--restart): it hands over by a safe failover (whose CONFIG REWRITE writes its old values
    # back into its file), the playbook runs again, merges once more and restarts it, a replica now, with the
    # new config; then nothing is left to do.
    args = ("deploy", "-i", hosts.inventory, "--vault-password-file", hosts.vault, "--profile", str(tuned))
    restarted = run_lab(*args, "--restart", "--json", home=hosts.home, timeout=DEPLOY_TIMEOUT)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    taken = json.loads(restarted.stdout)
    assert taken["handed_over"]["from"] == f"redis-{new_master_host[-1]}", taken
    assert not any(h["pending"] for h in taken["hosts"]), taken
    client = redis.Redis(new_master, 6379, username="admin", password=password, decode_responses=True)
    assert client.config_get("maxmemory")["maxmemory"] == str(96 * 1024**2)
    assert client.info("replication")["role"] == "slave"
    assert all(not h["changed"] for h in hosts.deploy("--profile", str(tuned)).values())


def test_bad_inventories_are_one_line_and_touch_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    inv = tmp_path / "hosts.ini"
    cases = {
        "no such file": (tmp_path / "missing.ini", "no such file or directory"),
        "does not parse": (inv, "inventory"),
        "two data hosts": (tmp_path / "two.ini", "group redis_ha_data has 2 hosts: give 3"),
        "no passwords": (tmp_path / "nopass.ini", "no redis_ha_users.admin"),
    }
    inv.write_text("[redis_ha_data\nh1 ansible_host=\n")
    (tmp_path / "two.ini").write_text("[redis_ha_data]\na\nb\n[redis_ha_sentinel]\nc\nd\ne\n")
    (tmp_path / "nopass.ini").write_text("[redis_ha_data]\na\nb\nc\n[redis_ha_sentinel]\na\nb\nc\n")
    for what, (path, said) in cases.items():
        done = run_lab("deploy", "-i", str(path), home=home, timeout=60)
        assert done.returncode == 2, (what, done.stdout, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and said in done.stderr, (what, done.stderr)
    assert not home.exists() or not any(home.iterdir())


def test_a_host_that_cannot_be_deployed_to_is_named_and_no_host_is_touched(hosts: Hosts, tmp_path: Path) -> None:
    def deploy(*extra: str) -> subprocess.CompletedProcess[str]:
        args = ("deploy", "-i", hosts.inventory, "--vault-password-file", hosts.vault, *extra)
        return run_lab(*args, home=hosts.home, timeout=DEPLOY_TIMEOUT)

    def untouched() -> None:
        for host in hosts.address:
            assert hosts.ssh(host, "ls /etc/redis /etc/redis-ha /opt/redis-ha 2>/dev/null | wc -l").strip() == "0"

    hs = sim.load(hosts.home, hosts.name)
    # A host without a working python3 (Ansible's modules need one): named, nothing deployed anywhere.
    pid = sim.init_pid(hs.host("host-3"))
    assert pid is not None
    python = os.path.realpath("/usr/bin/python3")  # (a link: mount and umount the file it names)
    subprocess.run(["nsenter", "-t", str(pid), "-m", "-p", "mount", "--bind", "/dev/null", python], check=True)
    done = deploy()
    subprocess.run(["nsenter", "-t", str(pid), "-m", "-p", "umount", python], check=True)
    assert done.returncode == 1 and "host-3" in done.stdout and "no python3 at /usr/bin/python3" in done.stdout
    assert "no host changed" in done.stdout
    untouched()
    # A host that does not answer.
    assert run_lab("hosts", "kill", "host-2", "--name", hosts.name, home=hosts.home).returncode == 0
    done = deploy()
    assert done.returncode == 1 and "host-2" in done.stdout and "Connection refused" in done.stdout, done.stdout
    assert "no host changed" in done.stdout
    assert run_lab("hosts", "boot", "host-2", "--name", hosts.name, home=hosts.home).returncode == 0
    untouched()
    # A user whose sudo asks for a password (become could not work): named with the cause, nothing touched.
    hosts.ssh(
        "host-1",
        "useradd -m -s /bin/sh ops && usermod -p '*' ops && install -d -o ops -m 0700 /home/ops/.ssh"
        " && install -o ops -m 0600 /root/.ssh/authorized_keys /home/ops/.ssh/"
        " && printf 'root ALL=(ALL:ALL) ALL\\nops ALL=(ALL:ALL) ALL\\n' > /etc/sudoers && chmod 0440 /etc/sudoers",
    )
    text = Path(hosts.inventory).read_text()
    line = f"host-1 ansible_host={hosts.address['host-1']}"
    with_sudo = Path(hosts.inventory).with_name("sudo.ini")
    with_sudo.write_text(text.replace(line + "\n", line + " ansible_user=ops\n"))
    done = run_lab("deploy", "-i", str(with_sudo), "--vault-password-file", hosts.vault, home=hosts.home, timeout=120)
    assert done.returncode == 1 and "host-1" in done.stdout, done.stdout
    assert "sudo asks ops for a password" in done.stdout and "no host changed" in done.stdout, done.stdout
    untouched()
    # A key the hosts do not know, and a wrong vault password.
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    text = Path(hosts.inventory).read_text().replace(hosts.doc["key"], str(other))
    wrong_key = Path(hosts.inventory).with_name("wrong-key.ini")
    wrong_key.write_text(text)
    done = run_lab("deploy", "-i", str(wrong_key), "--vault-password-file", hosts.vault, home=hosts.home, timeout=120)
    assert done.returncode == 1 and "Permission denied" in done.stdout, done.stdout
    wrong_vault = tmp_path / "wrong.pass"
    wrong_vault.write_text("not the password\n")
    done = run_lab("deploy", "-i", hosts.inventory, "--vault-password-file", str(wrong_vault), home=hosts.home)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    untouched()


def test_attach_makes_a_lab_of_a_deployment_it_did_not_start(hosts: Hosts, tmp_path: Path) -> None:
    hosts.deploy()
    name, args = "prod", ("-i", hosts.inventory, "--vault-password-file", hosts.vault)
    variables = hosts.secrets()
    attached = run_lab("attach", "--name", name, *args, home=hosts.home, timeout=120)
    assert attached.returncode == 0, attached.stderr
    doc = healthy(hosts, name)  # (the replicas' first sync, the Sentinels' first INFO rounds)
    assert doc["backend"] == "ssh", doc
    assert doc["master"]["host"] == hosts.address["host-1"]
    assert {n["state"] for n in doc["nodes"] + doc["sentinels"]} == {"up"}
    # What runs on every host is what was rendered for it (CONFIG GET of every directive, over the wire).
    validated = run_lab("validate", "--name", name, home=hosts.home, timeout=120)
    assert validated.returncode == 0 and f"{name}: OK" in validated.stdout, validated.stdout + validated.stderr

    # The health checker, with the exports `lab env` gives any lab (the current master, the Sentinels, the users).
    bin_dir = Path(sys.executable).parent
    line = f'eval "$({bin_dir}/lab env --name {name})" && {bin_dir}/check-redis-health --expect-replicas 2'
    checked = subprocess.run(
        ["bash", "-c", line],
        env={**os.environ, "LAB_HOME": str(hosts.home)}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0 and checked.stdout.startswith("REDIS OK"), checked.stdout + checked.stderr

    # The master's host dies (its data node and its Sentinel killed over SSH): clients write through Sentinel,
    # the report says what they saw.
    report = tmp_path / "report"
    drill = run_lab(
        "drill", "kill-master-and-sentinel", "--name", name, "--duration", "12", "--rate", "500",
        "--report", str(report), "--json", home=hosts.home, timeout=300,
    )  # fmt: skip
    assert drill.returncode == 0, drill.stdout[-2000:] + drill.stderr
    result = json.loads(drill.stdout)
    assert result["summary"]["failovers"] >= 1 and (report / "report.html").exists(), result["summary"]
    killed = sorted(f["node"] for f in result["faults"] if f["action"] == "inject" and f["fault"] == "kill")
    assert killed == ["redis-1", "sentinel-1"], result["faults"]  # both of host-1's
    after = healthy(hosts, name)
    assert after["master"]["host"] != hosts.address["host-1"], after

    # A freeze is SIGSTOP on the host (status sees it), thaw its SIGCONT; a safe failover moves the master.
    assert run_lab("freeze", "--name", name, "redis-2", home=hosts.home, timeout=60).returncode == 0
    frozen = json.loads(run_lab("status", "--name", name, "--json", home=hosts.home, timeout=60).stdout)
    assert next(n["state"] for n in frozen["nodes"] if n["name"] == "redis-2") == "frozen", frozen["nodes"]
    assert run_lab("thaw", "--name", name, "redis-2", home=hosts.home, timeout=60).returncode == 0
    assert run_lab("heal", "--name", name, "--timeout", "120", home=hosts.home, timeout=180).returncode == 0
    moved = run_lab("failover", "--name", name, home=hosts.home, timeout=180)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    final = healthy(hosts, name)
    assert final["master"]["host"] != after["master"]["host"], final

    # Isolation cuts the node's host (iptables there); heal takes the lab's rules away.
    assert run_lab("isolate", "--name", name, "redis-2", home=hosts.home, timeout=60).returncode == 0
    assert "LAB-" in hosts.ssh("host-2", "iptables -S")
    # (the production profile's timers: an isolated master is failed over, and the failover ends only once every
    # replica follows, failover-timeout 60 s at most; with both cores busy that outlasted heal's default 30 s wait)
    healed = run_lab("heal", "--name", name, "--timeout", "120", home=hosts.home, timeout=180)
    assert healed.returncode == 0, healed.stderr
    assert "LAB-" not in hosts.ssh("host-2", "iptables -S")

    # `lab down` detaches: nothing of the deployment stops.
    down = run_lab("down", "--name", name, home=hosts.home, timeout=120)
    assert down.returncode == 0 and "detached" in down.stdout, down.stdout + down.stderr
    for host in hosts.address:
        assert len(servers(hosts, host)) == 2, host

    # Hosts that are not one deployment (a second master) are refused, and nothing is attached.
    password = variables["redis_ha_users"]["admin"]
    master = str(final["master"]["host"])
    other = next(a for a in hosts.address.values() if a != master)
    redis.Redis(other, 6379, username="admin", password=password).execute_command("REPLICAOF", "NO", "ONE")
    refused = run_lab("attach", "--name", "split", *args, home=hosts.home, timeout=120)
    assert refused.returncode == 1 and "not one deployment, nothing attached" in refused.stderr, refused.stderr
    assert "2 data nodes say they are the master" in refused.stderr
    assert not (hosts.home / "split").exists()
